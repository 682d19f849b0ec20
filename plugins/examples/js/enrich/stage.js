// Adds `currency` (from the stage config, default EUR) and `amount_cents`
// (the amount × 100 from its decimal digits, halves away from zero) to JSON
// objects as written; values that are not JSON objects go to the
// dead-letter sink, and so do amounts whose cents pass a 64-bit integer.

import { Output, Rejected, json, members, quote, text, withMembers } from 'weir-plugin';

let currencyJson = quote('EUR');

export function init(config) {
  currencyJson = quote(config.currency ?? 'EUR');
}

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
const LIMIT = 1n << 63n;
const tooBig = () => new Rejected('amount_cents is beyond a 64-bit integer');
const encoder = new TextEncoder();

// The JSON number `text` × 100, rounded half away from zero, or null when
// it is not a number.
function cents(text) {
  const m = NUMBER.exec(text);
  if (!m) return null;
  const [, sign, whole, fraction = '', exp = '0'] = m;
  const exponent = Math.min(Math.max(Number(exp), -100000), 100000);
  const digits = whole + fraction;
  const shift = exponent - fraction.length + 2;
  let kept = digits;
  let dropped = '';
  if (shift < 0) {
    const keep = Math.max(digits.length + shift, 0);
    kept = digits.slice(0, keep);
    dropped = digits.slice(keep);
  }
  let magnitude = BigInt(kept || '0');
  if (shift > 0 && magnitude > 0n) {
    if (shift > 40) throw tooBig();
    magnitude *= 10n ** BigInt(shift);
  }
  if (dropped !== '' && dropped[0] >= '5') magnitude += 1n;
  if (sign ? magnitude > LIMIT : magnitude >= LIMIT) throw tooBig();
  return sign ? -magnitude : magnitude;
}

// The value's text and object when the text is exactly what JSON.stringify
// writes for that object, as machine-written JSON mostly is. Read back as
// written, it also has only finite numbers, each with the double's digits.
function canonical(event) {
  try {
    const t = text(event);
    const parsed = JSON.parse(t);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && JSON.stringify(parsed) === t) {
      return [t, parsed];
    }
  } catch {
    // Not JSON: the strict read below says why.
  }
  return undefined;
}

// The members `currency` and `amount_cents` set in the object as written.
function enrich(event) {
  const hit = canonical(event);
  if (hit !== undefined && !('currency' in hit[1]) && !('amount_cents' in hit[1])) {
    // Neither member yet: both go before the closing brace, with no scan.
    const [t, parsed] = hit;
    const amount = parsed.amount;
    const c = typeof amount === 'number' ? cents(JSON.stringify(amount)) : null;
    const added = `${t === '{}' ? '' : ','}"currency":${currencyJson},"amount_cents":${c === null ? 'null' : c}}`;
    const tail = encoder.encode(added);
    const bytes = new Uint8Array(event.value.length - 1 + tail.length);
    bytes.set(event.value.subarray(0, event.value.length - 1));
    bytes.set(tail, event.value.length - 1);
    event.value = bytes;
    return;
  }
  json(event); // strict JSON, an object, or a dead letter saying why
  const t = text(event);
  const found = members(t);
  // The last of duplicate keys counts, as in every JSON parser.
  let amount;
  for (const m of found) if (m.key === 'amount') amount = m;
  const c = amount ? cents(t.slice(amount.start, amount.end)) : null;
  withMembers(event, t, found, [
    ['currency', currencyJson],
    ['amount_cents', c === null ? 'null' : c.toString()],
  ]);
}

export function process(events) {
  const out = new Output();
  events.forEach((event, i) => {
    try {
      enrich(event);
    } catch (e) {
      if (e instanceof Rejected) {
        out.reject(i, e);
        return;
      }
      throw e;
    }
    out.emit(event);
  });
  return out;
}

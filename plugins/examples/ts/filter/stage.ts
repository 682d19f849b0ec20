// Keeps JSON objects whose numeric `field` (default `amount`) is at least
// `min` (default 0) and drops the others; values that are not JSON objects,
// or lack the field, go to the dead-letter sink. The JavaScript filter,
// typed.

import { Output, json, type Event } from 'weir-plugin';

let field = 'amount';
let min = 0;

export function init(config: Record<string, string>): void {
  field = config.field ?? 'amount';
  const raw = config.min ?? '0';
  min = Number(raw);
  if (raw.trim() === '' || Number.isNaN(min)) {
    throw new Error(`min must be a number, got "${raw}"`);
  }
}

export function process(events: Event[]): Output {
  const out = new Output();
  events.forEach((event, i) => {
    let value: Record<string, unknown>;
    try {
      value = json(event);
    } catch {
      out.reject(i, 'value is not a JSON object');
      return;
    }
    const amount = value[field];
    // JSON.parse reads 1e400 as Infinity; weir's other SDKs refuse it.
    if (typeof amount !== 'number' || !Number.isFinite(amount)) {
      out.reject(i, `field "${field}" is missing or not a number`);
    } else if (amount >= min) {
      out.emit(event);
    }
  });
  return out;
}

// weir's JavaScript SDK. A plugin is a module `stage.js` (or `stage.ts`)
// that exports `process(events)` and, when it needs them, `init(config)`,
// `checkpointExport()` and `checkpointImport(state)`: the four operations
// of every weir SDK. The build wraps it into a component.

import { log as hostLog } from 'weir:plugin/host@1.0.0';
import { getEnvironment } from 'wasi:cli/environment@0.2.12';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** An event that cannot be processed; its message is the dead letter's reason. */
export class Rejected extends Error {}

/** What `process` returns: the events to emit and the inputs that failed. */
export class Output {
  constructor(events = []) {
    this.events = events;
    this.errors = [];
  }

  /** Emits `event` (zero or more per input, in order). */
  emit(event) {
    this.events.push(event);
  }

  /** Sends input `index` to the dead-letter sink with `message`. */
  reject(index, message) {
    this.errors.push({ index, message: String(message instanceof Error ? message.message : message) });
  }
}

// JSON.parse reads 1e400 as Infinity; weir's other SDKs refuse such a
// number, and so does this one.
function finite(_key, v) {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError('number out of range');
  return v;
}

/** The event's value parsed as a JSON object; throws `Rejected` otherwise
 * (also for a number beyond a double). */
export function json(event) {
  let value;
  try {
    value = JSON.parse(decoder.decode(event.value), finite);
  } catch (e) {
    throw new Rejected(`value is not JSON: ${e.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Rejected('value is not a JSON object');
  }
  return value;
}

/** `event` with its value replaced by `value` as compact JSON. */
export function withJson(event, value) {
  event.value = encoder.encode(JSON.stringify(value));
  return event;
}

// JSON objects as written: the top-level members of an object's bytes, and
// those bytes with members set, without parsing into objects and writing
// back. What a stage does not touch (key order, number spelling, escapes,
// spacing) stays byte for byte. Validate the value first (e.g. with `json`).

const isSpace = (b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** The top-level members of the JSON object in `bytes`, in order:
 * `[{ key, start, end }]`, `start`/`end` delimiting the value's bytes. */
export function members(bytes) {
  let i = 0;
  const fail = (wanted) => {
    throw new Rejected(`value is not a JSON object: expected ${wanted} at byte ${i}`);
  };
  const ws = () => {
    while (i < bytes.length && isSpace(bytes[i])) i++;
  };
  const string = () => {
    if (bytes[i] !== 0x22) fail('a string');
    for (i++; i < bytes.length; i++) {
      if (bytes[i] === 0x5c) i++;
      else if (bytes[i] === 0x22) return ++i;
    }
    fail('the end of a string');
  };
  const value = () => {
    const c = bytes[i];
    if (c === 0x22) return string();
    if (c === 0x7b || c === 0x5b) {
      let depth = 0;
      while (i < bytes.length) {
        const b = bytes[i];
        if (b === 0x22) { string(); continue; }
        if (b === 0x7b || b === 0x5b) depth++;
        else if (b === 0x7d || b === 0x5d) {
          depth--;
          if (depth === 0) return ++i;
        }
        i++;
      }
      fail('the end of a value');
    }
    const start = i;
    while (i < bytes.length && !isSpace(bytes[i]) && bytes[i] !== 0x2c && bytes[i] !== 0x7d && bytes[i] !== 0x5d) i++;
    if (i === start) fail('a value');
  };
  const found = [];
  ws();
  if (bytes[i] !== 0x7b) throw new Rejected('value is not a JSON object');
  i++;
  ws();
  if (bytes[i] === 0x7d) return found;
  for (;;) {
    ws();
    const k = i;
    string();
    const key = JSON.parse(decoder.decode(bytes.subarray(k, i)));
    ws();
    if (bytes[i] !== 0x3a) fail("':'");
    i++;
    ws();
    const start = i;
    value();
    found.push({ key, start, end: i });
    ws();
    if (bytes[i] === 0x2c) { i++; continue; }
    if (bytes[i] === 0x7d) return found;
    fail("',' or '}'");
  }
}

/** `bytes` (an object whose `members` were `found`) with each `[key, json]`
 * of `set` in it: the value of every member with that key is replaced, and
 * a key the object does not have is added at its end, in order. */
export function setMembers(bytes, found, set) {
  const parts = [];
  let at = 0;
  for (const m of found) {
    const hit = set.find(([k]) => k === m.key);
    if (hit) {
      parts.push(bytes.subarray(at, m.start), encoder.encode(hit[1]));
      at = m.end;
    }
  }
  const close = bytes.lastIndexOf(0x7d);
  parts.push(bytes.subarray(at, close));
  let added = '';
  for (const [k, v] of set) {
    if (found.some((m) => m.key === k)) continue;
    added += `${found.length === 0 && added === '' ? '' : ','}${quote(k)}:${v}`;
  }
  parts.push(encoder.encode(added), bytes.subarray(close));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `s` as a JSON string (`"` and `\` escaped, control characters as `\n`…
 * or `\u00XX`), as every weir SDK writes it. */
export function quote(s) {
  return JSON.stringify(String(s));
}

/** The event's value as a string (UTF-8). */
export function text(event) {
  return decoder.decode(event.value);
}

/** The value of the event's first header called `name`, or undefined. */
export function header(event, name) {
  const h = event.headers.find((h) => h.key === name);
  return h === undefined ? undefined : h.value;
}

/** Appends a header; `value` may be a string or bytes. */
export function addHeader(event, name, value) {
  event.headers.push({ key: name, value: typeof value === 'string' ? encoder.encode(value) : value });
  return event;
}

/** The environment variable `name`, or undefined: a plugin sees only the
 * variables its stage's `[stage.grants] env` names. */
export function env(name) {
  const hit = getEnvironment().find(([k]) => k === name);
  return hit === undefined ? undefined : hit[1];
}

/** The bytes of the file at `path`, in a directory the stage's
 * `[stage.grants] read_dirs` grants; throws an Error saying why otherwise. */
export function readFile(path) {
  for (const [dir, base] of getDirectories()) {
    const prefix = base.endsWith('/') ? base : `${base}/`;
    if (!path.startsWith(prefix)) continue;
    let file;
    try {
      file = dir.openAt({}, path.slice(prefix.length), {}, { read: true });
      const chunks = [];
      let at = 0n;
      for (;;) {
        const [bytes, end] = file.read(65536n, at);
        chunks.push(bytes);
        at += BigInt(bytes.length);
        if (end || bytes.length === 0) break;
      }
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    } catch (e) {
      throw new Error(`cannot read ${path}: ${e?.payload ?? e}`);
    }
  }
  throw new Error(`cannot read ${path}: no directory holding it is granted to this stage`);
}

/** Writes `message` to the worker's log at `level` ('trace' … 'error'). */
export function log(level, message) {
  hostLog(level, String(message));
}

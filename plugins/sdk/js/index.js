// weir's JavaScript SDK. A plugin is a module `stage.js` (or `stage.ts`)
// that exports `process(events)` and, when it needs them, `init(config)`,
// `checkpointExport()` and `checkpointImport(state)`: the four operations
// of every weir SDK. The build wraps it into a component.

import { log as hostLog } from 'weir:plugin/host@1.1.0';
import * as hostState from 'weir:plugin/state@1.1.0';
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
// number, and so does this one. Only a number with an exponent or of 309
// digits can be one: the reviver runs only when the text has such a number.
function finite(_key, v) {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError('number out of range');
  return v;
}
const MAYBE_HUGE = /\d[eE]|\d{309}/;

/** The event's value parsed as a JSON object; throws `Rejected` otherwise
 * (also for a number beyond a double). */
export function json(event) {
  let value;
  try {
    const t = decoder.decode(event.value);
    value = MAYBE_HUGE.test(t) ? JSON.parse(t, finite) : JSON.parse(t);
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

// JSON objects as written: the top-level members of an object's text, and
// that text with members set, without parsing into objects and writing
// back. What a stage does not touch (key order, number spelling, escapes,
// spacing) stays as it is, and so, encoded again, byte for byte. Validate
// the value first (e.g. with `json`). The scan runs on the engine's regular
// expressions, not a loop per character.

const WS = /[ \t\n\r]*/y;
const STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
const SCALAR = /[^,}\]\s]+/y;
const STRUCTURE = /["{}[\]]/g;

function notAnObject(wanted, at) {
  return new Rejected(`value is not a JSON object: expected ${wanted} at ${at}`);
}

function skip(re, t, i, wanted) {
  re.lastIndex = i;
  if (!re.exec(t)) throw notAnObject(wanted, i);
  return re.lastIndex;
}

function skipValue(t, i) {
  const c = t[i];
  if (c === '"') return skip(STRING, t, i, 'a string');
  if (c === '{' || c === '[') {
    let depth = 0;
    STRUCTURE.lastIndex = i;
    for (;;) {
      const m = STRUCTURE.exec(t);
      if (!m) throw notAnObject('the end of a value', i);
      const ch = m[0];
      if (ch === '"') {
        STRUCTURE.lastIndex = skip(STRING, t, m.index, 'a string');
      } else if (ch === '{' || ch === '[') {
        depth++;
      } else if (--depth === 0) {
        return m.index + 1;
      }
    }
  }
  return skip(SCALAR, t, i, 'a value');
}

/** The top-level members of the JSON object `t` (a string), in order:
 * `[{ key, start, end }]`, `t.slice(start, end)` being the value's text. */
export function members(t) {
  let i = skip(WS, t, 0, '');
  if (t[i] !== '{') throw new Rejected('value is not a JSON object');
  i = skip(WS, t, i + 1, '');
  const found = [];
  if (t[i] === '}') return found;
  for (;;) {
    const k = i;
    i = skip(STRING, t, i, 'a string');
    const key = JSON.parse(t.slice(k, i));
    i = skip(WS, t, i, '');
    if (t[i] !== ':') throw notAnObject("':'", i);
    const start = skip(WS, t, i + 1, '');
    i = skipValue(t, start);
    found.push({ key, start, end: i });
    i = skip(WS, t, i, '');
    if (t[i] === ',') {
      i = skip(WS, t, i + 1, '');
      continue;
    }
    if (t[i] === '}') return found;
    throw notAnObject("',' or '}'", i);
  }
}

/** `t` (an object whose `members` were `found`) with each `[key, json]` of
 * `set` in it: the value of every member with that key is replaced, and a
 * key the object does not have is added at its end, in order. */
export function setMembers(t, found, set) {
  let out = '';
  let at = 0;
  for (const m of found) {
    const hit = set.find(([k]) => k === m.key);
    if (hit) {
      out += t.slice(at, m.start) + hit[1];
      at = m.end;
    }
  }
  const close = t.lastIndexOf('}');
  out += t.slice(at, close);
  let first = found.length === 0;
  for (const [k, v] of set) {
    if (found.some((m) => m.key === k)) continue;
    out += `${first ? '' : ','}${quote(k)}:${v}`;
    first = false;
  }
  return out + t.slice(close);
}

/** `event` with its value set to `t` (the event's value as text, whose
 * `members` were `found`) with the members of `set` in it, as `setMembers`
 * does; an ASCII value is spliced byte for byte, without encoding it again. */
export function withMembers(event, t, found, set) {
  if (event.value.length !== t.length) {
    event.value = encoder.encode(setMembers(t, found, set));
    return event;
  }
  const bytes = event.value;
  const pieces = [];
  let at = 0;
  for (const m of found) {
    const hit = set.find(([k]) => k === m.key);
    if (hit) {
      pieces.push(bytes.subarray(at, m.start), encoder.encode(hit[1]));
      at = m.end;
    }
  }
  const close = t.lastIndexOf('}');
  pieces.push(bytes.subarray(at, close));
  let added = '';
  let first = found.length === 0;
  for (const [k, v] of set) {
    if (found.some((m) => m.key === k)) continue;
    added += `${first ? '' : ','}${quote(k)}:${v}`;
    first = false;
  }
  pieces.push(encoder.encode(added), bytes.subarray(close));
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of pieces) {
    out.set(p, o);
    o += p.length;
  }
  event.value = out;
  return event;
}

/** `event` with its value replaced by the UTF-8 of the string `t`. */
export function withText(event, t) {
  event.value = encoder.encode(t);
  return event;
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

// Keyed state the host keeps for the stage: values under keys, scoped to the
// stage and to the partition the instance serves. The host holds it beside
// the worker thread, persists only what changed, and hands it to every new
// instance and version of the stage. Reachable while `process` runs, in a
// stage that is not `stateless`; the writes of a batch take effect when
// `process` returns. Keys and values are Uint8Arrays (a string is taken as
// UTF-8); a refused call throws an Error with the host's reason.
function stateBytes(x) {
  return typeof x === 'string' ? encoder.encode(x) : x;
}

function stateCall(f) {
  try {
    return f();
  } catch (e) {
    throw new Error(e && e.payload !== undefined ? String(e.payload) : String(e));
  }
}

/** Keyed state held by the host: `get`, `getMany`, `set`, `delete`, `setMany`. */
export const state = {
  /** The value under `key`, or `undefined`. */
  get(key) {
    return stateCall(() => hostState.get(stateBytes(key)));
  },
  /** The values under `keys`, in their order (`undefined` for none), in one host call. */
  getMany(keys) {
    return stateCall(() => hostState.getMany(keys.map(stateBytes)));
  },
  /** Sets `key` to `value`. */
  set(key, value) {
    stateCall(() => hostState.set(stateBytes(key), stateBytes(value)));
  },
  /** Removes `key`. */
  delete(key) {
    stateCall(() => hostState['delete'](stateBytes(key)));
  },
  /** Several writes in one host call, all or nothing: `[key, value]` pairs; an `undefined` value removes the key. */
  setMany(entries) {
    stateCall(() =>
      hostState.setMany(entries.map(([k, v]) => [stateBytes(k), v == null ? undefined : stateBytes(v)])),
    );
  },
};

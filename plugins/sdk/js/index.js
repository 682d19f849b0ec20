// weir's JavaScript SDK. A plugin is a module `stage.js` (or `stage.ts`)
// that exports `process(events)` and, when it needs them, `init(config)`,
// `checkpointExport()` and `checkpointImport(state)`: the four operations
// of every weir SDK. The build wraps it into a component.

import { log as hostLog } from 'weir:plugin/host@1.0.0';

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

/** The event's value parsed as a JSON object; throws `Rejected` otherwise. */
export function json(event) {
  let value;
  try {
    value = JSON.parse(decoder.decode(event.value));
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

/** Writes `message` to the worker's log at `level` ('trace' … 'error'). */
export function log(level, message) {
  hostLog(level, String(message));
}

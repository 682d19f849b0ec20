// Types of weir's JavaScript SDK, matching the WIT world weir:plugin/stage@1.1.0.

/** One header: a name and an opaque value. */
export interface Header {
  key: string;
  value: Uint8Array;
}

/** One event. */
export interface Event {
  /** Optional key; keyed events keep their order per key. */
  key?: Uint8Array;
  value: Uint8Array;
  headers: Header[];
  /** Milliseconds since the Unix epoch, when known. */
  timestamp?: bigint;
  /** On input: where the event came from. On output: where to publish it. */
  topic?: string;
}

/** The input at `index` goes to the dead-letter sink with `message`. */
export interface EventError {
  index: number;
  message: string;
}

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** An event that cannot be processed; its message is the dead letter's reason. */
export class Rejected extends Error {}

/** What `process` returns: the events to emit and the inputs that failed. */
export class Output {
  constructor(events?: Event[]);
  events: Event[];
  errors: EventError[];
  emit(event: Event): void;
  reject(index: number, message: string | Error): void;
}

/** What a stage module exports: `process`, and the other three when needed. */
export interface StageModule {
  init?(config: Record<string, string>): void;
  process(events: Event[]): Output | Event[];
  checkpointExport?(): Uint8Array;
  checkpointImport?(state: Uint8Array): void;
}

export function json(event: Event): Record<string, unknown>;
export function withJson(event: Event, value: unknown): Event;
export function text(event: Event): string;

/** One top-level member of a JSON object: its key and where its value's text is. */
export interface Member {
  key: string;
  start: number;
  end: number;
}
/** The top-level members of the JSON object `text`, in order. */
export function members(text: string): Member[];
/** `text` with each `[key, json]` of `set` replaced or added at the end. */
export function setMembers(text: string, found: Member[], set: [string, string][]): string;
/** `event` with its value set to `text` with the members of `set` in it, as
 * `setMembers` does (an ASCII value is spliced without encoding it again). */
export function withMembers(event: Event, text: string, found: Member[], set: [string, string][]): Event;
/** `event` with its value replaced by the UTF-8 of `text`. */
export function withText(event: Event, text: string): Event;
/** `s` as a JSON string, as every weir SDK writes it. */
export function quote(s: string): string;
export function header(event: Event, name: string): Uint8Array | undefined;
export function addHeader(event: Event, name: string, value: string | Uint8Array): Event;
export function log(level: Level, message: string): void;
/** The environment variable `name`, if the stage's grants name it. */
export function env(name: string): string | undefined;
/** The file at `path`, in a directory the stage's grants give; throws otherwise. */
export function readFile(path: string): Uint8Array;

/** Bytes, or a string taken as UTF-8. */
export type Bytes = Uint8Array | string;

/**
 * Keyed state the host keeps for the stage, scoped to the stage and the
 * partition; reachable while `process` runs. A refused call throws an Error
 * with the host's reason.
 */
export const state: {
  get(key: Bytes): Uint8Array | undefined;
  getMany(keys: Bytes[]): (Uint8Array | undefined)[];
  set(key: Bytes, value: Bytes): void;
  delete(key: Bytes): void;
  setMany(entries: [Bytes, Bytes | undefined][]): void;
};

// Counts events per key and stamps each event with the running count in the
// header `count` (unkeyed events count under the empty key). Its checkpoint
// has the format every language's counter shares, so a stage can swap
// between languages and keep its counts. The JavaScript counter, typed.

import { addHeader, type Event } from 'weir-plugin';

// Keys as latin1 strings: one character per byte, so they sort bytewise.
let counts = new Map<string, bigint>();

function keyOf(event: Event): string {
  return event.key ? String.fromCharCode(...event.key) : '';
}

export function init(): void {
  counts = new Map();
}

export function process(events: Event[]): Event[] {
  for (const event of events) {
    const key = keyOf(event);
    const n = (counts.get(key) ?? 0n) + 1n;
    counts.set(key, n);
    addHeader(event, 'count', n.toString());
  }
  return events;
}

// For each key in byte order: u32 key length, key, u64 count (LE).
export function checkpointExport(): Uint8Array {
  const keys = [...counts.keys()].sort();
  const size = keys.reduce((n, k) => n + 12 + k.length, 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const key of keys) {
    view.setUint32(at, key.length, true);
    for (let i = 0; i < key.length; i++) bytes[at + 4 + i] = key.charCodeAt(i);
    view.setBigUint64(at + 4 + key.length, counts.get(key) ?? 0n, true);
    at += 12 + key.length;
  }
  return bytes;
}

export function checkpointImport(state: Uint8Array): void {
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  const restored = new Map<string, bigint>();
  let at = 0;
  while (at < state.length) {
    if (at + 4 > state.length) throw new Error('checkpoint is truncated');
    const length = view.getUint32(at, true);
    if (at + 4 + length + 8 > state.length) throw new Error('checkpoint is truncated');
    const key = String.fromCharCode(...state.subarray(at + 4, at + 4 + length));
    restored.set(key, view.getBigUint64(at + 4 + length, true));
    at += 12 + length;
  }
  counts = restored;
}

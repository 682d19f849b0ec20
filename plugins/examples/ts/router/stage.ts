// Routes each event to the topic `prefix` + the string `field` (default
// `type`) of its JSON value, or to `fallback` (or the sink's own topic) when
// the value has no such non-empty string. The JavaScript router, typed.

import { text, type Event } from 'weir-plugin';

let field = 'type';
let prefix = '';
let fallback: string | undefined;

export function init(config: Record<string, string>): void {
  field = config.field ?? 'type';
  prefix = config.prefix ?? '';
  fallback = config.fallback;
}

export function process(events: Event[]): Event[] {
  for (const event of events) {
    let route: unknown;
    try {
      route = JSON.parse(text(event))?.[field];
    } catch {
      route = undefined;
    }
    event.topic = typeof route === 'string' && route !== '' ? prefix + route : fallback;
  }
  return events;
}

// Routes each event to the topic `prefix` + the string `field` (default
// `type`) of its JSON value, or to `fallback` (or the sink's own topic) when
// the value has no such non-empty string.

import { text } from 'weir-plugin';

let field = 'type';
let prefix = '';
let fallback;

export function init(config) {
  field = config.field ?? 'type';
  prefix = config.prefix ?? '';
  fallback = config.fallback;
}

export function process(events) {
  for (const event of events) {
    let route;
    try {
      route = JSON.parse(text(event))?.[field];
    } catch {
      route = undefined;
    }
    event.topic = typeof route === 'string' && route !== '' ? prefix + route : fallback;
  }
  return events;
}

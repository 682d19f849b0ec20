// Adds `currency` (from the stage config, default EUR) and `amount_cents`
// to JSON objects; values that are not JSON objects go to the dead-letter
// sink. The JavaScript enrich, typed.

import { Output, Rejected, json, withJson, type Event } from 'weir-plugin';

let currency = 'EUR';

export function init(config: Record<string, string>): void {
  currency = config.currency ?? 'EUR';
}

export function process(events: Event[]): Output {
  const out = new Output();
  events.forEach((event, i) => {
    let order: Record<string, unknown>;
    try {
      order = json(event);
    } catch (e) {
      if (e instanceof Rejected) {
        out.reject(i, e);
        return;
      }
      throw e;
    }
    const amount = order.amount;
    order.currency = currency;
    order.amount_cents = typeof amount === 'number' ? Math.round(amount * 100) : null;
    out.emit(withJson(event, order));
  });
  return out;
}

// Adds `currency` (from the stage config, default EUR) and `amount_cents`
// to JSON objects; values that are not JSON objects go to the dead-letter
// sink.

import { Output, Rejected, json, withJson } from 'weir-plugin';

let currency = 'EUR';

export function init(config) {
  currency = config.currency ?? 'EUR';
}

export function process(events) {
  const out = new Output();
  events.forEach((event, i) => {
    let order;
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

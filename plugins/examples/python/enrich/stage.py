"""Adds ``currency`` (from the stage config, default EUR) and
``amount_cents`` to JSON objects; values that are not JSON objects go to
the dead-letter sink."""

from weir_plugin import Output, Rejected, Stage, json_value, with_json


class Enrich(Stage):
    def init(self, config):
        self.currency = config.get("currency", "EUR")

    def process(self, events):
        out = Output()
        for i, event in enumerate(events):
            try:
                order = json_value(event)
            except Rejected as e:
                out.reject(i, e)
                continue
            amount = order.get("amount")
            number = isinstance(amount, (int, float)) and not isinstance(amount, bool)
            order["currency"] = self.currency
            order["amount_cents"] = round(amount * 100) if number else None
            out.emit(with_json(event, order))
        return out

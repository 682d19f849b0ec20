"""Keeps JSON objects whose numeric ``field`` (default ``amount``) is at
least ``min`` (default 0) and drops the others; values that are not JSON
objects, or lack the field, go to the dead-letter sink."""

from weir_plugin import Output, Rejected, Stage, json_value


class Filter(Stage):
    def init(self, config):
        self.field = config.get("field", "amount")
        raw = config.get("min", "0")
        try:
            self.min = float(raw)
        except ValueError:
            raise ValueError(f'min must be a number, got "{raw}"') from None

    def process(self, events):
        out = Output()
        for i, event in enumerate(events):
            try:
                value = json_value(event)
            except Rejected:
                out.reject(i, "value is not a JSON object")
                continue
            amount = value.get(self.field)
            if not isinstance(amount, (int, float)) or isinstance(amount, bool):
                out.reject(i, f'field "{self.field}" is missing or not a number')
            elif amount >= self.min:
                out.emit(event)
        return out

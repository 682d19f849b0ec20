"""Routes each event to the topic ``prefix`` + the string ``field``
(default ``type``) of its JSON value, or to ``fallback`` (or the sink's own
topic) when the value has no such non-empty string."""

from weir_plugin import Rejected, Stage, json_value


class Router(Stage):
    def init(self, config):
        self.field = config.get("field", "type")
        self.prefix = config.get("prefix", "")
        self.fallback = config.get("fallback")

    def process(self, events):
        for event in events:
            try:
                route = json_value(event).get(self.field)
            except Rejected:
                route = None
            event.topic = self.prefix + route if isinstance(route, str) and route else self.fallback
        return events

"""Adds ``currency`` (from the stage config, default EUR) and
``amount_cents`` (the amount × 100 from its decimal digits, halves away from
zero) to JSON objects as written; values that are not JSON objects go to
the dead-letter sink, and so do amounts whose cents pass a 64-bit
integer."""

import json
import re

from weir_plugin import Output, Rejected, Stage, json_value, members, quote, set_members

_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?\Z")
_LIMIT = 1 << 63


def cents(text):
    """The JSON number ``text`` × 100, rounded half away from zero, or
    ``None`` when it is not a number."""
    m = _NUMBER.match(text)
    if not m:
        return None
    sign, whole, fraction, exp = m.group(1), m.group(2), m.group(3) or "", m.group(4) or "0"
    exponent = max(-100_000, min(100_000, int(exp)))
    digits = whole + fraction
    shift = exponent - len(fraction) + 2
    kept, dropped = digits, ""
    if shift < 0:
        keep = max(len(digits) + shift, 0)
        kept, dropped = digits[:keep], digits[keep:]
    magnitude = int(kept or "0")
    if shift > 0 and magnitude:
        if shift > 40:
            raise Rejected("amount_cents is beyond a 64-bit integer")
        magnitude *= 10**shift
    if dropped and dropped[0] >= "5":
        magnitude += 1
    if magnitude > _LIMIT or (magnitude == _LIMIT and not sign):
        raise Rejected("amount_cents is beyond a 64-bit integer")
    return -magnitude if sign else magnitude


def _dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Enrich(Stage):
    def init(self, config):
        self.currency = config.get("currency", "EUR")

    def enrich(self, event):
        """Sets ``currency`` and ``amount_cents`` in the object as written."""
        parsed = json_value(event)  # strict JSON, an object
        text = event.value.decode("utf-8")
        # Machine-written JSON is mostly exactly what json.dumps writes, and
        # has neither member yet: then they go before its closing brace, with
        # no scan of the text.
        if "currency" not in parsed and "amount_cents" not in parsed and _dumps(parsed) == text:
            amount = parsed.get("amount")
            number = isinstance(amount, (int, float)) and not isinstance(amount, bool)
            c = cents(_dumps(amount)) if number else None
            added = f'{"" if text == "{}" else ","}"currency":{quote(self.currency)},"amount_cents":{"null" if c is None else c}}}'
            event.value = event.value[:-1] + added.encode()
            return
        found = members(text)
        # The last of duplicate keys counts, as in every JSON parser.
        amount = next((m for m in reversed(found) if m.key == "amount"), None)
        c = cents(text[amount.start : amount.end]) if amount else None
        pairs = [("currency", quote(self.currency)), ("amount_cents", "null" if c is None else str(c))]
        event.value = set_members(text, found, pairs).encode()

    def process(self, events):
        out = Output()
        for i, event in enumerate(events):
            try:
                self.enrich(event)
            except Rejected as e:
                out.reject(i, e)
                continue
            out.emit(event)
        return out

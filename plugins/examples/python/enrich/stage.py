"""Adds ``currency`` (from the stage config, default EUR) and
``amount_cents`` (the amount × 100 from its decimal digits, halves away from
zero) to JSON objects as written; values that are not JSON objects go to
the dead-letter sink, and so do amounts whose cents pass a 64-bit
integer."""

import re

from weir_plugin import Output, Rejected, Stage, json_value, members, quote, set_members

_NUMBER = re.compile(rb"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?\Z")
_LIMIT = 1 << 63


def cents(text):
    """The JSON number ``text`` × 100, rounded half away from zero, or
    ``None`` when it is not a number."""
    m = _NUMBER.match(text)
    if not m:
        return None
    sign, whole, fraction, exp = m.group(1), m.group(2), m.group(3) or b"", m.group(4) or b"0"
    exponent = max(-100_000, min(100_000, int(exp)))
    digits = whole + fraction
    shift = exponent - len(fraction) + 2
    kept, dropped = digits, b""
    if shift < 0:
        keep = max(len(digits) + shift, 0)
        kept, dropped = digits[:keep], digits[keep:]
    magnitude = int(kept or b"0")
    if shift > 0 and magnitude:
        if shift > 40:
            raise Rejected("amount_cents is beyond a 64-bit integer")
        magnitude *= 10**shift
    if dropped and dropped[0] >= ord("5"):
        magnitude += 1
    if magnitude > _LIMIT or (magnitude == _LIMIT and not sign):
        raise Rejected("amount_cents is beyond a 64-bit integer")
    return -magnitude if sign else magnitude


class Enrich(Stage):
    def init(self, config):
        self.currency = config.get("currency", "EUR")

    def process(self, events):
        out = Output()
        for i, event in enumerate(events):
            try:
                json_value(event)  # strict JSON, an object
                found = members(event.value)
                # The last of duplicate keys counts, as in every JSON parser.
                amount = next((m for m in reversed(found) if m.key == "amount"), None)
                c = cents(event.value[amount.start : amount.end]) if amount else None
                event.value = set_members(
                    event.value,
                    found,
                    [("currency", quote(self.currency)), ("amount_cents", "null" if c is None else str(c))],
                )
            except Rejected as e:
                out.reject(i, e)
                continue
            out.emit(event)
        return out

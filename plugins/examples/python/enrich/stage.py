"""Adds ``currency`` (from the stage config, default EUR) and
``amount_cents`` (the amount × 100 from its decimal digits, halves away from
zero) to JSON objects as written; values that are not JSON objects go to
the dead-letter sink, and so do amounts whose cents pass a 64-bit
integer."""

import re

from weir_plugin import Number, Output, Rejected, Stage, json_value, members, quote, set_members

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


class Enrich(Stage):
    def init(self, config):
        self.currency = config.get("currency", "EUR")
        self.currency_json = quote(self.currency)

    def enrich(self, event):
        """Sets ``currency`` and ``amount_cents`` in the object as written."""
        # Strict JSON, an object; fractions keep their digits as written.
        parsed = json_value(event, exact_numbers=True)
        amount = parsed.get("amount")  # the last of duplicate keys counts
        if isinstance(amount, bool) or not isinstance(amount, (int, Number)):
            c = None
        else:
            c = cents(str(amount))
        cents_json = "null" if c is None else str(c)
        if "currency" in parsed or "amount_cents" in parsed:
            # Values replaced where they are: that needs their places.
            text = event.value.decode("utf-8")
            pairs = [("currency", self.currency_json), ("amount_cents", cents_json)]
            event.value = set_members(text, members(text), pairs).encode()
            return
        # Neither is there: both go before the closing brace, no scan needed.
        value = event.value
        end = value.rindex(b"}")
        comma = "," if parsed else ""
        added = f'{comma}"currency":{self.currency_json},"amount_cents":{cents_json}'
        event.value = b"".join((value[:end], added.encode(), value[end:]))

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

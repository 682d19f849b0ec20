"""Adds ``currency`` (from the stage config, default EUR) and
``amount_cents`` (the amount × 100 from its decimal digits, halves away from
zero) to JSON objects as written; values that are not JSON objects go to
the dead-letter sink, and so do amounts whose cents pass a 64-bit
integer."""

import re

from weir_plugin import Number, Output, Rejected, Stage, json_value, members, quote, set_members

_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?\Z")
_LIMIT = 1 << 63


def cents(amount):
    """The JSON number ``amount`` (an ``int`` or a :class:`Number`) × 100
    from its decimal digits, rounded half away from zero."""
    if type(amount) is int:
        c = amount * 100
    elif amount[-3] == ".":
        # "12.34": two decimals and no exponent (one would follow them), so
        # the digits are the cents.
        c = int(amount.replace(".", ""))
    else:
        c = _scaled(amount)
    if not -_LIMIT <= c < _LIMIT:
        raise Rejected("amount_cents is beyond a 64-bit integer")
    return c


def _scaled(text):
    """The cents of any other spelling: its digits shifted by the exponent
    and the two places of cents, the first digit dropped rounding."""
    sign, whole, fraction, exp = _NUMBER.match(text).groups()
    fraction = fraction or ""
    exponent = max(-100_000, min(100_000, int(exp or "0")))
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
    return -magnitude if sign else magnitude


class Enrich(Stage):
    def init(self, config):
        self.currency = config.get("currency", "EUR")
        self.currency_json = quote(self.currency)
        # What goes before the closing brace, but for the cents.
        added = f'"currency":{self.currency_json},"amount_cents":'.encode()
        self.added = (added, b"," + added)  # to an empty object, to others

    def enrich(self, event):
        """Sets ``currency`` and ``amount_cents`` in the object as written."""
        # Strict JSON, an object; fractions keep their digits as written.
        parsed = json_value(event, exact_numbers=True)
        amount = parsed.get("amount")  # the last of duplicate keys counts
        if isinstance(amount, bool) or not isinstance(amount, (int, Number)):
            c = None
        else:
            c = cents(amount)
        cents_json = b"null" if c is None else b"%d" % c
        if "currency" in parsed or "amount_cents" in parsed:
            # Values replaced where they are: that needs their places.
            text = event.value.decode("utf-8")
            pairs = [("currency", self.currency_json), ("amount_cents", cents_json.decode())]
            event.value = set_members(text, members(text), pairs).encode()
            return
        # Neither is there: both go before the closing brace, no scan needed.
        value = event.value
        end = value.rindex(b"}")
        event.value = b"".join((value[:end], self.added[bool(parsed)], cents_json, value[end:]))

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

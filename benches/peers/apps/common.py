"""The transform every peer runs, written once: orders under 10 are dropped,
the others get ``currency`` and ``amount_cents``."""

import json


def transform(value):
    """The new value (bytes) of the JSON order ``value``, or ``None``."""
    order = json.loads(value)
    if order["amount"] < 10:
        return None
    order["currency"] = "EUR"
    order["amount_cents"] = round(order["amount"] * 100)
    return json.dumps(order, separators=(",", ":")).encode()

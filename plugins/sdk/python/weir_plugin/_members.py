"""JSON objects as written: the top-level members of an object's text, and
that text with members set, without parsing into a dict and writing back.
What a stage does not touch (key order, number spelling, escapes, spacing)
stays as it is, and so, encoded again, byte for byte. Validate the value
first (e.g. with ``json_value``). The scan runs in the ``json`` module's C
scanner, one step per member, not a loop per character."""

import json as _json
import re as _re
from json.decoder import scanstring as _scanstring

_WS = _re.compile(r"[ \t\n\r]*")
_values = _json.JSONDecoder()


class Member:
    """One top-level member: its ``key`` and where its value's text is
    (``text[start:end]``)."""

    __slots__ = ("key", "start", "end")

    def __init__(self, key, start, end):
        self.key, self.start, self.end = key, start, end


def members(text):
    """The top-level members of the JSON object ``text`` (a ``str``), in
    order; raises ``ValueError`` when it is not an object."""

    def fail(wanted, at):
        raise ValueError(f"value is not a JSON object: expected {wanted} at {at}")

    i = _WS.match(text, 0).end()
    if text[i : i + 1] != "{":
        raise ValueError("value is not a JSON object")
    i = _WS.match(text, i + 1).end()
    found = []
    if text[i : i + 1] == "}":
        return found
    while True:
        if text[i : i + 1] != '"':
            fail("a string", i)
        key, i = _scanstring(text, i + 1)
        i = _WS.match(text, i).end()
        if text[i : i + 1] != ":":
            fail("':'", i)
        start = _WS.match(text, i + 1).end()
        try:
            _, i = _values.raw_decode(text, start)
        except ValueError:
            fail("a value", start)
        found.append(Member(key, start, i))
        i = _WS.match(text, i).end()
        c = text[i : i + 1]
        if c == ",":
            i = _WS.match(text, i + 1).end()
            continue
        if c == "}":
            return found
        fail("',' or '}'", i)


def set_members(text, found, pairs):
    """``text`` (an object whose ``members`` were ``found``) with each
    ``(key, json_text)`` of ``pairs`` in it: the value of every member with
    that key is replaced, and a key the object does not have is added at its
    end, in order."""
    wanted = dict(pairs)
    parts = []
    at = 0
    for m in found:
        if m.key in wanted:
            parts.append(text[at : m.start])
            parts.append(wanted[m.key])
            at = m.end
    close = text.rindex("}")
    parts.append(text[at:close])
    have = {m.key for m in found}
    added = [f"{quote(k)}:{v}" for k, v in pairs if k not in have]
    if added:
        parts.append(("" if not found else ",") + ",".join(added))
    parts.append(text[close:])
    return "".join(parts)


def quote(s):
    """``s`` as a JSON string (``"`` and ``\\`` escaped, control characters
    as ``\\n``… or ``\\u00XX``), as every weir SDK writes it."""
    return _json.dumps(s, ensure_ascii=False)

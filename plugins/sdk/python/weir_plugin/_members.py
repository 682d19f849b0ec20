"""JSON objects as written: the top-level members of an object's bytes, and
those bytes with members set, without parsing into a dict and writing back.
What a stage does not touch (key order, number spelling, escapes, spacing)
stays byte for byte. Validate the value first (e.g. with ``json_value``)."""

import json as _json


class Member:
    """One top-level member: its ``key`` and where its value is
    (``data[start:end]``)."""

    __slots__ = ("key", "start", "end")

    def __init__(self, key, start, end):
        self.key, self.start, self.end = key, start, end


_SPACE = b" \t\n\r"
_END = b" \t\n\r,}]"


def members(data):
    """The top-level members of the JSON object in ``data`` (bytes), in order;
    raises ``ValueError`` when it is not an object."""
    n = len(data)
    i = 0

    def fail(wanted):
        raise ValueError(f"value is not a JSON object: expected {wanted} at byte {i}")

    def ws(i):
        while i < n and data[i] in _SPACE:
            i += 1
        return i

    def string(i):
        if i >= n or data[i] != 0x22:
            fail("a string")
        i += 1
        while i < n:
            c = data[i]
            if c == 0x5C:
                i += 2
                continue
            i += 1
            if c == 0x22:
                return i
        fail("the end of a string")

    def value(i):
        c = data[i] if i < n else None
        if c == 0x22:
            return string(i)
        if c in (0x7B, 0x5B):
            depth = 0
            while i < n:
                b = data[i]
                if b == 0x22:
                    i = string(i)
                    continue
                if b in (0x7B, 0x5B):
                    depth += 1
                elif b in (0x7D, 0x5D):
                    depth -= 1
                    if depth == 0:
                        return i + 1
                i += 1
            fail("the end of a value")
        start = i
        while i < n and data[i] not in _END:
            i += 1
        if i == start:
            fail("a value")
        return i

    found = []
    i = ws(0)
    if i >= n or data[i] != 0x7B:
        raise ValueError("value is not a JSON object")
    i = ws(i + 1)
    if i < n and data[i] == 0x7D:
        return found
    while True:
        i = ws(i)
        k = i
        i = string(i)
        key = _json.loads(data[k:i].decode("utf-8"))
        i = ws(i)
        if i >= n or data[i] != 0x3A:
            fail("':'")
        i = ws(i + 1)
        start = i
        i = value(i)
        found.append(Member(key, start, i))
        i = ws(i)
        if i < n and data[i] == 0x2C:
            i += 1
            continue
        if i < n and data[i] == 0x7D:
            return found
        fail("',' or '}'")


def set_members(data, found, pairs):
    """``data`` (an object whose ``members`` were ``found``) with each
    ``(key, json_text)`` of ``pairs`` in it: the value of every member with
    that key is replaced, and a key the object does not have is added at its
    end, in order."""
    wanted = dict(pairs)
    parts = []
    at = 0
    for m in found:
        if m.key in wanted:
            parts.append(data[at : m.start])
            parts.append(wanted[m.key].encode())
            at = m.end
    close = data.rindex(b"}")
    parts.append(data[at:close])
    have = {m.key for m in found}
    added = [f"{quote(k)}:{v}" for k, v in pairs if k not in have]
    if added:
        parts.append((("" if not found else ",") + ",".join(added)).encode())
    parts.append(data[close:])
    return b"".join(parts)


def quote(s):
    """``s`` as a JSON string (``"`` and ``\\`` escaped, control characters
    as ``\\n``… or ``\\u00XX``), as every weir SDK writes it."""
    return _json.dumps(s, ensure_ascii=False)

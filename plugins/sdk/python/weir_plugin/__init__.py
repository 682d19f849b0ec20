"""weir's Python SDK: write a stage as a subclass of :class:`Stage`.

A plugin is a module ``stage.py`` with one subclass of :class:`Stage`::

    from weir_plugin import Stage, Output, Rejected, json_value, with_json

    class Enrich(Stage):
        def init(self, config):
            self.currency = config.get("currency", "EUR")

        def process(self, events):
            out = Output()
            for i, event in enumerate(events):
                try:
                    order = json_value(event)
                except Rejected as e:
                    out.reject(i, str(e))
                    continue
                order["currency"] = self.currency
                out.emit(with_json(event, order))
            return out

``weir build`` turns it into a component.
The four operations are those of every weir SDK: ``init``, ``process``,
``checkpoint_export`` and ``checkpoint_import``.
"""

import json as _json
from json import scanner as _scanner

from wit_world.imports.types import Event, EventError, Header
from wit_world.imports import types as _types

from ._members import Member, members, quote, set_members
from . import state

__all__ = [
    "Event",
    "Header",
    "Member",
    "Number",
    "Output",
    "Rejected",
    "Stage",
    "header",
    "json_value",
    "log",
    "members",
    "quote",
    "set_members",
    "with_json",
]


class Rejected(Exception):
    """Raised by :func:`json_value` (or by a stage) for an event that goes to
    the dead-letter sink; its message is the reason."""


class Output:
    """What :meth:`Stage.process` returns: the events to emit, in order, and
    the inputs that failed, by their index in the batch."""

    def __init__(self, events=None):
        self.events = list(events or [])
        self.errors = []

    def emit(self, event):
        """Emits ``event`` (zero or more per input, in order)."""
        self.events.append(event)

    def reject(self, index, message):
        """Sends input ``index`` to the dead-letter sink with ``message``."""
        self.errors.append(EventError(index, str(message)))


class Stage:
    """The base class of a stage. Override :meth:`process`; the other three
    operations have defaults (no config needed, no state)."""

    def init(self, config):
        """Called once per instance with the stage's ``config`` table as a
        ``dict`` of strings. Raise an exception to refuse the config: its
        message is shown by ``weir check``."""

    def process(self, events):
        """Called for every batch with a list of :class:`Event`; returns an
        :class:`Output` or a list of events."""
        raise NotImplementedError("a stage implements process(self, events)")

    def checkpoint_export(self):
        """The stage's state as ``bytes``; empty for a stateless stage."""
        return b""

    def checkpoint_import(self, state):
        """Restores state from :meth:`checkpoint_export` of this or an
        earlier version. Raise an exception to refuse it."""


class Number(str):
    """A JSON number with a fraction or an exponent, kept as its text by
    ``json_value(event, exact_numbers=True)``: its decimal digits as written
    (``"7.10"``, ``"1.5e3"``, more digits than a double holds).
    ``float(n)`` gives the double."""

    __slots__ = ()


def json_value(event, exact_numbers=False):
    """The event's value parsed as a JSON object (a ``dict``); raises
    :class:`Rejected` when it is not JSON or not an object. With
    ``exact_numbers``, numbers with a fraction or an exponent come back as
    :class:`Number` instead of ``float``."""
    scan = _exact_scan if exact_numbers else _strict_scan
    try:
        # Decoded here, strictly: given bytes, json.loads would look for a
        # byte-order mark and take it off (every other SDK refuses one).
        text = event.value.decode("utf-8")
        value = _parse(scan, text)
    except (ValueError, UnicodeDecodeError) as e:
        raise Rejected(f"value is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise Rejected("value is not a JSON object")
    return value


def _parse(scan, text):
    """What ``json.loads(text)`` does, with its C scanner called directly:
    the decoder's two regular expressions for surrounding whitespace cost as
    much as reading a small object, and values rarely have any."""
    start = 0
    if text[:1] in _WHITESPACE:  # "" too: the scanner then says why
        start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scan(text, start)
    except StopIteration as e:  # no value where one must begin, at e.value
        raise _json.JSONDecodeError("Expecting value", text, e.value) from None
    if end != len(text):
        rest = text[end:]
        if rest.strip(_WHITESPACE):
            at = len(text) - len(rest.lstrip(_WHITESPACE))
            raise _json.JSONDecodeError("Extra data", text, at)
    return value


_WHITESPACE = " \t\n\r"


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


# What every SDK's JSON helper accepts is the same: numbers within a
# double's range (Python's own integers would take any size). Only an
# exponent or some 309 digits can leave it, so only those are converted.


def _check_range(text):
    if len(text) > 300 or "e" in text or "E" in text:
        if abs(float(text)) == float("inf"):
            raise ValueError(f"number out of range: {text[:40]}")


def _finite_float(text):
    _check_range(text)
    return float(text)


def _exact_float(text):
    _check_range(text)
    return Number(text)


def _finite_int(text):
    if len(text) > 300:
        _check_range(text)
    return int(text)


# Made once: json.loads with hooks would build a decoder on every call.
_strict_scan = _scanner.make_scanner(
    _json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, parse_int=_finite_int)
)
_exact_scan = _scanner.make_scanner(
    _json.JSONDecoder(parse_constant=_no_constant, parse_float=_exact_float, parse_int=_finite_int)
)


def with_json(event, value):
    """``event`` with its value replaced by ``value`` as compact JSON."""
    event.value = _json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return event


def header(event, name):
    """The value of the event's first header called ``name``, or ``None``."""
    for h in event.headers:
        if h.key == name:
            return h.value
    return None


def log(level, message):
    """Writes ``message`` to the worker's log at ``level`` (``"trace"``,
    ``"debug"``, ``"info"``, ``"warn"`` or ``"error"``)."""
    from wit_world.imports import host

    host.log(getattr(_types.Level, level.upper()), str(message))

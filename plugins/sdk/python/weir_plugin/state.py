"""Keyed state the host keeps for the stage: values under keys, scoped to
the stage and to the partition the instance serves.

The host holds the state beside the worker thread, persists only what
changed, and hands it to every new instance and version of the stage: the
stage needs no checkpoint methods for it, and what a batch costs depends
on the keys it changes, not on how many the state holds. It is reachable
while ``process`` runs, in a stage that is not ``stateless``. The writes of
a batch take effect when ``process`` returns; a batch that fails leaves no
trace in the state.

Keys and values are ``bytes`` (a ``str`` is taken as UTF-8). Keys are at
most 4 KiB, values at most 1 MiB, a partition's state at most the stage's
``state_max_bytes``; a write past a limit raises :class:`StateError` with
the host's reason. ``get_int``/``set_int`` keep integers as 8 bytes,
little-endian, like the other SDKs.

    from weir_plugin import state

    n = state.get_int(key) + 1
    state.set_int(key, n)
"""

from componentize_py_types import Err as _Err

# At import: a component holds only the modules its build-time start-up
# imported.
from wit_world.imports import state as _state


class StateError(Exception):
    """A state operation was refused; the message is the host's reason."""


def _bytes(x):
    return x.encode() if isinstance(x, str) else bytes(x)


def _call(name, *args):
    try:
        return getattr(_state, name)(*args)
    except _Err as e:
        raise StateError(str(e.value)) from None


def get(key):
    """The value under ``key`` (``bytes``), or ``None``."""
    return _call("get", _bytes(key))


def get_many(keys):
    """The values under ``keys``, in their order (``None`` for a key without
    one), in one host call."""
    return _call("get_many", [_bytes(k) for k in keys])


def set(key, value):  # noqa: A001 - the operation's name in every SDK
    """Sets ``key`` to ``value``."""
    _call("set", _bytes(key), _bytes(value))


def delete(key):
    """Removes ``key``."""
    _call("delete", _bytes(key))


def set_many(entries):
    """Several writes in one host call, all or nothing: ``(key, value)``
    pairs, where a ``None`` value removes the key."""
    _call("set_many", [(_bytes(k), None if v is None else _bytes(v)) for k, v in entries])


def get_int(key, default=0):
    """The integer under ``key`` (8 bytes, little-endian), or ``default``."""
    v = get(key)
    return default if v is None else int.from_bytes(v, "little", signed=True)


def set_int(key, n):
    """Stores ``n`` under ``key`` as 8 bytes, little-endian."""
    set(key, int(n).to_bytes(8, "little", signed=True))

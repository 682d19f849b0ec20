"""Counts events per key and stamps each event with the running count in the
header `count` (unkeyed events count under the empty key): the Python twin
of the Rust `counter` example. Its checkpoint has the Rust counter's format,
so a stage can swap between the two and keep its counts.
"""

import struct

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports.types import Event, Header, Output

# The stage's state. Module level: it lives as long as the instance.
COUNTS: dict[bytes, int] = {}


class Transform(exports.Transform):
    def init(self, config: list[tuple[str, str]]) -> None:
        COUNTS.clear()

    def process(self, batch: list[Event]) -> Output:
        for event in batch:
            key = event.key or b""
            n = COUNTS.get(key, 0) + 1
            COUNTS[key] = n
            event.headers.append(Header("count", str(n).encode()))
        return Output(batch, [])

    def checkpoint_export(self) -> bytes:
        # For each key in byte order: u32 key length, key, u64 count (LE).
        out = bytearray()
        for key in sorted(COUNTS):
            out += struct.pack("<I", len(key)) + key + struct.pack("<Q", COUNTS[key])
        return bytes(out)

    def checkpoint_import(self, state: bytes) -> None:
        counts = {}
        at = 0
        try:
            while at < len(state):
                (length,) = struct.unpack_from("<I", state, at)
                key = state[at + 4 : at + 4 + length]
                if len(key) != length:
                    raise struct.error("short key")
                (n,) = struct.unpack_from("<Q", state, at + 4 + length)
                counts[key] = n
                at += 4 + length + 8
        except struct.error:
            raise Err("checkpoint is truncated")
        COUNTS.clear()
        COUNTS.update(counts)

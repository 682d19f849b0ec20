"""Counts events per key and stamps each event with the running count in the
header ``count`` (unkeyed events count under the empty key). Its checkpoint
has the format every language's counter shares (see ../../README.md), so a
stage can swap between languages and keep its counts."""

import struct

from weir_plugin import Header, Stage


class Counter(Stage):
    def init(self, config):
        self.counts = {}

    def process(self, events):
        for event in events:
            key = event.key or b""
            n = self.counts.get(key, 0) + 1
            self.counts[key] = n
            event.headers.append(Header("count", str(n).encode()))
        return events

    def checkpoint_export(self):
        # For each key in byte order: u32 key length, key, u64 count (LE).
        out = bytearray()
        for key in sorted(self.counts):
            out += struct.pack("<I", len(key)) + key + struct.pack("<Q", self.counts[key])
        return bytes(out)

    def checkpoint_import(self, state):
        counts = {}
        at = 0
        try:
            while at < len(state):
                (length,) = struct.unpack_from("<I", state, at)
                key = bytes(state[at + 4 : at + 4 + length])
                if len(key) != length:
                    raise struct.error("short key")
                (n,) = struct.unpack_from("<Q", state, at + 4 + length)
                counts[key] = n
                at += 4 + length + 8
        except struct.error:
            raise ValueError("checkpoint is truncated") from None
        self.counts = counts

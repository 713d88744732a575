"""The layout of one queue message: a pickle stream, or a pickle stream beside its out-of-band
buffers, or the name of a side segment that holds one of those (docs/queue.md, "Messages")."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable, Sequence
from typing import Any

# The first byte of a message says what it is. A protocol 2+ pickle stream starts with PROTO
# (0x80), so the hot path (a plain pickle, no out-of-band buffer) needs no header at all.
PICKLE = 0x80
CUSTOM = 0x01  # the bytes of a user's dumps() follow
BUFFERS = 0x02  # header, pickle stream, then each out-of-band buffer, 16-byte aligned
SIDE = 0x03  # the name of a side segment (UTF-8) follows; the segment holds a frame

_HEAD = struct.Struct("<B3xIQ")  # kind, buffer count, pickle length; then one u64 per buffer
ALIGN = 16


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class Frame:
    """A pickled object laid out for writing: the pickle stream and its out-of-band buffers
    (raw contiguous memoryviews), with each part's offset in the message."""

    __slots__ = ("data", "buffers", "offsets", "size", "header")

    def __init__(self, data: bytes, buffers: Sequence[pickle.PickleBuffer]) -> None:
        self.data = data
        self.buffers = [b.raw() for b in buffers]
        count = len(self.buffers)
        lengths = [b.nbytes for b in self.buffers]
        self.header = _HEAD.pack(BUFFERS, count, len(data)) + struct.pack(f"<{count}Q", *lengths)
        position = _aligned(len(self.header))
        self.offsets = [position]
        position = _aligned(position + len(data))
        for length in lengths:
            self.offsets.append(position)
            position = _aligned(position + length)
        self.size = position

    def write(self, into: memoryview) -> None:
        """Copies the frame into `into` (at least `size` bytes): one copy of each buffer."""
        into[: len(self.header)] = self.header
        start = self.offsets[0]
        into[start : start + len(self.data)] = self.data
        for buffer, start in zip(self.buffers, self.offsets[1:], strict=True):
            into[start : start + buffer.nbytes] = buffer

    def to_bytes(self, out: bytearray | None = None) -> bytearray:
        """The frame in memory of its own (for the spill buffer and side segments): in `out`
        when given (exactly `size` bytes; the gaps between parts keep what they held)."""
        if out is None:
            out = bytearray(self.size)
        with memoryview(out) as view:
            self.write(view)
        return out


def decode(
    message: memoryview,
    loads: Callable[..., Any] | None,
    copy_buffers: bool,
) -> Any:
    """The object in a frame (any kind but SIDE). With `copy_buffers`, each out-of-band buffer is
    copied into a bytearray of its own (the message's memory is reused after this call);
    otherwise the objects view `message` (a side segment owned by the caller)."""
    kind = message[0]
    if kind == PICKLE:
        return pickle.loads(message) if loads is None else loads(message)
    if kind == CUSTOM:
        assert loads is not None
        return loads(message[1:])
    if kind == BUFFERS:
        _, count, length = _HEAD.unpack_from(message)
        lengths = struct.unpack_from(f"<{count}Q", message, _HEAD.size)
        position = _aligned(_HEAD.size + 8 * count)
        data = message[position : position + length]
        position = _aligned(position + length)
        buffers: list[Any] = []
        for size in lengths:
            part = message[position : position + size]
            buffers.append(bytearray(part) if copy_buffers else part)
            position = _aligned(position + size)
        return pickle.loads(data, buffers=buffers)
    raise ValueError(f"not a queue message (kind byte {kind:#x})")

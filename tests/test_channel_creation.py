"""Creating and opening channels and locks (issue 17, item 4): exclusive creation, the real
capacity, size errors that say what would fit, and segments that cannot be channels refused at
once, without advice to delete them."""

from __future__ import annotations

import mmap
import time

import pytest

import posix_ipc
from ipcxx import Channel, ChannelError, RobustLock

RING_OFFSET = 4096 + 512 * 16  # header and participant table (docs/channel.md)


def test_exclusive_create_refuses_an_existing_name(make_name):
    name = make_name()
    with Channel(name, create=True, exclusive=True, capacity=4096) as made:
        assert made.capacity == 4096
        with pytest.raises(FileExistsError):
            Channel(name, create=True, exclusive=True)
        with Channel(name, create=True) as opened:  # not exclusive: opens it
            assert opened.capacity == 4096
    with pytest.raises(ValueError, match="exclusive=True needs create=True"):
        Channel(name, exclusive=True)
    with Channel(None, create=True, exclusive=True, capacity=4096) as anonymous:
        Channel.unlink(anonymous)


def test_exclusive_create_refuses_a_foreign_segment_too(make_name):
    name = make_name()
    posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=64).close_fd()
    with pytest.raises(FileExistsError):
        Channel(name, create=True, exclusive=True)
    with pytest.raises(FileExistsError):
        RobustLock(name, create=True, exclusive=True)


def test_robust_lock_exclusive_create(make_name):
    name = make_name()
    made = RobustLock(name, create=True, exclusive=True)
    opened = RobustLock(name, create=True)  # not exclusive: opens it
    try:
        with pytest.raises(FileExistsError):
            RobustLock(name, create=True, exclusive=True)
        assert opened.acquire(timeout=0)
        assert made.locked()
        opened.release()
        with pytest.raises(ValueError, match="exclusive=True needs create=True"):
            RobustLock(name, exclusive=True)
    finally:
        opened.close()
        made.close()


def test_an_existing_channel_keeps_its_capacity_and_the_rounding_is_readable(make_name):
    name = make_name()
    with Channel(name, create=True, capacity=3 << 20) as made:
        assert made.capacity == 4 << 20  # rounded up to a power of two
        assert made.max_message_size == (2 << 20) - 16
        with Channel(name, create=True, capacity=4096) as opened:
            assert opened.capacity == 4 << 20  # capacity only applies to a creation


@pytest.mark.parametrize("size", [2049 - 16, 1 << 20, (1 << 20) + 1])
def test_a_message_that_can_never_fit_names_the_capacity_that_would(make_name, size):
    with Channel(make_name(), create=True, capacity=4096) as small:
        with pytest.raises(ValueError, match="or more would hold it") as raised:
            small.send(b"x" * size)
        with pytest.raises(ValueError, match="or more would hold it"):
            small.reserve(size)
        with pytest.raises(ValueError, match="or more would hold it"):
            small.send_many([b"ok", b"x" * size])
    fits = int(str(raised.value).split("a channel of capacity ")[1].split()[0])
    name = make_name()
    with Channel(name, create=True, capacity=fits) as big:
        assert big.capacity == fits
        big.send(b"y" * size)
        assert len(big.receive(timeout=5)) == size
    if fits > 4096:  # the smallest: half of it would not do
        with Channel(make_name(), create=True, capacity=fits // 2) as half:
            with pytest.raises(ValueError):
                half.send(b"y" * size)


def _segment(name: str, size: int, header: bytes = b"") -> None:
    memory = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=size)
    if header:
        with mmap.mmap(memory.fd, size) as mapped:
            mapped[: len(header)] = header
    memory.close_fd()


@pytest.mark.parametrize(
    "size, header",
    [
        (100, b""),  # smaller than any channel
        (RING_OFFSET + 5000, b""),  # not a power-of-two ring
        (1 << 20, b""),  # a round size without room for the header
        (RING_OFFSET + 4096, b"NOTACHAN"),  # a channel's size, another program's bytes
        (RING_OFFSET + 4096, b"IPCXX\xff"),  # a magic number that is not being written
    ],
)
def test_segments_that_cannot_be_channels_are_refused_at_once(make_name, size, header):
    name = make_name()
    _segment(name, size, header)
    started = time.monotonic()
    with pytest.raises(ChannelError, match="is not an ipcxx channel") as raised:
        Channel(name)
    assert time.monotonic() - started < 0.5  # no wait for a creator: none could be there
    assert "unlink" not in str(raised.value)
    with pytest.raises(ChannelError):
        Channel(name, create=True)  # opening what exists, never overwriting it
    assert posix_ipc.SharedMemory(name).size == size  # left as it was


def test_a_zero_filled_segment_of_a_channels_size_is_reported_as_never_initialised(make_name):
    name = make_name()
    _segment(name, RING_OFFSET + 4096)
    started = time.monotonic()
    with pytest.raises(ChannelError, match="never initialised") as raised:
        Channel(name)
    assert time.monotonic() - started >= 0.9  # a creator gets a second to finish
    assert "if no process is creating it" in str(raised.value)

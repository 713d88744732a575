"""ipcxx.Channel with large messages in batches (issue 17, item 7): receive_many_into into reused
buffers, receive_many of 1 MiB messages, the adaptive spin's state (spin_current), and batched
64 KiB streams between processes with the adaptive spin."""

from __future__ import annotations

import os
import signal

import pytest

from ipcxx import Channel

MIB = 1 << 20


@pytest.fixture
def channel(make_name):
    made = Channel(make_name(), create=True, capacity=1 << 16)
    yield made
    made.close()


def _pattern(index: int, size: int) -> bytes:
    """A message whose every byte depends on its index (a mix-up shows)."""
    return bytes([index % 251]) * (size - 4) + index.to_bytes(4, "little")


def test_receive_many_into_fills_the_buffers_in_order_and_returns_the_sizes(channel):
    channel.send_many([b"a", b"bb", b"ccc"])
    buffers = [bytearray(8) for _ in range(4)]
    sizes = channel.receive_many_into(buffers, timeout=5)
    assert sizes == [1, 2, 3]
    assert [bytes(b[:n]) for b, n in zip(buffers, sizes, strict=False)] == [b"a", b"bb", b"ccc"]
    assert buffers[3] == bytearray(8)  # untouched: no fourth message
    with pytest.raises(TimeoutError):
        channel.receive_many_into(buffers, timeout=0)
    # Any writable buffer: a memoryview slice, an array.
    channel.send(b"xyz")
    target = bytearray(16)
    assert channel.receive_many_into([memoryview(target)[4:8]], timeout=5) == [3]
    assert target[4:7] == b"xyz"


def test_receive_many_into_stops_before_a_message_longer_than_its_buffer(channel):
    channel.send_many([b"1234", b"123456789", b"12"])
    small = [bytearray(4), bytearray(4), bytearray(4)]
    assert channel.receive_many_into(small, timeout=5) == [4]  # the second does not fit
    with pytest.raises(ValueError, match="9 bytes"):
        channel.receive_many_into(small, timeout=5)  # the first does not fit: it stays queued
    sizes = channel.receive_many_into([bytearray(16), bytearray(16)], timeout=5)
    assert sizes == [9, 2]


def test_receive_many_into_refuses_bad_arguments(channel):
    with pytest.raises(ValueError, match="at least one"):
        channel.receive_many_into([])
    with pytest.raises(BufferError):  # as receive_into(): a read-only buffer
        channel.receive_many_into([b"read-only"])
    with pytest.raises(TypeError):
        channel.receive_many_into(5)  # type: ignore[arg-type]
    channel.send(b"kept")
    with pytest.raises(TypeError):
        channel.receive_many_into([bytearray(8), "not a buffer"])  # type: ignore[list-item]
    assert channel.receive(timeout=0) == b"kept"  # a refused call took nothing


@pytest.mark.parametrize("into", [False, True], ids=["receive_many", "receive_many_into"])
def test_1mib_messages_from_another_process_arrive_intact_and_independent(make_name, into):
    count = 24
    with Channel(make_name(), create=True, capacity=8 * MIB) as channel:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                with Channel(channel.name) as own:
                    for start in range(0, count, 4):
                        own.send_many([_pattern(i, MIB) for i in range(start, start + 4)], 30)
                status = 0
            finally:
                os._exit(status)
        try:
            received: list[bytes] = []
            buffers = [bytearray(MIB) for _ in range(5)]
            while len(received) < count:
                if into:
                    sizes = channel.receive_many_into(buffers, timeout=30)
                    received += [bytes(b[:n]) for b, n in zip(buffers, sizes, strict=False)]
                else:
                    batch = channel.receive_many(5, timeout=30)
                    assert all(type(m) is bytes for m in batch)
                    received += batch
            # Every result is its own message, unchanged by the batches received after it.
            assert len(received) == count
            for index, message in enumerate(received):
                assert message == _pattern(index, MIB), index
            assert len({id(m) for m in received}) == count
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            _, status = os.waitpid(pid, 0)
        assert status == 0


def test_spin_current_shows_the_adaptive_spin_shrinking_after_timed_out_waits(channel):
    assert channel.spin is None
    assert channel.spin_current == pytest.approx(50e-6)
    with pytest.raises(TimeoutError):
        channel.receive(timeout=0.002)  # spun 50 µs in vain, then slept until the timeout
    assert channel.spin_current == pytest.approx(25e-6)
    for _ in range(8):
        with pytest.raises(TimeoutError):
            channel.receive(timeout=0.001)
    assert channel.spin_current == pytest.approx(1e-6)  # the floor
    channel.spin = 20e-6  # fixed: it stays
    with pytest.raises(TimeoutError):
        channel.receive(timeout=0.001)
    assert channel.spin_current == pytest.approx(20e-6)
    channel.spin = None  # adaptive again, from the top
    assert channel.spin_current == pytest.approx(50e-6)
    with pytest.raises(AttributeError):
        channel.spin_current = 1e-6  # type: ignore[misc]


@pytest.mark.parametrize("consumer", ["receive_many", "receive"])
def test_batched_64kib_messages_between_processes_with_the_adaptive_spin(make_name, consumer):
    # Both sides adaptive (the default): every wait that sleeps must still be woken, in both
    # directions (a full ring for the producer, an empty one for the consumer).
    count, size = 2000, 64 * 1024
    with Channel(make_name(), create=True) as channel:
        assert channel.spin is None
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                with Channel(channel.name) as own:
                    for start in range(0, count, 64):
                        batch = [_pattern(i, size) for i in range(start, min(count, start + 64))]
                        if own.send_many(batch, 30) != len(batch):
                            os._exit(2)
                status = 0
            finally:
                os._exit(status)
        try:
            got = 0
            while got < count:
                batch = (
                    channel.receive_many(64, timeout=30)
                    if consumer == "receive_many"
                    else [channel.receive(timeout=30)]
                )
                for message in batch:
                    assert message == _pattern(got, size), got
                    got += 1
            assert 1e-6 <= channel.spin_current <= 50e-6 + 1e-12
        except BaseException:
            os.kill(pid, signal.SIGKILL)  # never left blocked on a ring nobody drains
            raise
        finally:
            _, status = os.waitpid(pid, 0)
        assert status == 0

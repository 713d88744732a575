"""ipcxx.Channel: every API point and error, zero-copy views, timeouts, signals, bad segments,
and cross-process delivery (docs/channel.md, docs/guide.md "Channel")."""

from __future__ import annotations

import gc
import math
import os
import signal
import struct
import threading

import pytest

import ipcxx
import posix_ipc
from ipcxx import Channel, ChannelError
from tests.kernel_wait import wait_until_blocked


@pytest.fixture
def channel(make_name):
    made = Channel(make_name(), create=True, capacity=1 << 16)
    yield made
    made.close()


def test_attributes_and_round_trip(channel, make_name):
    assert channel.capacity == 1 << 16
    assert channel.max_message_size == (1 << 15) - 16
    assert channel.name.startswith("/")
    assert channel.lost == channel.abandoned == 0
    assert not channel.closed
    assert repr(channel) == f"<ipcxx.Channel {channel.name!r} capacity=65536>"
    channel.send(b"hello")
    channel.send(bytearray(b"world"), timeout=1)
    channel.send(memoryview(b"__xyz__")[2:5])
    channel.send(b"")
    assert [channel.receive(), channel.receive(0), channel.receive(timeout=None)] == [
        b"hello",
        b"world",
        b"xyz",
    ]
    assert channel.receive() == b""
    other = Channel(channel.name)  # opened by name: same ring
    other.send(b"via other")
    assert channel.receive() == b"via other"
    other.close()


def test_capacity_is_rounded_up_to_a_power_of_two(make_name):
    with Channel(make_name(), create=True, capacity=5000) as made:
        assert made.capacity == 8192
    with Channel(make_name(), create=True, capacity=1) as made:
        assert made.capacity == 4096
    with pytest.raises(ValueError):
        Channel(make_name(), create=True, capacity=0)
    with pytest.raises(ValueError):
        Channel(make_name(), create=True, capacity=(1 << 32) + 1)


def test_bad_modes_are_refused(make_name):
    for mode in (-1, 0o10000):
        with pytest.raises(ValueError, match="mode"):
            Channel(make_name(), create=True, capacity=4096, mode=mode)
    with Channel(make_name(), create=True, capacity=4096, mode=0o640) as made:
        assert os.stat(f"/dev/shm{made.name}").st_mode & 0o7777 == 0o640


def test_send_many_refuses_a_batch_with_a_message_too_large_before_sending(channel):
    with pytest.raises(ValueError, match="can never fit"):
        channel.send_many([b"a"] * 100 + [b"x" * (channel.max_message_size + 1)])
    with pytest.raises(TimeoutError):
        channel.receive(0)  # nothing of the batch went out


def test_random_name_needs_create():
    with pytest.raises(ValueError, match="create=True"):
        Channel()
    made = Channel(create=True, capacity=4096)
    try:
        assert made.name.startswith("/")
        assert Channel(made.name).capacity == 4096
    finally:
        made.unlink()
        made.close()


def test_opening_a_missing_channel_and_unlinking(make_name):
    name = make_name()
    with pytest.raises(FileNotFoundError):
        Channel(name)
    made = Channel(name, create=True, capacity=4096)
    ipcxx.unlink_channel(name)
    with pytest.raises(FileNotFoundError):
        ipcxx.unlink_channel(name)
    made.send(b"still works after unlink")
    assert made.receive() == b"still works after unlink"
    made.close()
    with pytest.raises(TypeError):
        ipcxx.unlink_channel(42)


def test_context_manager_closes_and_closed_channel_raises(make_name):
    with Channel(make_name(), create=True, capacity=4096) as made:
        made.send(b"x")
    assert made.closed
    assert "(closed)" in repr(made)
    made.close()  # idempotent
    for call in (
        lambda: made.send(b"x"),
        made.receive,
        lambda: made.receive_into(bytearray(10)),
        lambda: made.send_many([b"x"]),
        lambda: made.receive_many(1),
        lambda: made.reserve(1),
        made.peek,
        made.unlink,
        lambda: made.capacity,
    ):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_too_large_and_bad_arguments(channel):
    with pytest.raises(ValueError, match="can never fit"):
        channel.send(b"x" * (channel.max_message_size + 1))
    channel.send(b"x" * channel.max_message_size)
    assert len(channel.receive()) == channel.max_message_size
    for timeout in (-1, math.nan, -math.inf):
        with pytest.raises(ValueError):
            channel.receive(timeout)
    for timeout in ("1", True, [1]):
        with pytest.raises(TypeError):
            channel.receive(timeout)
    with pytest.raises(TypeError):
        channel.send("text is not a buffer")
    with pytest.raises(ValueError):
        channel.receive_many(0)
    with pytest.raises(ValueError):
        channel.reserve(-1)
    with pytest.raises(ValueError, match="can never fit"):
        channel.reserve(channel.max_message_size + 1)
    with pytest.raises(BufferError):
        channel.receive_into(b"read-only bytes")
    with pytest.raises(TypeError):
        channel.send(b"x", timeout=1, extra=2)
    channel.send(b"y")
    assert channel.receive(math.inf) == b"y"  # inf: without limit


def test_timeouts_raise_timeout_error(channel):
    with pytest.raises(TimeoutError):
        channel.receive(0)
    with pytest.raises(TimeoutError):
        channel.receive(0.02)
    with pytest.raises(TimeoutError):
        channel.peek(timeout=0.01)
    with pytest.raises(TimeoutError):
        channel.receive_many(5, timeout=0)
    big = b"x" * 10000
    sent = 0
    while True:
        try:
            channel.send(big, timeout=0)
        except TimeoutError:
            break
        sent += 1
    assert sent == 6  # 65536 bytes hold six records of 10016 (+ padding at the end)
    with pytest.raises(TimeoutError):
        channel.reserve(10000, timeout=0.01)
    # send_many reports a partial send instead of raising once something went out.
    channel.receive()
    assert channel.send_many([big, big, big], timeout=0.01) == 1
    with pytest.raises(TimeoutError):
        channel.send_many([big], timeout=0)


def test_receive_into_and_too_small_buffers(channel):
    channel.send(b"0123456789")
    small = bytearray(4)
    with pytest.raises(ValueError, match="stays queued"):
        channel.receive_into(small)
    target = bytearray(32)
    assert channel.receive_into(target) == 10
    assert target[:10] == b"0123456789"
    channel.send(b"abc")
    view = memoryview(bytearray(8))
    assert channel.receive_into(view[2:], timeout=1) == 3
    assert bytes(view[2:5]) == b"abc"


def test_send_many_and_receive_many_keep_order(channel):
    assert channel.send_many([b"a", bytearray(b"bb"), memoryview(b"ccc")]) == 3
    assert channel.send_many(iter([b"d"])) == 1
    assert channel.send_many([]) == 0
    assert channel.receive_many(2) == [b"a", b"bb"]
    assert channel.receive_many(100) == [b"ccc", b"d"]
    with pytest.raises(TypeError):
        channel.send_many([b"ok", 5])
    with pytest.raises(TypeError):
        channel.send_many(5)


def test_reserve_commits_on_exit_and_discards_on_exception(channel):
    with channel.reserve(5) as view:
        assert isinstance(view, memoryview) and not view.readonly and len(view) == 5
        view[:] = b"12345"
    with pytest.raises(KeyError):
        with channel.reserve(3) as view:
            view[:] = b"bad"
            raise KeyError
    assert channel.abandoned == 1
    channel.send(b"after")
    assert channel.receive() == b"12345"
    assert channel.receive() == b"after"
    # A view is unusable after its block; a new export is refused.
    with pytest.raises(ValueError):
        view[0]
    reservation = channel.reserve(2)
    assert reservation.size == 2 and not reservation.finished
    with reservation as view:
        view[:] = b"ok"
    assert reservation.finished
    with pytest.raises(BufferError):
        memoryview(reservation)
    with pytest.raises(ValueError):
        reservation.__enter__()
    assert channel.receive() == b"ok"


def test_a_reservation_dropped_unfinished_is_never_delivered(channel):
    reservation = channel.reserve(4)
    channel.send(b"behind it")
    del reservation
    gc.collect()
    assert channel.receive(0) == b"behind it"
    assert channel.abandoned == 1


def test_peek_consumes_on_exit_even_after_an_exception(channel):
    channel.send(b"first")
    channel.send(b"second")
    with channel.peek() as view:
        assert view.readonly and bytes(view) == b"first"
        with pytest.raises(TypeError):
            view[0] = 1
    with pytest.raises(KeyError):
        with channel.peek() as view:
            raise KeyError
    with pytest.raises(TimeoutError):
        channel.receive(0)
    channel.send(b"third")
    peeked = channel.peek()
    del peeked  # collected unfinished: consumed
    with pytest.raises(TimeoutError):
        channel.receive(0)


def test_views_outlive_close_of_the_channel(make_name):
    made = Channel(make_name(), create=True, capacity=4096)
    made.send(b"kept mapped")
    with made.peek() as view:
        part = view[5:]
        made.close()
        assert bytes(view) == b"kept mapped"
    assert bytes(part) == b"mapped"  # still mapped (its bytes now belong to the ring again)
    reopened = Channel(made.name)
    with reopened.reserve(3) as view:
        reopened.close()
        view[:] = b"end"
    again = Channel(made.name)
    assert again.receive(0) == b"end"
    del part
    gc.collect()
    again.unlink()
    again.close()


def test_spin_setting(channel):
    assert channel.spin is None  # adaptive, at most 50 µs
    channel.spin = 50e-6  # a fixed spin of the same length reads differently
    assert channel.spin == pytest.approx(50e-6)
    channel.spin = 0
    assert channel.spin == 0
    with pytest.raises(TimeoutError):
        channel.receive(0.01)
    channel.spin = 0.001
    assert channel.spin == pytest.approx(0.001)
    channel.spin = None
    assert channel.spin is None
    for bad in (-1, math.nan, math.inf, 2.0):
        with pytest.raises(ValueError):
            channel.spin = bad
    with pytest.raises(TypeError):
        channel.spin = "fast"
    with pytest.raises(AttributeError):
        channel.capacity = 5
    with pytest.raises(AttributeError):
        del channel.spin


def test_segments_that_are_not_channels_raise_channel_error(make_name):
    name = make_name()
    memory = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=100)
    memory.close_fd()
    with pytest.raises(ChannelError, match="not an ipcxx channel"):
        Channel(name)
    posix_ipc.unlink_shared_memory(name)
    made = Channel(name, create=True, capacity=4096)
    made.close()
    memory = posix_ipc.SharedMemory(name)
    import mmap

    mapped = mmap.mmap(memory.fd, memory.size)
    memory.close_fd()
    mapped[8:12] = struct.pack("<I", 99)  # version
    with pytest.raises(ChannelError, match="version 99"):
        Channel(name)
    mapped[8:12] = struct.pack("<I", 1)
    assert isinstance(ChannelError("x"), ValueError)
    opened = Channel(name)
    opened.send(b"x" * 40)
    ring = 4096 + 512 * 16
    mapped[ring + 8 : ring + 12] = struct.pack("<I", 1 << 30)  # a length beyond the ring
    with pytest.raises(ChannelError, match="corrupted"):
        opened.receive(0)
    opened.close()
    mapped.close()


def test_a_signal_handler_interrupts_a_wait_and_can_close(channel):
    # Ctrl-C ends a wait (the wait sleeps in slices and runs handlers between them).
    previous = signal.getsignal(signal.SIGUSR1)
    main = threading.get_native_id()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGUSR1, interrupt)
    try:
        shm = f"/dev/shm{channel.name}"
        killer = threading.Thread(
            target=lambda: (
                wait_until_blocked(main, "futex", futex_in=shm),
                os.kill(os.getpid(), signal.SIGUSR1),
            )
        )
        killer.start()
        with pytest.raises(KeyboardInterrupt):
            channel.receive()
        killer.join()

        def closing(signum, frame):
            channel.close()

        signal.signal(signal.SIGUSR1, closing)
        killer = threading.Thread(
            target=lambda: (
                wait_until_blocked(main, "futex", futex_in=shm),
                os.kill(os.getpid(), signal.SIGUSR1),
            )
        )
        killer.start()
        with pytest.raises(ValueError, match="closed"):
            channel.receive()
        killer.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_waiting_receiver_is_woken_by_another_process(channel, spawn):
    child = spawn(
        "import sys, ipcxx\n"
        "ch = ipcxx.Channel(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "ch.send(b'from the child')\n"
        "sys.stdin.readline()\n"  # wait for the reply: never take our own message
        "print(ch.receive(timeout=30).decode(), flush=True)\n",
        channel.name,
    )
    assert child.read_line() == "ready"
    main = threading.get_native_id()
    waker = threading.Thread(
        target=lambda: (
            wait_until_blocked(main, "futex", futex_in=f"/dev/shm{channel.name}"),
            child.send_line("go"),
        )
    )
    waker.start()
    assert channel.receive(timeout=30) == b"from the child"
    waker.join()
    channel.send(b"reply")
    child.send_line("sent")
    assert child.read_line() == "reply"
    assert child.finish() == 0


def test_a_fork_child_uses_an_inherited_channel(channel):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            for i in range(1000):
                channel.send(i.to_bytes(4, "little"))
            os.write(write, b"k")
        finally:
            os._exit(0)
    os.close(write)
    assert [int.from_bytes(channel.receive(10), "little") for _ in range(1000)] == list(range(1000))
    assert os.read(read, 1) == b"k"
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0


def test_a_reservation_inherited_by_a_fork_child_is_not_finished_there(channel):
    reservation = channel.reserve(3)
    pid = os.fork()
    if pid == 0:
        # Exiting the block in the child must not commit the parent's message.
        try:
            with reservation as view:
                view[:] = b"kid"
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    with pytest.raises(TimeoutError):
        channel.receive(0)
    with reservation as view:
        view[:] = b"dad"
    assert channel.receive(0) == b"dad"

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
    peeked = made.peek()
    with pytest.raises(BufferError, match="consumed"):
        with peeked as view:
            part = view[5:]
            made.close()
            assert bytes(view) == b"kept mapped"
    # Still mapped, and still this message's: the slice holds it (the block's end refused).
    assert bytes(part) == b"mapped" and not peeked.finished
    del part, view
    assert peeked.finished
    reopened = Channel(made.name)
    with reopened.reserve(3) as view:
        reopened.close()
        view[:] = b"end"
    again = Channel(made.name)
    assert again.receive(0) == b"end"
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
    mapped[8:12] = struct.pack("<I", 1)  # layout 1 had no end-of-stream words: refused
    with pytest.raises(ChannelError, match="version 1, this build reads version 2"):
        Channel(name)
    mapped[8:12] = struct.pack("<I", 2)
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


# Lifetimes a user cannot get wrong (issue 16, class 1): a view dropped without an exit is
# finished when collected, and an export that outlives its block keeps the message held (the
# block's end raises BufferError) instead of aliasing ring bytes that producers reuse.


def test_a_reservation_entered_and_dropped_in_another_process_is_discarded_when_collected(
    channel, spawn
):
    child = spawn(
        "import gc, sys, ipcxx\n"
        "ch = ipcxx.Channel(sys.argv[1])\n"
        "view = ch.reserve(8).__enter__()\n"
        "view[:] = b'unsent!!'\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
        "del view  # never exited: the view and its memoryview form a cycle\n"
        "gc.collect()\n"
        "print('collected', flush=True)\n"
        "sys.stdin.readline()\n",  # alive until the end: a dead one would be recovered anyway
        channel.name,
    )
    assert child.read_line() == "held"
    channel.send(b"behind it")
    with pytest.raises(TimeoutError):
        channel.receive(0)  # FIFO: held back by the open reservation
    child.send_line("drop")
    assert child.read_line() == "collected"
    assert channel.receive(0) == b"behind it"
    assert channel.abandoned == 1 and channel.lost == 0
    assert child.finish() == 0


def test_a_peek_entered_and_dropped_in_another_process_is_consumed_when_collected(channel, spawn):
    half = b"h" * channel.max_message_size  # two of these fill the ring exactly
    channel.send(half)
    child = spawn(
        "import gc, sys, ipcxx\n"
        "ch = ipcxx.Channel(sys.argv[1])\n"
        "view = ch.peek(timeout=30).__enter__()\n"
        "print(len(view), flush=True)\n"
        "sys.stdin.readline()\n"
        "del view\n"
        "gc.collect()\n"
        "print('collected', flush=True)\n"
        "sys.stdin.readline()\n",
        channel.name,
    )
    assert child.read_line() == str(len(half))
    channel.send(b"2" * len(half))
    with pytest.raises(TimeoutError):
        channel.send(b"3" * len(half), timeout=0)  # the peeked message holds its space
    child.send_line("drop")
    assert child.read_line() == "collected"
    channel.send(b"3" * len(half), timeout=0)
    assert channel.receive(0)[:1] == b"2" and channel.receive(0)[:1] == b"3"
    assert channel.lost == 0
    assert child.finish() == 0


def test_hundreds_of_dropped_views_leak_no_participant_slot_and_no_mapping(make_name):
    # Reservations and peeks on two channels, so that no peek waits behind a reservation that
    # is not collected yet (FIFO).
    reserved = Channel(make_name(), create=True, capacity=1 << 16)
    peeked = Channel(make_name(), create=True, capacity=1 << 16)

    def mappings() -> int:
        with open("/proc/self/maps") as maps:
            names = [f"/dev/shm{made.name}" for made in (reserved, peeked)]
            return sum(name in line for line in maps for name in names)

    before = mappings()
    for turn in range(600):  # more than the 512 participant slots of each channel
        user = Channel(reserved.name)
        view = user.reserve(8).__enter__()
        assert gc.is_tracked(view.obj)
        view[:] = b"dropped!"
        del view  # entered, never exited
        user.close()
        user = Channel(peeked.name)
        user.send(b"p")
        user.peek().__enter__()  # entered and dropped at once
        user.close()
        # A collection every 50 turns keeps at most 100 dropped views of each channel alive,
        # well under its 512 slots. Not every turn: a free-threaded build's collections are
        # all full ones (no generations), 40 ms each with the suite's heap.
        if turn % 50 == 49:
            gc.collect()
    gc.collect()
    assert mappings() == before
    for made in (reserved, peeked):
        late = Channel(made.name)  # a slot is free
        late.send(b"joined")
        assert made.receive(0) == b"joined"  # every "p" was consumed, every reservation dropped
        late.close()
    assert reserved.abandoned == 600 and peeked.lost == 0
    for made in (reserved, peeked):
        made.unlink()
        made.close()


def test_a_numpy_array_that_outlives_its_peek_keeps_the_message_until_it_dies(channel, spawn):
    numpy = pytest.importorskip("numpy")
    channel.send(numpy.arange(4, dtype=numpy.float64).tobytes())
    peeked = channel.peek()
    with pytest.raises(BufferError, match="held until"):
        with peeked as view:
            array = numpy.frombuffer(view, dtype=numpy.float64)
    assert not peeked.finished
    producer = spawn(
        "import sys, ipcxx\n"
        "ch = ipcxx.Channel(sys.argv[1])\n"
        "for _ in iter(sys.stdin.readline, ''):\n"
        "    sent = 0\n"
        "    try:\n"
        "        while True:\n"
        "            ch.send(b'\\x7f' * ch.max_message_size, timeout=0)\n"
        "            sent += 1\n"
        "    except TimeoutError:\n"
        "        print(sent, flush=True)\n",
        channel.name,
    )
    full = b"\x7f" * channel.max_message_size
    producer.send_line("fill")
    assert producer.read_line() == "1"  # the rest of the ring; the held message's space is not
    assert channel.receive(0) == full
    producer.send_line("fill")
    assert producer.read_line() == "0"  # nothing frees the held space while the array lives
    assert array.tolist() == [0.0, 1.0, 2.0, 3.0]
    del array, view
    assert peeked.finished
    producer.send_line("fill")
    assert int(producer.read_line()) >= 1
    assert channel.receive(0) == full and channel.lost == 0
    assert producer.finish() == 0


def test_a_reservation_exported_beyond_its_block_is_refused_and_never_sent(channel):
    numpy = pytest.importorskip("numpy")
    reservation = channel.reserve(32)
    with pytest.raises(BufferError, match="discarded"):
        with reservation as view:
            array = numpy.frombuffer(view, dtype=numpy.float64)
            array[:] = [1, 2, 3, 4]
    channel.send(b"behind it")
    with pytest.raises(TimeoutError):
        channel.receive(0)  # the reservation is still held (FIFO)
    array[0] = 9.0  # still its own bytes: nobody else reads or writes them
    with pytest.raises(ValueError, match="exited"):
        reservation.__enter__()
    with pytest.raises(BufferError):
        memoryview(reservation)
    assert reservation.__exit__(None, None, None) is False  # a second exit does nothing
    del array, view
    assert reservation.finished
    assert channel.receive(0) == b"behind it"
    assert channel.abandoned == 1


def test_a_pickle_buffer_and_a_slice_outliving_a_block_hold_the_message(channel):
    import pickle

    channel.send(b"pickled bytes")
    peeked = channel.peek()
    with pytest.raises(BufferError, match="held until every such buffer is released"):
        with peeked as view:
            buffer = pickle.PickleBuffer(view)
            part = view[8:]
    assert bytes(buffer.raw()) == b"pickled bytes" and bytes(part) == b"bytes"
    del buffer
    assert not peeked.finished  # the slice still holds it
    del part, view
    assert peeked.finished
    assert "finished" in repr(peeked)


def test_an_exception_in_a_block_with_a_live_export_is_kept_as_the_context(channel):
    channel.send(b"abc")
    peeked = channel.peek()
    with pytest.raises(BufferError) as raised:
        with peeked as view:
            part = view[1:]
            raise KeyError("the block's own error")
    assert isinstance(raised.value.__context__, KeyError)
    assert "exited" in repr(peeked)
    assert bytes(part) == b"bc"
    del part, view
    assert peeked.finished


def test_views_in_a_dropped_exit_stack_are_finished_when_collected(channel):
    import contextlib

    channel.send(b"peeked")
    stack = contextlib.ExitStack()
    written = stack.enter_context(channel.reserve(4))
    written[:] = b"lost"
    assert bytes(stack.enter_context(channel.peek())) == b"peeked"
    channel.send(b"behind")
    del stack, written  # never closed
    gc.collect()
    assert channel.receive(0) == b"behind"
    assert channel.abandoned == 1 and channel.lost == 0


def test_a_view_left_in_a_frame_that_raised_is_finished_when_collected(channel):
    def enter_and_fail() -> None:
        view = channel.reserve(4).__enter__()
        view[:] = b"half"
        raise KeyError("failed before any with statement")

    try:
        enter_and_fail()
    except KeyError as error:
        caught = error  # its traceback keeps the frame, and the frame the view
    channel.send(b"behind")
    with pytest.raises(TimeoutError):
        channel.receive(0)
    del caught
    gc.collect()
    assert channel.receive(0) == b"behind"
    assert channel.abandoned == 1

"""receive_into() on both MessageQueue classes (an ipcxx extension), and send() of any
contiguous buffer: messages land in the caller's memory, a buffer that is too small is
refused with the message still queued, and the waits behave like receive()'s."""

from __future__ import annotations

import array
import mmap
import subprocess
import sys
import threading

import numpy
import pytest

import posix_ipc
import sysv_ipc
from tests.kernel_wait import wait_until_blocked


@pytest.fixture
def posix_queue(make_name):
    queue = posix_ipc.MessageQueue(make_name(), posix_ipc.O_CREX, max_message_size=1024)
    yield queue
    queue.close()


@pytest.fixture
def sysv_queue(sysv):
    return sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=1024))


BUFFERS = {
    "bytearray": lambda size: bytearray(size),
    "numpy": lambda size: numpy.zeros(size, dtype=numpy.uint8),
    "array": lambda size: array.array("B", bytes(size)),
    "memoryview slice": lambda size: memoryview(bytearray(size + 16))[16:],
    "mmap": lambda size: mmap.mmap(-1, size),
}


@pytest.mark.parametrize("kind", BUFFERS)
def test_posix_receive_into_fills_the_buffer_and_returns_size_and_priority(posix_queue, kind):
    buffer = BUFFERS[kind](1024)
    posix_queue.send(b"payload", priority=7)
    assert posix_queue.receive_into(buffer) == (7, 7)
    assert bytes(memoryview(buffer)[:7]) == b"payload"


@pytest.mark.parametrize("kind", BUFFERS)
def test_sysv_receive_into_fills_the_buffer_and_returns_size_and_type(sysv_queue, kind):
    buffer = BUFFERS[kind](1024)
    sysv_queue.send(b"payload", type=9)
    assert sysv_queue.receive_into(buffer) == (7, 9)
    assert bytes(memoryview(buffer)[:7]) == b"payload"


def test_posix_buffer_smaller_than_max_message_size_is_refused_and_nothing_is_lost(posix_queue):
    posix_queue.send(b"kept")
    with pytest.raises(ValueError, match="1023 bytes; the queue's max_message_size is 1024"):
        posix_queue.receive_into(bytearray(1023))
    assert posix_queue.current_messages == 1
    assert posix_queue.receive() == (b"kept", 0)


def test_sysv_message_longer_than_the_buffer_stays_queued(sysv_queue):
    sysv_queue.send(b"x" * 100, type=2)
    with pytest.raises(ValueError, match="larger than the buffer .10 bytes.; it stays"):
        sysv_queue.receive_into(bytearray(10))
    assert sysv_queue.current_messages == 1
    buffer = bytearray(100)
    assert sysv_queue.receive_into(buffer, type=2) == (100, 2) and buffer == b"x" * 100


def test_read_only_and_non_contiguous_buffers_are_refused(posix_queue, sysv_queue):
    strided = memoryview(bytearray(4096))[::2]
    for queue in (posix_queue, sysv_queue):
        with pytest.raises(TypeError):
            queue.receive_into(bytes(2048))
        with pytest.raises((TypeError, BufferError)):
            queue.receive_into(strided)


def test_timeouts_and_block_false_raise_busy_like_receive(posix_queue, sysv_queue):
    with pytest.raises(posix_ipc.BusyError, match="The queue is empty"):
        posix_queue.receive_into(bytearray(1024), 0)
    with pytest.raises(posix_ipc.BusyError):
        posix_queue.receive_into(bytearray(1024), timeout=0.01)
    with pytest.raises(sysv_ipc.BusyError, match="No available messages"):
        sysv_queue.receive_into(bytearray(10), block=False)
    with pytest.raises(sysv_ipc.BusyError):
        sysv_queue.receive_into(bytearray(10), False, 3)


def test_receive_into_waits_for_a_message_from_another_process(posix_queue, sysv_queue):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, posix_ipc, sysv_ipc\n"
            "sys.stdin.readline()\n"  # sent only once the parent is about to wait
            "posix_ipc.MessageQueue(sys.argv[1]).send(b'from child', priority=2)\n"
            "sysv_ipc.MessageQueue(int(sys.argv[2])).send(b'sysv child', type=4)\n",
            posix_queue.name,
            str(sysv_queue.key),
        ],
        stdin=subprocess.PIPE,
        text=True,
    )
    child.stdin.write("go\n")
    child.stdin.flush()
    buffer = numpy.zeros(1024, dtype=numpy.uint8)
    assert posix_queue.receive_into(buffer, 30) == (10, 2)
    assert bytes(buffer[:10]) == b"from child"
    assert sysv_queue.receive_into(buffer, type=4) == (10, 4)
    assert bytes(buffer[:10]) == b"sysv child"
    assert child.wait(30) == 0


@pytest.mark.parametrize(
    "message",
    [
        memoryview(b"view"),
        bytearray(b"bytearray"),
        array.array("H", [1, 2, 3]),
        numpy.arange(4, dtype=numpy.uint16),
        memoryview(bytearray(b"..slice..."))[2:7],
    ],
    ids=["memoryview", "bytearray", "array", "numpy", "slice"],
)
def test_send_accepts_any_contiguous_buffer(posix_queue, sysv_queue, message):
    expected = bytes(memoryview(message))
    posix_queue.send(message)
    assert posix_queue.receive() == (expected, 0)
    sysv_queue.send(message)
    assert sysv_queue.receive() == (expected, 1)


def test_send_refuses_a_non_contiguous_buffer(posix_queue, sysv_queue):
    strided = memoryview(bytearray(b"abcdef"))[::2]
    for queue in (posix_queue, sysv_queue):
        with pytest.raises((TypeError, BufferError)):
            queue.send(strided)


# Every buffer too small for the message is the documented ValueError, the message staying
# queued: empty buffers included, on the non-blocking path and after a wait (issue 16, 6).


@pytest.mark.parametrize("size", [0, 1, 99])
@pytest.mark.parametrize("block", [True, False])
def test_sysv_every_too_small_buffer_is_a_value_error_and_the_message_stays(
    sysv_queue, size, block
):
    sysv_queue.send(b"x" * 100, type=3)
    with pytest.raises(ValueError, match=f"larger than the buffer .{size} bytes.; it stays"):
        sysv_queue.receive_into(bytearray(size), block=block)
    with pytest.raises(ValueError, match=f"larger than the buffer .{size} bytes.; it stays"):
        sysv_queue.receive_into(memoryview(bytearray(size + 8))[8:], block, 3)
    assert sysv_queue.current_messages == 1
    assert sysv_queue.receive() == (b"x" * 100, 3)


def test_sysv_a_too_small_buffer_is_a_value_error_after_a_wait_too(sysv_queue):
    main = threading.get_native_id()

    def send_once_waiting() -> None:
        wait_until_blocked(main, "msgrcv")
        sysv_ipc.MessageQueue(sysv_queue.key).send(b"late", type=5)

    sender = threading.Thread(target=send_once_waiting)
    sender.start()
    try:
        with pytest.raises(ValueError, match=r"larger than the buffer \(0 bytes\); it stays"):
            sysv_queue.receive_into(bytearray(0))
    finally:
        sender.join(30)
    assert sysv_queue.receive(type=5) == (b"late", 5)


def test_sysv_an_empty_buffer_takes_an_empty_message(sysv_queue):
    sysv_queue.send(b"", type=4)
    assert sysv_queue.receive_into(bytearray(0)) == (0, 4)
    assert sysv_queue.current_messages == 0


def test_sysv_the_buffer_not_max_message_size_limits_receive_into(sysv_queue):
    big = sysv_ipc.MessageQueue(sysv_queue.key, max_message_size=4096)
    big.send(b"y" * 2000, type=6)  # longer than sysv_queue.max_message_size (1024)
    buffer = bytearray(2000)
    assert sysv_queue.receive_into(buffer) == (2000, 6)
    assert buffer == b"y" * 2000


@pytest.mark.parametrize("timeout", [None, 0, 1])
@pytest.mark.parametrize("size", [0, 1, 1023])
def test_posix_every_too_small_buffer_is_a_value_error_and_the_message_stays(
    posix_queue, size, timeout
):
    posix_queue.send(b"kept", priority=2)
    with pytest.raises(ValueError, match=f"{size} bytes; the queue's max_message_size is 1024"):
        posix_queue.receive_into(bytearray(size), timeout)
    assert posix_queue.current_messages == 1
    assert posix_queue.receive() == (b"kept", 2)

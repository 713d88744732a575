"""sysv_ipc.MessageQueue: typed send/receive, selection by type, blocking, capacity, live
attributes, removal, signals and cross-process traffic."""

import os
import pickle
import signal
import time

import pytest

import sysv_ipc

FULL = "^The queue is full, or a system-wide limit"
EMPTY = "^No available messages of the specified type$"
GONE = "^The queue no longer exists$"


@pytest.fixture
def queue(sysv):
    return sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))


def test_defaults_and_text(queue):
    assert (queue.max_size, queue.current_messages, queue.last_send_pid) == (16384, 0, 0)
    assert queue.last_receive_pid == queue.last_send_time == queue.last_receive_time == 0
    assert queue.uid == queue.cuid == os.geteuid() and queue.mode == 0o600
    assert str(queue) == f"Key={queue.key}, id={queue.id}"
    assert repr(queue) == f"sysv_ipc.MessageQueue({queue.key})"
    with pytest.raises(AttributeError):
        queue.max_message_size


def test_send_and_receive_str_bytes_and_buffers(queue):
    queue.send("héllo")
    assert queue.receive() == (b"h\xc3\xa9llo", 1)
    queue.send(bytearray(b"\x00\x01"), type=7)
    queue.send(memoryview(b""), True, 3)
    assert queue.receive() == (b"\x00\x01", 7)
    assert queue.receive() == (b"", 3)
    assert queue.last_send_pid == queue.last_receive_pid == os.getpid()
    assert abs(queue.last_send_time - time.time()) < 10


def test_selection_by_type(queue):
    for kind in (4, 3, 2, 1, 3):
        queue.send(f"type{kind}", type=kind)
    assert queue.receive(type=3) == (b"type3", 3)
    assert queue.receive(type=-2) == (b"type1", 1)  # Linux: the lowest type <= 2
    assert queue.receive() == (b"type4", 4)  # 0: the oldest
    assert queue.receive(type=3) == (b"type3", 3)
    with pytest.raises(sysv_ipc.BusyError, match=EMPTY):
        queue.receive(block=False, type=9)
    assert queue.receive(False, 2) == (b"type2", 2)


def test_message_types_accept_the_c_long_range(queue):
    """Upstream limits types to C int; the kernel uses long (DC-27, fixed additively)."""
    queue.send(b"big", type=2**40)
    assert queue.receive(type=2**40) == (b"big", 2**40)
    with pytest.raises(OverflowError):
        queue.send(b"x", type=2**64)


def test_non_blocking_calls_raise_busy_error(queue):
    with pytest.raises(sysv_ipc.BusyError, match=EMPTY):
        queue.receive(block=False)
    with pytest.raises(sysv_ipc.BusyError, match=EMPTY):
        queue.receive(None)  # None counts as False
    queue.max_size = 10
    queue.send(b"0123456789", block=False)
    with pytest.raises(sysv_ipc.BusyError, match=FULL):
        queue.send(b"x", block=False)


def test_send_checks(queue):
    with pytest.raises(ValueError, match=r"^The type must be > 0$"):
        queue.send(b"x", type=0)
    with pytest.raises(ValueError, match=r"max_message_size \(2048\)$"):
        queue.send(b"x" * 2049)
    for bad in (None, 5):
        with pytest.raises(TypeError):  # upstream may crash here (DC-10)
            queue.send(bad)
    with pytest.raises(UnicodeEncodeError):
        queue.send("\udc80")


def test_max_message_size_is_per_object(sysv):
    small = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=4))
    large = sysv_ipc.MessageQueue(small.key, max_message_size=100)
    large.send(b"0123456789")
    with pytest.raises(OSError) as caught:
        small.receive()
    assert caught.value.errno == 7  # E2BIG; the message stays queued
    assert large.receive() == (b"0123456789", 1)
    too_long = r"^The message length must be <= 9223372036854775807\n$"
    for bad in (-1, 2**63, 2**64):
        with pytest.raises(ValueError, match=too_long):
            sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=bad)


def test_short_message_comes_back_right_sized(sysv):
    """Upstream mallocs max_message_size per receive (DC-26)."""
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=2**20))
    queue.send(b"tiny")
    message, _ = queue.receive()
    assert message == b"tiny"


def test_writable_attributes(queue):
    queue.max_size = 2048
    assert queue.max_size == 2048
    queue.mode = 0o7640
    assert queue.mode == 0o640
    before = queue.last_change_time
    queue.uid = queue.uid
    assert queue.last_change_time >= before
    for name, value, error in (
        ("max_size", "x", TypeError),
        ("max_size", -1, ValueError),
        ("max_size", 2**64 + 5, ValueError),
        ("mode", 2**63, OverflowError),
        ("uid", -1, OverflowError),
        ("gid", 1.5, TypeError),
    ):
        with pytest.raises(error):
            setattr(queue, name, value)
    with pytest.raises(AttributeError, match="^readonly attribute$"):
        queue.id = 1
    with pytest.raises(AttributeError, match="attribute 'current_messages' of 'sysv_ipc"):
        queue.current_messages = 1
    with pytest.raises(AttributeError):
        del queue.max_size


def test_removed_queue(queue):
    queue.remove()
    with pytest.raises(sysv_ipc.ExistentialError, match=GONE):
        queue.receive()
    with pytest.raises(sysv_ipc.ExistentialError, match=GONE):
        queue.current_messages
    with pytest.raises(sysv_ipc.ExistentialError, match=GONE):
        queue.remove()
    with pytest.raises(OSError) as caught:
        queue.send(b"x")
    assert caught.value.errno == 22  # msgsnd reports EINVAL for a removed id (DC-24, kept)


def test_object_model(queue):
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(queue)
    bare = sysv_ipc.MessageQueue.__new__(sysv_ipc.MessageQueue)
    assert (bare.key, bare.id) == (0, -1)
    with pytest.raises(sysv_ipc.ExistentialError):
        bare.remove()


def test_messages_cross_processes_by_type(queue, spawn):
    child = spawn(
        "import sys, sysv_ipc\n"
        "q = sysv_ipc.MessageQueue(int(sys.argv[1]))\n"
        "for kind in (5, 2, 9):\n"
        "    q.send(f'child {kind}', type=kind)\n"
        "print(*q.receive(type=100), flush=True)\n",
        str(queue.key),
    )
    assert [queue.receive(type=kind) for kind in (9, 2, 5)] == [
        (b"child 9", 9),
        (b"child 2", 2),
        (b"child 5", 5),
    ]
    queue.send(b"answer", type=100)
    assert child.read_line() == "b'answer' 100"
    assert child.finish() == 0


def test_blocked_receiver_is_told_when_the_queue_is_removed(queue, spawn):
    child = spawn(
        "import sys, sysv_ipc\n"
        "q = sysv_ipc.MessageQueue(int(sys.argv[1]))\n"
        "print('receiving', flush=True)\n"
        "try:\n"
        "    q.receive()\n"
        "except sysv_ipc.ExistentialError as error:\n"
        "    print(error, flush=True)\n",
        str(queue.key),
    )
    assert child.read_line() == "receiving"
    # Whether the child is already blocked (EIDRM) or not yet (EINVAL), the answer is the same.
    queue.remove()
    assert child.read_line() == "The queue no longer exists"
    assert child.finish() == 0


def test_receive_interrupted_by_a_signal(queue):
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        with pytest.raises(sysv_ipc.Error, match="^Signaled while waiting$"):
            queue.receive()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)

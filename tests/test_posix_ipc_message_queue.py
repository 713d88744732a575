"""posix_ipc.MessageQueue: constructor, send/receive, ordering, blocking, notifications,
lifetime, and cross-process traffic."""

import array
import os
import pickle
import select
import selectors
import signal
import sys
import threading
import time

import pytest

import posix_ipc

from .kernel_wait import wait_until_blocked

BAD_TIMEOUT = "^The timeout must be None or a non-negative number$"


@pytest.fixture
def queue(make_name):
    mq = posix_ipc.MessageQueue(make_name(), posix_ipc.O_CREX, max_messages=4)
    yield mq
    try:
        mq.close()
    except posix_ipc.ExistentialError:
        pass


# ---- constructor -------------------------------------------------------------------------


def test_defaults_and_repr(track):
    mq = track(posix_ipc.MessageQueue(None, posix_ipc.O_CREX))
    assert mq.max_messages == posix_ipc.QUEUE_MESSAGES_MAX_DEFAULT
    assert mq.max_message_size == posix_ipc.QUEUE_MESSAGE_SIZE_MAX_DEFAULT
    assert (mq.mode, mq.block, mq.current_messages) == (0o600, True, 0)
    assert repr(mq) == (
        f'posix_ipc.MessageQueue("{mq.name}", mode=0600, max_message_size='
        f"{mq.max_message_size}, max_messages={mq.max_messages}, read=True, write=True)"
    )
    assert str(mq) == mq.name and mq.mqd == mq.fileno() >= 0


def test_all_parameters_accept_keywords(make_name):
    mq = posix_ipc.MessageQueue(
        name=make_name(), flags=posix_ipc.O_CREX, mode=0o640, max_messages=3,
        max_message_size=64, read=True, write=True,
    )  # fmt: skip
    assert (mq.max_messages, mq.max_message_size, mq.mode) == (3, 64, 0o640)
    mq.unlink()
    mq.close()


def test_opening_existing_queue_reports_its_real_sizes(queue):
    copy = posix_ipc.MessageQueue(queue.name, posix_ipc.O_CREAT, max_messages=9)
    assert copy.max_messages == 4
    copy.close()


@pytest.mark.parametrize(
    ("arguments", "keywords", "error", "message"),
    [
        ((None,), {}, ValueError, "^Name can only be None if O_EXCL is set$"),
        (("/q", posix_ipc.O_EXCL), {}, ValueError, "^O_EXCL must be combined with O_CREAT$"),
        (("/q",), {"read": False, "write": False}, ValueError, "^At least one of read or write"),
        (("/q",), {"read": None, "write": 0}, ValueError, "^At least one of read or write"),
        ((None, posix_ipc.O_CREX), {"max_messages": 100000}, ValueError, "Invalid parameter"),
        ((None, posix_ipc.O_CREX), {"max_message_size": 0}, ValueError, "Invalid parameter"),
        ((None, posix_ipc.O_CREX), {"max_messages": 1.5}, TypeError, "integer"),
        (("q", posix_ipc.O_CREX), {}, ValueError, r"^Invalid parameter\(s\)$"),
        (("/" + "q" * 300, posix_ipc.O_CREX), {}, ValueError, "^The name is too long$"),
        ((b"/a\0", posix_ipc.O_CREX), {}, ValueError, "^embedded null byte$"),
    ],
)
def test_constructor_errors_match_upstream(arguments, keywords, error, message):
    with pytest.raises(error, match=message):
        posix_ipc.MessageQueue(*arguments, **keywords)


def test_missing_and_existing_queues(queue, make_name):
    with pytest.raises(posix_ipc.ExistentialError, match="^No queue exists"):
        posix_ipc.MessageQueue(make_name())
    with pytest.raises(posix_ipc.ExistentialError, match="^A queue with the specified name"):
        posix_ipc.MessageQueue(queue.name, posix_ipc.O_CREX)


# ---- send / receive ------------------------------------------------------------------------


def test_messages_come_out_by_priority_then_fifo(queue):
    for message, priority in ((b"low-1", 1), (b"high", 7), (b"low-2", 1), (b"zero", 0)):
        queue.send(message, priority=priority)
    assert queue.current_messages == 4
    received = [queue.receive() for _ in range(4)]
    assert received == [(b"high", 7), (b"low-1", 1), (b"low-2", 1), (b"zero", 0)]


def test_send_accepts_str_and_any_buffer(queue):
    queue.send("héllo")
    assert queue.receive() == (b"h\xc3\xa9llo", 0)
    for message in (b"", bytearray(b"ab"), memoryview(b"cd"), array.array("B", [1, 2])):
        queue.send(message)
        assert queue.receive() == (bytes(message), 0)


@pytest.mark.parametrize("message", [None, 5, object()])
def test_send_with_an_unusable_message_raises_type_error(queue, message):
    """Upstream segfaults here (DC-2)."""
    with pytest.raises(TypeError):
        queue.send(message)


def test_send_without_message_raises_type_error(queue):
    with pytest.raises(TypeError):
        queue.send()
    with pytest.raises(UnicodeEncodeError):
        queue.send("\udc80")


def test_too_long_message_and_bad_priorities_are_refused_before_sending(queue):
    with pytest.raises(ValueError, match="^The message is too long$"):
        queue.send(b"x" * (queue.max_message_size + 1))
    limit = posix_ipc.QUEUE_PRIORITY_MAX
    for priority in (-1, limit + 1):
        with pytest.raises(ValueError, match=rf"QUEUE_PRIORITY_MAX \({limit}\)$"):
            queue.send(b"x", priority=priority)
    with pytest.raises(OverflowError):
        queue.send(b"x", priority=2**64)
    queue.send(b"x", priority=limit)
    assert queue.receive() == (b"x", limit)
    assert queue.current_messages == 0


def test_empty_and_full_queues_raise_busy_error_without_waiting(queue):
    with pytest.raises(posix_ipc.BusyError, match="^The queue is empty$"):
        queue.receive(0)
    for _ in range(queue.max_messages):
        queue.send(b"x", 0)
    with pytest.raises(posix_ipc.BusyError, match="^The queue is full$"):
        queue.send(b"x", timeout=0)
    with pytest.raises(posix_ipc.BusyError, match="^The queue is full$"):
        queue.send(b"x", 0.01)


def test_block_false_makes_every_wait_fail_at_once(queue):
    queue.block = False
    assert queue.block is False
    with pytest.raises(posix_ipc.BusyError):
        queue.receive()
    with pytest.raises(posix_ipc.BusyError):
        queue.receive(30)
    queue.block = 1
    assert queue.block is True


def test_o_nonblock_opens_a_non_blocking_handle(queue):
    handle = posix_ipc.MessageQueue(queue.name, posix_ipc.O_NONBLOCK)
    assert handle.block is False and queue.block is True
    with pytest.raises(posix_ipc.BusyError):
        handle.receive()
    handle.close()


def test_deleting_block_raises_instead_of_crashing(queue):
    """Upstream segfaults on `del mq.block` (DC-4)."""
    with pytest.raises(TypeError):
        del queue.block

    class Untruthy:
        def __bool__(self):
            raise RuntimeError("no truth value")

    with pytest.raises(RuntimeError):
        queue.block = Untruthy()
    assert queue.block is True


@pytest.mark.parametrize("timeout", [-1, "1", 2**64, float("nan")])
def test_bad_timeouts_raise_type_error(queue, timeout):
    with pytest.raises(TypeError, match=BAD_TIMEOUT):
        queue.receive(timeout)
    with pytest.raises(TypeError, match=BAD_TIMEOUT):
        queue.send(b"x", timeout)


def test_read_and_write_flags_limit_the_handle(queue):
    writer = posix_ipc.MessageQueue(queue.name, read=False)
    reader = posix_ipc.MessageQueue(queue.name, write=False)
    with pytest.raises(posix_ipc.PermissionsError, match="^The queue is not open for reading$"):
        writer.receive()
    with pytest.raises(posix_ipc.PermissionsError, match="^The queue is not open for writing$"):
        reader.send(b"x")
    writer.send(b"through")
    assert reader.receive() == (b"through", 0)
    assert "read=False, write=True" in repr(writer)
    writer.close()
    reader.close()


def test_received_short_message_does_not_keep_the_whole_buffer(queue):
    """1.3.1+ keeps max_message_size bytes alive per message (DC-20)."""
    queue.send(b"tiny")
    message, _ = queue.receive()
    assert sys.getsizeof(message) < 200


def test_fileno_is_pollable(queue):
    with selectors.DefaultSelector() as selector:
        selector.register(queue.fileno(), selectors.EVENT_READ)
        assert selector.select(0) == []
        queue.send(b"x")
        assert len(selector.select(5)) == 1
    queue.receive()


# ---- close / unlink / object model ---------------------------------------------------------


def test_closed_queue_behaviour(queue):
    queue.close()
    assert queue.mqd == queue.fileno() == -1
    with pytest.raises(posix_ipc.ExistentialError, match="^The queue does not exist$"):
        queue.close()
    with pytest.raises(posix_ipc.ExistentialError, match="^The queue does not exist$"):
        queue.block
    with pytest.raises(posix_ipc.ExistentialError, match="^The queue does not exist$"):
        queue.current_messages
    with pytest.raises(posix_ipc.ExistentialError, match="not open for writing$"):
        queue.send(b"x")
    with pytest.raises(posix_ipc.ExistentialError, match="not open for reading$"):
        queue.receive()
    with pytest.raises(OSError) as caught:
        queue.request_notification(signal.SIGUSR1)
    assert caught.value.errno == 9
    assert queue.request_notification() is None
    queue.unlink()
    with pytest.raises(posix_ipc.ExistentialError, match="^No queue exists"):
        queue.unlink()


def test_attributes_are_read_only(queue):
    for attribute in ("name", "mode", "max_messages", "max_message_size"):
        with pytest.raises(AttributeError, match="^readonly attribute$"):
            setattr(queue, attribute, 1)
    for attribute in ("mqd", "current_messages"):
        with pytest.raises(AttributeError, match=f"attribute '{attribute}' of 'posix_ipc"):
            setattr(queue, attribute, 1)


def test_object_model(queue):
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(queue)
    bare = posix_ipc.MessageQueue.__new__(posix_ipc.MessageQueue)
    assert (str(bare), bare.name, bare.mqd) == ("(no name)", None, -1)
    assert repr(bare).startswith('posix_ipc.MessageQueue("(no name)"')


# ---- notifications -------------------------------------------------------------------------


def test_signal_notification_fires_on_the_first_message(queue):
    # Other threads (NumPy's, for one) may take a process-directed signal, so wait through
    # the wakeup fd, which the C-level handler writes to in whichever thread runs it.
    number = posix_ipc.USER_SIGNAL_MIN
    received = []
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    previous_fd = signal.set_wakeup_fd(writer)
    previous = signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        queue.request_notification(number)
        queue.send(b"wake up")
        readable, _, _ = select.select([reader], [], [], 10)
        assert readable and os.read(reader, 1) == bytes([number])
    finally:
        signal.signal(number, previous)
        signal.set_wakeup_fd(previous_fd)
        os.close(reader)
        os.close(writer)
    assert received == [number]
    queue.receive()


def test_callback_notification_runs_once_on_another_thread(queue):
    fired = threading.Event()
    seen = []

    def callback(parameter):
        seen.append((parameter, threading.get_ident()))
        fired.set()

    queue.request_notification((callback, "param"))
    queue.send(b"x")
    assert fired.wait(10)
    assert seen[0][0] == "param" and seen[0][1] != threading.get_ident()


def test_callback_can_rearm_itself(queue):
    fired = []
    rearmed = threading.Event()
    second = threading.Event()

    def callback(count):
        fired.append(count)
        if count == 1:
            queue.receive()
            queue.request_notification((callback, 2))
            rearmed.set()
        else:
            second.set()

    queue.request_notification((callback, 1))
    queue.send(b"first")
    assert rearmed.wait(10)
    # The re-armed registration fires on the next empty -> non-empty transition.
    queue.send(b"second")
    assert second.wait(10)
    assert fired == [1, 2]


def test_callback_exception_is_reported_not_swallowed(queue, monkeypatch):
    """Upstream discards it silently (DC-8)."""
    reported = threading.Event()
    captured = []

    def hook(unraisable):
        captured.append(unraisable.exc_type)
        reported.set()

    def failing(_):
        raise RuntimeError("callback failed")

    monkeypatch.setattr(sys, "unraisablehook", hook)
    queue.request_notification((failing, None))
    queue.send(b"x")
    assert reported.wait(10)
    assert captured == [RuntimeError]


def test_bad_notification_arguments(queue):
    message = "^The notification must be None, an integer, or a tuple of"
    for bad in ([len, 1], (len,), (len, 1, 2), (1, 2), "x"):
        with pytest.raises(ValueError, match=message):
            queue.request_notification(bad)
    for bad in (0, 2**40, -5):
        with pytest.raises(OSError) as caught:
            queue.request_notification(bad)
        assert caught.value.errno == 22
    queue.request_notification(notification=None)


def test_registration_held_by_another_process_gives_busy_error(queue, spawn):
    child = spawn(
        "import posix_ipc, signal, sys\n"
        "q = posix_ipc.MessageQueue(sys.argv[1])\n"
        "q.request_notification(signal.SIGUSR1)\n"
        "print('registered', flush=True)\n"
        "sys.stdin.readline()\n",
        queue.name,
    )
    assert child.read_line() == "registered"
    with pytest.raises(posix_ipc.BusyError, match="already delivering notifications"):
        queue.request_notification(signal.SIGUSR2)
    assert child.finish() == 0
    queue.request_notification(signal.SIGUSR2)
    queue.request_notification()


# ---- threads and processes ---------------------------------------------------------------


def test_messages_cross_processes_in_priority_order(queue, spawn):
    child = spawn(
        "import posix_ipc, sys\n"
        "q = posix_ipc.MessageQueue(sys.argv[1])\n"
        "for p in (2, 9, 4):\n"
        "    q.send(f'from child {p}', priority=p)\n"
        "print('sent', flush=True)\n"
        "sys.stdin.readline()\n"
        "print(*q.receive(30), flush=True)\n",
        queue.name,
    )
    assert child.read_line() == "sent"
    assert [queue.receive(30) for _ in range(3)] == [
        (b"from child 9", 9),
        (b"from child 4", 4),
        (b"from child 2", 2),
    ]
    queue.send(b"reply", priority=3)
    child.send_line("go")
    assert child.read_line() == "b'reply' 3"
    assert child.finish() == 0


def test_blocked_receiver_in_another_process_gets_the_message(queue, spawn):
    child = spawn(
        "import posix_ipc, sys\n"
        "q = posix_ipc.MessageQueue(sys.argv[1])\n"
        "print('waiting', flush=True)\n"
        "print(q.receive()[0].decode(), flush=True)\n",
        queue.name,
    )
    assert child.read_line() == "waiting"
    queue.send("hello child")
    assert child.read_line() == "hello child"
    assert child.finish() == 0


def test_close_while_another_thread_waits_does_not_crash(queue):
    outcome = []
    tid = []

    def waiter():
        tid.append(threading.get_native_id())
        outcome.append(queue.receive(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    while not tid:
        time.sleep(0)
    wait_until_blocked(tid[0], "mq_timedreceive")
    queue.close()
    sender = posix_ipc.MessageQueue(queue.name)
    sender.send(b"after close")
    thread.join(30)
    assert outcome == [(b"after close", 0)]
    sender.close()


def test_signal_during_receive_raises_signal_error(queue):
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        with pytest.raises(posix_ipc.SignalError, match="interrupted by a signal"):
            queue.receive()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)

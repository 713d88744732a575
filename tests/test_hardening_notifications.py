"""Issue 16, class 7: callback notifications run on one long-lived dispatcher thread with a
permanent thread state, so that fork() during a storm of notifications never hangs the child
(it did: each notification made and deleted a thread state on a fresh thread, and a fork at
that moment left CPython's thread-state lock held in the child). Also what that thread must
keep: exact counts and order, raising callbacks, close and cancel before a callback's turn,
fork children, and interpreter exit with callbacks pending. Scenarios that could hang or crash
run in a child interpreter (tests/child_python.py)."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from .child_python import run_python

# Callbacks re-arm themselves on many queues that a sender process keeps filling; the main
# thread forks, each child leaves at once, and the parent waits for each one through a pidfd
# with a timeout: a child stuck in os.fork() fails the scenario instead of hanging it.
FORK_STORM = """
import os, select, signal, sys, posix_ipc
forks, names = int(sys.argv[1]), sys.argv[2:]
queues = [posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=2, max_message_size=8)
          for name in names]
go_reader, go_writer = os.pipe()
sender = os.fork()
if sender == 0:
    os.read(go_reader, 1)
    writers = [posix_ipc.MessageQueue(name, read=False) for name in names]
    while True:
        for writer in writers:
            try:
                writer.send(b"x", 0)
            except posix_ipc.BusyError:
                pass
fired = [0]
def callback(queue):
    fired[0] += 1
    try:
        queue.request_notification((callback, queue))
        while True:
            queue.receive(0)
    except (posix_ipc.Error, OSError):   # empty; closed at the end
        pass
for queue in queues:
    queue.request_notification((callback, queue))
os.write(go_writer, b"g")
hung = []
try:
    for number in range(forks):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], 30)
        os.close(pidfd)
        if not ready:
            hung.append(number)
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if not ready:
            break
        assert os.waitstatus_to_exitcode(status) == 0, status
finally:
    os.kill(sender, signal.SIGKILL)
    os.waitpid(sender, 0)
    for queue in queues:
        queue.request_notification(None)
        queue.close()
        queue.unlink()
print("forks", number + 1, "callbacks", fired[0], flush=True)
if hung:
    raise SystemExit(f"fork child {hung[0]} hung in os.fork()")
"""

STORM_QUEUES = 128


def test_forks_during_a_storm_of_callbacks_on_many_queues_all_complete(make_name, sizes):
    """1 000 forks (10 000 with --full); how often the old code hung: docs/reliability.md."""
    forks = sizes.notification_forks
    names = [make_name() for _ in range(STORM_QUEUES)]
    done = run_python(FORK_STORM, str(forks), *names, timeout=600)
    counts = done.stdout.split()
    assert counts[:2] == ["forks", str(forks)], done.stdout
    # A storm it was: more callbacks ran during the forks than there were forks.
    assert int(counts[3]) > forks, done.stdout


@pytest.fixture
def queue(make_name):
    import posix_ipc

    made = posix_ipc.MessageQueue(make_name(), posix_ipc.O_CREX, max_messages=4)
    yield made
    if made.mqd != -1:
        made.close()


# 200 callbacks on 8 queues: each records its native thread id and its PyThreadState address,
# and calls PyGILState_Ensure/Release as C extensions do (had the permanent state a count of 0,
# the Release would delete it under the running callback: a crash).
ONE_THREAD = """
import ctypes, sys, threading, posix_ipc
names = sys.argv[1:]
get_state = ctypes.pythonapi.PyThreadState_Get
get_state.restype = ctypes.c_void_p
queues = [posix_ipc.MessageQueue(name, posix_ipc.O_CREX) for name in names]
rounds = 25
seen = []
running = [0, 0]  # now, most at once
lock = threading.Lock()
done = threading.Semaphore(0)
def callback(queue):
    with lock:
        running[0] += 1
        running[1] = max(running)
    ctypes.pythonapi.PyGILState_Release(ctypes.pythonapi.PyGILState_Ensure())
    seen.append((threading.get_native_id(), get_state()))
    if len(seen) < rounds * len(queues):
        queue.request_notification((callback, queue))  # before the queue is empty again
    queue.receive()
    with lock:
        running[0] -= 1
    done.release()
try:
    for queue in queues:
        queue.request_notification((callback, queue))
    for _ in range(rounds):
        for queue in queues:
            queue.send(b"x")
        for _ in queues:  # each queue re-armed and empty again
            assert done.acquire(timeout=30), len(seen)
finally:
    for queue in queues:
        queue.request_notification(None)
        queue.close()
        queue.unlink()
assert len(set(seen)) == 1, set(seen)  # one thread, one thread state
assert seen[0][0] != threading.get_native_id()
assert running[1] == 1, running
"""


def test_callbacks_run_one_at_a_time_on_one_thread_with_one_thread_state(make_name):
    run_python(ONE_THREAD, *(make_name() for _ in range(8)), timeout=60)


def test_n_messages_sent_after_n_rearms_give_exactly_n_callbacks_in_order(queue):
    """The callback re-requests (upstream's pattern) and then tells the sender; the sender
    sends the next message only then: N callbacks, in order, each seeing its own message."""
    import posix_ipc

    n = 300
    calls: list[tuple[int, bytes]] = []
    rearmed = threading.Semaphore(0)

    def callback(number):
        message, _ = queue.receive(0)
        calls.append((number, message))
        queue.request_notification((callback, number + 1))
        rearmed.release()

    queue.request_notification((callback, 0))
    for number in range(n):
        queue.send(b"%d" % number)
        assert rearmed.acquire(timeout=10), number
    queue.request_notification(None)
    assert calls == [(number, b"%d" % number) for number in range(n)]
    with pytest.raises(posix_ipc.BusyError):
        queue.receive(0)


def test_a_raising_callback_does_not_stop_the_later_ones(queue, monkeypatch):
    reported: list[type] = []
    ran: list[int] = []
    rearmed = threading.Semaphore(0)
    monkeypatch.setattr(
        sys, "unraisablehook", lambda unraisable: reported.append(unraisable.exc_type)
    )

    def callback(number):
        queue.receive(0)
        ran.append(number)
        queue.request_notification((callback, number + 1))
        rearmed.release()
        if number % 2 == 0:
            raise ValueError(number)

    queue.request_notification((callback, 0))
    for number in range(20):
        queue.send(b"x")
        assert rearmed.acquire(timeout=10), number
    queue.request_notification(None)
    # The last callback's report may still be on its way: wait for the dispatcher to be idle.
    idle = threading.Event()
    queue.request_notification((lambda _: idle.set(), None))
    queue.send(b"x")
    assert idle.wait(10)
    queue.receive(0)
    assert ran == list(range(20))
    assert reported == [ValueError] * 10


def test_a_callback_closed_or_cancelled_before_its_turn_never_runs(make_name):
    """While one callback holds the dispatcher, the notifications of two other queues fire;
    one queue is closed and one cancelled before their turn: neither callback runs, and a
    callback that closes its own queue is fine. A later callback proves the turn passed."""
    import posix_ipc

    holder, closed, cancelled, closes_itself, later = (
        posix_ipc.MessageQueue(make_name(), posix_ipc.O_CREX) for _ in range(5)
    )
    ran: list[str] = []
    holding = threading.Event()
    release = threading.Event()
    done = threading.Event()

    def hold(_):
        holding.set()
        assert release.wait(10)
        ran.append("holder")

    def close_myself(queue):
        ran.append("closes itself")
        queue.close()

    holder.request_notification((hold, None))
    closed.request_notification((ran.append, "closed"))
    cancelled.request_notification((ran.append, "cancelled"))
    closes_itself.request_notification((close_myself, closes_itself))
    try:
        holder.send(b"x")
        assert holding.wait(10)
        for queue in (closed, cancelled, closes_itself):
            queue.send(b"x")  # fires: the kernel's registration is used up now
        closed.close()
        cancelled.request_notification(None)
        release.set()
        later.request_notification((lambda _: done.set(), None))
        later.send(b"x")
        assert done.wait(10)
    finally:
        for queue in (holder, cancelled, later):
            queue.close()
        if closes_itself.mqd != -1:
            closes_itself.close()
    assert "closed" not in ran and "cancelled" not in ran
    assert ran[0] == "holder" and "closes itself" in ran


# The parent's dispatcher is busy with one callback while another queue's notification fired;
# the main thread forks. The child must never run the parent's pending callback, and its own
# callbacks must work (a new dispatcher thread); the parent's pending one still runs.
FORK_WITH_PENDING = """
import os, select, sys, threading, posix_ipc
busy_name, pending_name, own_name = sys.argv[1:4]
busy = posix_ipc.MessageQueue(busy_name, posix_ipc.O_CREX)
pending = posix_ipc.MessageQueue(pending_name, posix_ipc.O_CREX)
holding, release, pending_ran = threading.Event(), threading.Event(), threading.Event()
def hold(_):
    holding.set()
    release.wait(30)
busy.request_notification((hold, None))
pending.request_notification((lambda _: pending_ran.set(), None))
busy.send(b"x")
assert holding.wait(10)
pending.send(b"x")
pid = os.fork()
if pid == 0:
    own = posix_ipc.MessageQueue(own_name, posix_ipc.O_CREX)
    own_ran = threading.Event()
    own.request_notification((lambda _: own_ran.set(), None))
    own.send(b"x")
    ok = own_ran.wait(10)
    own.close()
    own.unlink()
    # FIFO per process: the parent's pending callback, had it been carried over, ran first.
    os._exit(0 if ok and not pending_ran.is_set() else 1 if not ok else 2)
pidfd = os.pidfd_open(pid)
ready, _, _ = select.select([pidfd], [], [], 30)
if not ready:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
release.set()
assert pending_ran.wait(10)
for queue in (busy, pending):
    queue.close()
    queue.unlink()
raise SystemExit(f"child: {os.waitstatus_to_exitcode(status)}" if status else 0)
"""


def test_a_fork_child_never_runs_the_parents_pending_callbacks_and_has_its_own(make_name):
    run_python(FORK_WITH_PENDING, make_name(), make_name(), make_name(), timeout=60)


# A callback forks. The child's only thread is the parent's dispatcher thread, inside a
# callback: its own notifications must still be delivered (a new dispatcher thread); the
# parent's dispatcher goes on.
FORK_IN_CALLBACK = """
import os, select, sys, threading, posix_ipc
name, own_name = sys.argv[1:3]
queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
children, rounds = [], 20
rearmed = threading.Semaphore(0)
def callback(number):
    queue.receive(0)
    pid = os.fork()
    if pid == 0:
        own = posix_ipc.MessageQueue(own_name + str(number), posix_ipc.O_CREX)
        own_ran = threading.Event()
        own.request_notification((lambda _: own_ran.set(), None))
        own.send(b"x")
        ok = own_ran.wait(10)
        own.close()
        own.unlink()
        os._exit(0 if ok else 1)
    children.append(pid)
    queue.request_notification((callback, number + 1))
    rearmed.release()
queue.request_notification((callback, 0))
for number in range(rounds):
    queue.send(b"x")
    assert rearmed.acquire(timeout=30), number
queue.request_notification(None)
failures = []
for pid in children:
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], 30)
    if not ready:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    if status:
        failures.append(status)
queue.close()
queue.unlink()
raise SystemExit(f"children failed: {failures}" if failures else 0)
"""


def test_a_callback_that_forks_leaves_a_child_whose_callbacks_still_run(make_name):
    own = make_name()
    try:
        run_python(FORK_IN_CALLBACK, make_name(), own, timeout=120)
    finally:
        import posix_ipc

        for number in range(20):
            try:
                posix_ipc.unlink_message_queue(own + str(number))
            except posix_ipc.ExistentialError:
                pass


# Exit with callbacks in the dispatcher: "pending": one callback sleeps there (GIL released)
# and the callbacks of 31 queues wait behind it; "storm": callbacks of 32 queues re-arm
# themselves while a sender process floods them, so notifications keep arriving during
# finalization. The process must exit 0, promptly, and run no Python after finalization
# started (the parameters' __del__ would print).
EXIT_WITH_CALLBACKS = """
import os, signal, sys, time, posix_ipc
kind, names = sys.argv[1], sys.argv[2:]
queues = [posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=2, max_message_size=8)
          for name in names]
reader, writer = os.pipe()
class Loud:
    def __del__(self):
        print("parameter released", flush=True)
def sleeper(_):
    os.write(writer, b"s")
    time.sleep(3600)
def rearm(queue):
    try:
        queue.request_notification((rearm, queue))
        while True:
            queue.receive(0)
    except (posix_ipc.Error, OSError):
        pass
def flood():
    # The sender lives until the test kills it: it must not hold the test's pipes (the
    # test reads them to their end) nor open a descriptor per send (it would die of EMFILE).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    writers = [posix_ipc.MessageQueue(name, read=False) for name in names]
    while True:
        for writer in writers:
            try:
                writer.send(b"y", 0)
            except posix_ipc.BusyError:
                pass
if kind == "pending":
    queues[0].request_notification((sleeper, Loud()))
    for queue in queues[1:]:
        queue.request_notification((rearm, queue))
    queues[0].send(b"x")
    assert os.read(reader, 1) == b"s"
    for queue in queues[1:]:
        queue.send(b"x")      # fired: pending behind the sleeper
else:
    for queue in queues:
        queue.request_notification((rearm, queue))
    sender = os.fork()
    if sender == 0:
        flood()
    print(sender, flush=True)
    seen = 0
    while seen < 1000:        # the storm is on: callbacks keep running
        seen += sum(queue.current_messages == 0 for queue in queues)
print("exiting", flush=True)
"""


@pytest.mark.parametrize("kind", ["pending", "storm"])
def test_exit_with_callbacks_in_the_dispatcher_neither_hangs_nor_crashes(kind, make_name):
    import subprocess
    import time

    for _ in range(5):
        names = [make_name() for _ in range(32)]
        process = subprocess.Popen(
            [sys.executable, "-c", EXIT_WITH_CALLBACKS, kind, *names],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sender = 0
        try:
            if kind == "storm":
                sender = int(process.stdout.readline())
            assert process.stdout.readline().strip() == "exiting"
            started = time.monotonic()
            rest, errors = process.communicate(timeout=60)
            assert time.monotonic() - started < 30
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if sender:
                os.kill(sender, signal.SIGKILL)
        assert process.returncode == 0, errors
        assert "Fatal Python error" not in errors, errors
        assert "terminate called" not in errors, errors
        assert "parameter released" not in rest

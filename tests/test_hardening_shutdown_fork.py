"""Issue 9, classes 3 and 4: waiters woken while the interpreter shuts down, notification
callbacks alive at exit, and close() in a fork child whose parent had a thread waiting (fork()
while notifications fire: tests/test_hardening_notifications.py). Each scenario runs in its
own interpreter: an abort ("GIL is released", "exception not rethrown") or a deadlock shows in
its exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .child_python import run_python

# Daemon threads block in calls that have arguments (the case that aborted: their argument
# tuples were released without the GIL while CPython ended the thread), a releaser process
# keeps waking them, and the main thread exits while they wake.
WAITERS_AT_EXIT = """
import os, sys, threading
import posix_ipc, sysv_ipc
name = sys.argv[1]
semaphore = posix_ipc.Semaphore(name, posix_ipc.O_CREAT)
queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREAT, max_messages=1)
sysv_semaphore = sysv_ipc.Semaphore(int(sys.argv[2]), sysv_ipc.IPC_CREAT)
sysv_queue = sysv_ipc.MessageQueue(int(sys.argv[2]), sysv_ipc.IPC_CREAT)
def forever(call):
    def loop():
        while True:
            try:
                call()
            except Exception:
                pass
    threading.Thread(target=loop, daemon=True).start()
forever(lambda: semaphore.acquire(timeout=30))
forever(lambda: queue.receive(timeout=30))
forever(lambda: queue.send(b"x", 30, 1))
forever(lambda: sysv_semaphore.acquire(timeout=30))
forever(lambda: sysv_queue.receive(type=4))
forever(lambda: sysv_queue.send(b"y", type=4))
print("waiting", flush=True)
sys.stdin.readline()
"""

RELEASER = """
import sys, posix_ipc, sysv_ipc
semaphore = posix_ipc.Semaphore(sys.argv[1])
queue = posix_ipc.MessageQueue(sys.argv[1])
sysv_semaphore = sysv_ipc.Semaphore(int(sys.argv[2]))
sysv_queue = sysv_ipc.MessageQueue(int(sys.argv[2]))
print("ready", flush=True)
while not sys.stdin.readline().startswith("stop"):
    for _ in range(200):
        semaphore.release()
        sysv_semaphore.release()
        try:
            queue.receive(0)
        except posix_ipc.BusyError:
            pass
        try:
            sysv_queue.receive(block=False, type=4)
        except sysv_ipc.BusyError:
            pass
    print("round", flush=True)
"""


def test_waiters_woken_during_interpreter_shutdown_never_abort(make_name, sysv):
    import random

    import posix_ipc
    import sysv_ipc

    name = make_name()
    key = random.randint(0x1000_0000, 0x6FFF_FFFF)
    semaphore = sysv(sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX))
    sysv(sysv_ipc.MessageQueue(key, sysv_ipc.IPC_CREX))
    made = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=1)
    posix_semaphore = posix_ipc.Semaphore(name, posix_ipc.O_CREX)
    releaser = subprocess.Popen(
        [sys.executable, "-c", RELEASER, name, str(key)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert releaser.stdout.readline().strip() == "ready"
        for _ in range(8):
            waiters = subprocess.Popen(
                [sys.executable, "-c", WAITERS_AT_EXIT, name, str(key)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert waiters.stdout.readline().strip() == "waiting"
            releaser.stdin.write("go\n")
            releaser.stdin.flush()
            waiters.stdin.write("exit\n")  # exits while the releaser wakes its threads
            waiters.stdin.flush()
            _, errors = waiters.communicate(timeout=60)
            assert releaser.stdout.readline().strip() == "round"
            assert "Fatal Python error" not in errors, errors
            assert "terminate called" not in errors, errors
            assert waiters.returncode == 0, errors
    finally:
        releaser.stdin.write("stop\n")
        releaser.stdin.close()
        releaser.wait(60)
        made.close()
        made.unlink()
        posix_semaphore.unlink()
        posix_semaphore.close()
    assert semaphore.waiting_for_nonzero == 0


def test_a_notification_callback_running_at_exit_does_not_abort(make_name):
    run_python(
        """
import os, sys, posix_ipc
name = sys.argv[1]
queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
reader, writer = os.pipe()
def busy(_):
    os.write(writer, b"r")
    total = 0
    while True:           # still running Python code when the interpreter exits
        total += 1
queue.request_notification((busy, None))
queue.send(b"wake")
assert os.read(reader, 1) == b"r"
queue.close()
posix_ipc.unlink_message_queue(name)
""",
        make_name(),
    )


@pytest.mark.parametrize("kind", ["semaphore", "queue"])
def test_close_in_a_fork_child_closes_what_a_parent_thread_was_waiting_on(kind, make_name):
    """At fork, a parent thread waits on the object (proven from /proc). In the child that
    thread does not exist: close() must close the descriptor / semaphore at once."""
    here = os.path.dirname(os.path.abspath(__file__))
    run_python(
        """
import os, sys, threading
sys.path.insert(0, sys.argv[3])
import posix_ipc
from kernel_wait import wait_until_blocked
name, kind = sys.argv[1], sys.argv[2]
if kind == "semaphore":
    made = posix_ipc.Semaphore(name, posix_ipc.O_CREX)
    wait = lambda: made.acquire(30)
    blocked = dict(syscall="futex", futex_in="/dev/shm/sem." + name.lstrip("/"))
else:
    made = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
    wait = lambda: made.receive(30)
    blocked = dict(syscall="mq_timedreceive")
tid = []
def waiter():
    tid.append(threading.get_native_id())
    wait()
thread = threading.Thread(target=waiter)
thread.start()
while not tid:
    os.sched_yield()
wait_until_blocked(tid[0], **blocked)
inode = os.stat("/dev/shm/sem." + name.lstrip("/") if kind == "semaphore"
                else "/dev/mqueue/" + name.lstrip("/")).st_ino
pid = os.fork()
if pid == 0:
    made.close()
    if kind == "semaphore":
        with open("/proc/self/maps") as maps:
            still = any(line.split()[4] == str(inode) for line in maps if len(line.split()) > 4)
    else:
        still = any(os.stat(f"/proc/self/fd/{fd}").st_ino == inode
                    for fd in map(int, os.listdir("/proc/self/fd"))
                    if os.path.exists(f"/proc/self/fd/{fd}"))
    os._exit(1 if still else 0)
_, status = os.waitpid(pid, 0)
if kind == "semaphore":
    made.release()
else:
    made.send(b"done")
thread.join()
made.unlink()
made.close()
raise SystemExit(os.waitstatus_to_exitcode(status))
""",
        make_name(),
        kind,
        here,
    )


def test_a_wait_in_a_finalizer_during_shutdown_returns(make_name):
    """__del__ of a module global runs while the interpreter finalizes, on the main thread:
    its bounded waits must time out normally (a thread parked at shutdown would hang here)."""
    done = run_python(
        """
import sys, posix_ipc, sysv_ipc
name = sys.argv[1]
class WaitsWhenCollected:
    def __init__(self):
        self.semaphore = posix_ipc.Semaphore(name, posix_ipc.O_CREX)
        self.sysv = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX)
    def __del__(self):
        for semaphore, busy in ((self.semaphore, posix_ipc.BusyError),
                                (self.sysv, sysv_ipc.BusyError)):
            try:
                semaphore.acquire(timeout=0.05)
            except busy:
                print("timed out", flush=True)
        self.semaphore.unlink()
        self.semaphore.close()
        self.sysv.remove()
keeper = WaitsWhenCollected()
""",
        make_name(),
        timeout=60,
    )
    assert done.stdout.split("\n")[:2] == ["timed out", "timed out"]


def test_many_short_waits_ending_during_shutdown_never_crash(sysv):
    """24 threads loop on acquire(0.001) while another process keeps releasing, and the main
    thread exits: threads queued for the GIL when finalization starts are ended by CPython;
    none may unwind through frames that release Python objects (they did: SIGSEGV)."""
    import sysv_ipc

    semaphore = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX))
    code = """
import os, sys, threading
import sysv_ipc
semaphore = sysv_ipc.Semaphore(int(sys.argv[1]))
def waiter():
    while True:
        try:
            semaphore.acquire(0.001)
        except sysv_ipc.BusyError:
            pass
for _ in range(24):
    threading.Thread(target=waiter, daemon=True).start()
junk = [[i] for i in range(100000)]  # work for the collector during finalization
print("started", flush=True)
sys.stdin.readline()
"""
    releaser = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, sysv_ipc\n"
            "s = sysv_ipc.Semaphore(int(sys.argv[1]))\n"
            "while not sys.stdin.closed and sys.stdin.readline() == 'go\\n':\n"
            "    for _ in range(2000):\n"
            "        s.release()\n"
            "    print('done', flush=True)\n",
            str(semaphore.key),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(12):
            waiters = subprocess.Popen(
                [sys.executable, "-c", code, str(semaphore.key)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert waiters.stdout.readline().strip() == "started"
            releaser.stdin.write("go\n")
            releaser.stdin.flush()
            _, errors = waiters.communicate("exit\n", timeout=60)
            assert releaser.stdout.readline().strip() == "done"
            assert waiters.returncode == 0, (waiters.returncode, errors)
            assert "Fatal Python error" not in errors, errors
    finally:
        releaser.stdin.close()
        releaser.wait(60)

"""A Channel or RobustLock segment truncated by a peer after open: a documented known limit
(docs/reliability.md, "Known limit: a Channel or RobustLock segment truncated after open").
The tests pin exactly which calls die with SIGBUS (those that touch the shared memory) and show
that everything else stays safe: opening the name again is refused with the class's error,
unlinking works, and the attributes kept in the process answer. Each call runs in a child that
opened and used the object before the test process truncated its file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

# argv: kind, name, call. Creates and uses the object, says "ready", waits for the parent to
# have the file truncated, makes the call and prints its outcome.
WORKER = """
import signal
import sys
import ipcxx

signal.signal(signal.SIGBUS, signal.SIG_DFL)  # the plain signal, not a sanitizer's report

kind, name, call = sys.argv[1:]
if kind == "channel":
    obj = ipcxx.Channel(name, create=True, capacity=4096)
    obj.send(b"first")  # takes a participant slot, writes the ring
    obj.receive()
else:
    obj = ipcxx.RobustLock(name, create=True)
    obj.acquire()
    if call != "release":
        obj.release()
print("ready", flush=True)
sys.stdin.readline()
calls = {
    "send": lambda: obj.send(b"second", timeout=0),
    "receive": lambda: obj.receive(timeout=0),
    "lost": lambda: obj.lost,
    "acquire": lambda: obj.acquire(timeout=0),
    "release": lambda: obj.release(),
    "locked": lambda: obj.locked(),
    "close": lambda: obj.close(),
    "attributes": lambda: (obj.name == name, obj.closed) + (
        (obj.capacity, obj.max_message_size) if kind == "channel" else ()),
    "reopen": lambda: (ipcxx.Channel if kind == "channel" else ipcxx.RobustLock)(name),
    "unlink": lambda: obj.unlink(),
}
try:
    outcome = repr(calls[call]())
except Exception as error:
    outcome = type(error).__name__
print(outcome, flush=True)
if call not in ("close", "release"):
    # Leave without touching the segment again (the exit would close the object).
    import os
    os._exit(0)
"""

SIGBUS = "SIGBUS"

CASES = [
    ("channel", "send", SIGBUS),
    ("channel", "receive", SIGBUS),
    ("channel", "lost", SIGBUS),
    ("channel", "close", SIGBUS),  # gives its participant slot back in the segment
    ("channel", "attributes", "(True, False, 4096, 2032)"),
    ("channel", "reopen", "ChannelError"),
    ("channel", "unlink", "None"),
    ("lock", "acquire", SIGBUS),
    ("lock", "release", SIGBUS),
    ("lock", "locked", SIGBUS),
    ("lock", "close", "None"),  # unmaps only
    ("lock", "attributes", "(True, False)"),
    ("lock", "reopen", "ValueError"),  # NotALockError in C++
    ("lock", "unlink", "None"),
]


@pytest.mark.parametrize(("kind", "call", "expected"), CASES, ids=[f"{k}-{c}" for k, c, _ in CASES])
def test_a_truncated_segment_kills_only_the_calls_that_touch_it(make_name, kind, call, expected):
    name = make_name()
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, kind, name, call],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().strip() == "ready"
        # This process, a peer with write permission, shrinks the file to nothing.
        os.truncate(f"/dev/shm{name}", 0)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    if expected == SIGBUS:
        assert worker.returncode == -signal.SIGBUS, (worker.returncode, out, err)
    else:
        assert worker.returncode == 0, (worker.returncode, out, err)
        assert out.strip() == expected
    if call != "unlink":
        assert os.path.exists(f"/dev/shm{name}")  # make_name unlinks it at teardown

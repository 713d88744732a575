"""sysv_ipc.MessageQueue.receive() memory follows the message, not max_message_size (issue 9
class 5; DC-26): a 5-byte message with a 1 GiB maximum no longer zero-fills 1 GiB."""

import os
import shutil
import subprocess
import sys

import pytest

import sysv_ipc

GIB = 1 << 30
MIB = 1 << 20


def kernel_limit(name: str) -> int:
    with open(f"/proc/sys/kernel/{name}") as value:
        return int(value.read())


def run_python(code: str, *args: str, prefix: tuple[str, ...] = ()) -> str:
    result = subprocess.run(
        [*prefix, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# Prints the growth of the child's peak RSS (VmHWM) over `count` receives with a 1 GiB maximum.
PEAK_RSS_CHILD = """
import sys, sysv_ipc
def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
queue = sysv_ipc.MessageQueue(int(sys.argv[1]), max_message_size=1 << 30)
queue.send(b"warm")
assert queue.receive() == (b"warm", 1)
before = peak()
for i in range(int(sys.argv[2])):
    queue.send(b"hello", type=i + 1)
    assert queue.receive() == (b"hello", i + 1)
print(peak() - before)
"""


def test_small_message_with_a_1_gib_maximum_keeps_peak_rss_small(sysv):
    """Upstream mallocs (and ipcxx before this change zero-filled) 1 GiB per receive: peak RSS
    +1 GiB and ~0.7 s per call. Now the first attempt is 64 KiB, never zero-filled."""
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    growth = int(run_python(PEAK_RSS_CHILD, str(queue.key), "200"))
    assert growth < 64 * MIB, f"peak RSS grew by {growth / MIB:.1f} MiB"
    assert queue.current_messages == 0


def test_largest_message_the_kernel_allows_round_trips_with_a_1_gib_maximum(sysv):
    size = min(kernel_limit("msgmax"), kernel_limit("msgmnb"), 3 * MIB)
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=GIB))
    message = os.urandom(size)
    queue.send(message, type=9)
    assert queue.receive() == (message, 9)


# In its own IPC namespace, where msgmax/msgmnb are the namespace's own settings (nothing
# system-wide changes and every object dies with the namespace): a 3 MiB message needs the
# buffer to grow 64 KiB -> 256 KiB -> 1 MiB -> 4 MiB, each E2BIG retry immediate.
BIG_MESSAGE_CHILD = """
import os, sysv_ipc
for name, value in (("msgmax", 4 << 20), ("msgmnb", 8 << 20)):
    with open(f"/proc/sys/kernel/{name}", "w") as setting:
        setting.write(str(value))
queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=1 << 30)
message = os.urandom(3 << 20)
queue.send(message, type=5)
assert queue.receive() == (message, 5)
queue.send(message, type=6)
assert queue.receive(block=False) == (message, 6)
small = sysv_ipc.MessageQueue(queue.key, max_message_size=(3 << 20) - 1)
queue.send(message)
try:
    small.receive()
except OSError as error:
    assert error.errno == 7, error  # E2BIG at once, also when blocking; the message stays
else:
    raise AssertionError("no E2BIG")
assert queue.current_messages == 1 and queue.receive() == (message, 1)
queue.remove()
print("ok")
"""


def namespace_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if not unshare:
        pytest.skip("needs unshare(1) for a private IPC namespace with a msgmax above 3 MiB")
    prefix = (unshare, "--user", "--map-root-user", "--ipc")
    probe = subprocess.run(
        [*prefix, "sh", "-c", "echo 4194304 > /proc/sys/kernel/msgmax"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(
            "a 3 MiB message needs msgmax >= 3 MiB; the system's is "
            f"{kernel_limit('msgmax')} and no private user+IPC namespace is allowed here "
            f"({probe.stderr.decode().strip()})"
        )
    return prefix


def test_3_mib_message_with_a_1_gib_maximum_round_trips_intact():
    assert run_python(BIG_MESSAGE_CHILD, prefix=namespace_prefix()).strip() == "ok"


def test_message_over_max_message_size_fails_as_before_and_stays_queued(sysv):
    small = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=100))
    large = sysv_ipc.MessageQueue(small.key, max_message_size=GIB)
    large.send(b"x" * 5000)
    for block in (False, True):  # E2BIG is immediate: the blocking call does not wait
        with pytest.raises(OSError) as caught:
            small.receive(block)
        assert caught.value.errno == 7 and caught.value.args == (7, "Argument list too long")
    assert small.current_messages == 1
    assert large.receive() == (b"x" * 5000, 1)
    large.send(b"y" * 100)
    assert small.receive() == (b"y" * 100, 1)  # exactly the maximum still fits

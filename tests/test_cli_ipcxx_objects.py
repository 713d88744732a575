"""`python -m ipcxx ls | stat | rm` on ipcxx's own segments: channels and robust locks made by
child processes, shown as kinds `channel` and `lock` with their state (queued messages,
participants alive or dead, the stream, a lock's holder and whether it lives). Children are
synchronised by lines on pipes; every object is unlinked at teardown."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

import ipcxx
import posix_ipc
from ipcxx.cli.model import JSON_KEYS


def cli(*args: str) -> subprocess.CompletedProcess:
    """Runs `python -m ipcxx ARGS` with this interpreter and PYTHONPATH."""
    return subprocess.run(
        [sys.executable, "-m", "ipcxx", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        timeout=60,
    )


def listed(*args: str) -> list[dict]:
    result = cli("ls", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def record(name: str, *args: str) -> dict:
    """`stat --json NAME`, parsed."""
    result = cli("stat", "--json", *args, name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def row(name: str, *args: str) -> str:
    """The `ls` table row of the object called `name`."""
    result = cli("ls", *args)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if f" {name} " in line]
    assert len(rows) == 1, result.stdout
    return rows[0]


@pytest.fixture
def names() -> Iterator[Callable[[], str]]:
    """A factory of unique names; each one is unlinked at teardown, whatever holds it."""
    made: list[str] = []

    def make() -> str:
        made.append(f"/ipcxx_cli_obj_{os.getpid()}_{secrets.token_hex(4)}")
        return made[-1]

    yield make
    for name in made:
        try:
            os.unlink("/dev/shm/" + name[1:])
        except FileNotFoundError:
            pass


# Children: each prints "ready" once its object is in the wanted state, then waits for a line
# (or end of input) before it closes cleanly.
PRODUCER = """
import sys, ipcxx
name, count, finish = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "finish"
channel = ipcxx.Channel(name)
for index in range(count):
    channel.send(bytes(10 * (index + 1)))
if finish:
    channel.finish()
print("ready", flush=True)
sys.stdin.readline()
"""

LOCK_HOLDER = """
import sys, ipcxx
lock = ipcxx.RobustLock(sys.argv[1])
lock.acquire()
print("ready", flush=True)
sys.stdin.readline()
lock.release()
"""


def start(spawn, code: str, *args: str):
    child = spawn(code, *args)
    assert child.read_line() == "ready"
    return child


def test_ls_shows_a_channel_with_its_queued_messages_and_live_producer(names, spawn):
    name = names()
    ipcxx.Channel(name, create=True, exclusive=True, capacity=65536).close()
    producer = start(spawn, PRODUCER, name, "3", "keep")

    (found,) = [r for r in listed("--kind", "channel") if r["name"] == name]
    assert found["kind"] == "channel" and found["problem"] is None
    assert found["messages"] == 3 and found["queued_bytes"] == 60 and found["attached"] == 1
    assert found["size"] == 65536 + 12288
    channel = found["channel"]
    assert channel["capacity"] == 65536 and channel["stream"] == "open"
    assert channel["counts_complete"] and channel["lost"] == 0 and channel["abandoned"] == 0
    assert channel["participants"] == [
        {"slot": 0, "pid": producer.process.pid, "alive": True, "producer": True}
    ]
    assert found["lock"] is None

    line = row(name, "--kind", "channel")
    assert line.split()[0] == "channel"
    assert line.endswith("open, 0% full")
    assert producer.finish() == 0


def test_a_killed_producer_is_shown_dead_and_its_stream_drains_then_ends(names, spawn):
    name = names()
    mine = ipcxx.Channel(name, create=True, exclusive=True, capacity=4096)
    try:
        producer = start(spawn, PRODUCER, name, "1", "keep")
        producer.process.send_signal(signal.SIGKILL)
        producer.process.wait()

        found = record(name)
        assert found["kind"] == "channel" and found["messages"] == 1 and found["attached"] == 0
        assert found["channel"]["stream"] == "draining"
        (participant,) = found["channel"]["participants"]
        assert participant["pid"] == producer.process.pid
        assert participant["alive"] is False and participant["producer"] is True
        assert row(name).endswith("draining, 0% full, 1 dead")

        assert mine.receive(timeout=0) == bytes(10)
        found = record(name)
        assert found["channel"]["stream"] == "ended" and found["messages"] == 0
        assert found["attached"] == 1  # the receiver registered itself; the dead one stays
    finally:
        mine.close()


def test_a_cleanly_finished_stream_is_shown_ended_once_drained(names, spawn):
    name = names()
    mine = ipcxx.Channel(name, create=True, exclusive=True, capacity=4096)
    try:
        producer = start(spawn, PRODUCER, name, "2", "finish")
        assert record(name)["channel"]["stream"] == "draining"
        assert producer.finish() == 0
        assert [mine.receive(timeout=0), mine.receive(timeout=0)] == [bytes(10), bytes(20)]
        found = record(name)
        assert found["channel"]["stream"] == "ended"
        assert found["channel"]["declarations"] == 1
        assert row(name).endswith("ended, 0% full")
    finally:
        mine.close()


def test_stat_shows_a_lock_held_by_a_live_child_then_its_death(names, spawn):
    name = names()
    ipcxx.RobustLock(name, create=True, exclusive=True).close()
    holder = start(spawn, LOCK_HOLDER, name)
    pid = holder.process.pid

    found = record(name, "--kind", "lock")
    lock = found["lock"]
    assert found["kind"] == "lock" and found["channel"] is None
    assert lock["locked"] and lock["holder_alive"] is True and lock["holder_visible"]
    assert lock["holder_pid"] == pid and lock["holder_tid"] == pid
    assert lock["consistency"] == "consistent" and lock["acquisitions"] == 1
    assert row(name).endswith(f"held by {pid}")
    text = cli("stat", name).stdout
    assert "status" in text and f"held by {pid}" in text
    assert any(line.split() == ["lock.holder_alive", "yes"] for line in text.splitlines())

    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait()
    lock = record(name)["lock"]
    assert lock["locked"] and lock["holder_alive"] is False
    assert lock["holder_tid"] == pid and lock["holder_pid"] is None
    assert lock["consistency"] == "owner_died"
    assert row(name, "--kind", "lock").endswith(f"owner {pid} died")

    # Inspecting took nothing: the next holder is the one told about the death.
    mine = ipcxx.RobustLock(name)
    try:
        with pytest.raises(ipcxx.OwnerDiedError):
            mine.acquire(timeout=5)
        mine.make_consistent()
        assert record(name)["lock"]["holder_pid"] == os.getpid()
        mine.release()
    finally:
        mine.close()
    assert row(name).endswith("free")


def test_kind_filters_separate_channels_locks_and_plain_segments(names):
    channel_name, lock_name, plain_name = names(), names(), names()
    ipcxx.Channel(channel_name, create=True, exclusive=True, capacity=4096).close()
    ipcxx.RobustLock(lock_name, create=True, exclusive=True).close()
    posix_ipc.SharedMemory(plain_name, posix_ipc.O_CREX, size=4096).close_fd()
    ours = {channel_name, lock_name, plain_name}

    def kinds(*args: str) -> dict[str, str]:
        return {r["name"]: r["kind"] for r in listed(*args) if r["name"] in ours}

    assert kinds() == {channel_name: "channel", lock_name: "lock", plain_name: "shm"}
    assert kinds("--kind", "channel") == {channel_name: "channel"}
    assert kinds("--kind", "lock") == {lock_name: "lock"}
    assert kinds("--kind", "shm") == {plain_name: "shm"}
    assert kinds("--kind", "lock", "--kind", "shm") == {lock_name: "lock", plain_name: "shm"}
    for found in listed():
        if found["name"] in ours:
            assert list(found) == list(JSON_KEYS)
            for nested in ("channel", "lock"):
                for key in found[nested] or {}:
                    assert key in JSON_KEYS[nested], key

    result = cli("rm", "--kind", "channel", channel_name, lock_name)
    assert result.returncode == 1  # the lock is not a channel: not found as one
    assert f"removed channel {channel_name}" in result.stdout
    assert not os.path.exists("/dev/shm/" + channel_name[1:])
    assert cli("rm", "--kind", "lock", lock_name).returncode == 0
    assert not os.path.exists("/dev/shm/" + lock_name[1:])


def test_foreign_and_damaged_segments_are_never_taken_for_channels(names):
    magic_name, empty_name, noise_name = names(), names(), names()
    # A channel's magic number in a file of no channel's size: a channel with a problem.
    with open("/dev/shm/" + magic_name[1:], "wb") as file:
        file.write(b"IPCXXCH\0" + bytes(92))
    with open("/dev/shm/" + empty_name[1:], "wb"):
        pass
    with open("/dev/shm/" + noise_name[1:], "wb") as file:
        file.write(os.urandom(4096 + 8192 + 4096))
    records = {r["name"]: r for r in listed("--kind", "channel", "--kind", "shm")}

    damaged = records[magic_name]
    assert damaged["kind"] == "channel" and damaged["channel"] is None
    assert damaged["problem"] == "its size, 100 bytes, is not that of any channel"
    assert row(magic_name).endswith("its size, 100 bytes, is not that of any channel")
    for plain in (empty_name, noise_name):
        assert records[plain]["kind"] == "shm" and records[plain]["problem"] is None
    assert cli("stat", "--kind", "channel", noise_name).returncode == 1


THREAD_HOLDER = """
import sys, threading, ipcxx
lock = ipcxx.RobustLock(sys.argv[1])
taken, done = threading.Event(), threading.Event()
def hold():
    lock.acquire()
    print(threading.get_native_id(), flush=True)
    taken.set()
    done.wait()
    lock.release()
thread = threading.Thread(target=hold)
thread.start()
taken.wait()
sys.stdin.readline()
done.set()
thread.join()
"""


def test_a_lock_held_by_another_thread_names_the_process_and_the_thread(names, spawn):
    name = names()
    ipcxx.RobustLock(name, create=True, exclusive=True).close()
    holder = spawn(THREAD_HOLDER, name)
    tid = int(holder.read_line())
    pid = holder.process.pid
    assert tid != pid
    lock = record(name)["lock"]
    assert (lock["holder_pid"], lock["holder_tid"], lock["holder_alive"]) == (pid, tid, True)
    assert row(name).endswith(f"held by {pid} thread {tid}")
    assert holder.finish() == 0
    assert row(name).endswith("free")


def test_a_lock_released_unrepaired_after_a_death_is_shown_not_recoverable(names, spawn):
    name = names()
    ipcxx.RobustLock(name, create=True, exclusive=True).close()
    holder = start(spawn, LOCK_HOLDER, name)
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait()
    mine = ipcxx.RobustLock(name)
    try:
        with pytest.raises(ipcxx.OwnerDiedError):
            mine.acquire(timeout=5)
        assert row(name).endswith(f"held by {os.getpid()}, owner died")
        mine.release()  # without make_consistent()
    finally:
        mine.close()
    found = record(name)
    assert found["lock"]["consistency"] == "not_recoverable" and not found["lock"]["locked"]
    assert row(name).endswith("not recoverable")

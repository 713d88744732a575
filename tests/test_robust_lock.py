"""ipcxx.RobustLock: every API point and error, owner death across processes, Ctrl-C, and a
kill -9 storm of holders at random points (docs/guide.md, "A crash-robust lock")."""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ipcxx
import posix_ipc
from ipcxx import NotRecoverableError, OwnerDiedError, RobustLock
from tests.kernel_wait import wait_until_blocked

WORKER = Path(__file__).resolve().parent / "robust_lock_workers.py"

HOLD = """
import sys
from ipcxx import OwnerDiedError, RobustLock
lock = RobustLock(sys.argv[1])
try:
    lock.acquire()
except OwnerDiedError:
    print("died", flush=True)
print("holding", flush=True)
if sys.stdin.readline().strip() == "release":
    lock.release()
    print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def lock(make_name):
    made = RobustLock(make_name(), create=True)
    yield made
    while True:
        try:
            made.release()
        except (RuntimeError, ValueError):
            break
    made.close()


def test_bad_modes_are_refused(make_name):
    for mode in (-1, 0o10000):
        with pytest.raises(ValueError, match="mode"):
            RobustLock(make_name(), create=True, mode=mode)


def kill_while_holding(spawn, name: str) -> None:
    child = spawn(HOLD, name)
    assert child.read_line() in ("holding", "died")
    child.kill()


def in_thread(function):
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return outcome[0]


def test_acquire_and_release_change_locked(lock):
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()


def test_acquire_returns_false_when_the_timeout_expires(lock):
    lock.acquire()
    other = RobustLock(lock.name)
    started = time.monotonic()
    assert in_thread(lambda: other.acquire(timeout=0.05)) is False
    assert time.monotonic() - started >= 0.05
    assert in_thread(lambda: other.acquire(timeout=0)) is False
    lock.release()
    assert in_thread(lambda: (other.acquire(timeout=0), other.release())[0]) is True
    other.close()


def test_acquire_waits_for_another_process_to_release(lock, spawn):
    child = spawn(HOLD, lock.name)
    assert child.read_line() == "holding"
    assert lock.acquire(timeout=0) is False
    child.send_line("release")
    assert lock.acquire(timeout=30) is True
    lock.release()
    assert child.read_line() == "released"


def test_acquire_rejects_bad_timeouts(lock):
    with pytest.raises(ValueError):
        lock.acquire(timeout=-1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=float("nan"))
    with pytest.raises(TypeError):
        lock.acquire(timeout="1")
    assert not lock.locked()


def test_acquire_by_the_holding_thread_raises_runtime_error(lock):
    lock.acquire()
    with pytest.raises(RuntimeError, match="already holds"):
        lock.acquire()
    lock.release()


def test_release_by_a_thread_that_does_not_hold_it_raises_runtime_error(lock):
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()
    lock.acquire()
    error = in_thread(lock.release)
    assert isinstance(error, RuntimeError) and "does not hold" in str(error)
    assert lock.locked()
    lock.release()


def test_context_manager_acquires_and_releases(lock):
    with lock as entered:
        assert entered is lock
        assert lock.locked()
    assert not lock.locked()


def test_opening_a_missing_lock_raises_file_not_found(make_name):
    with pytest.raises(FileNotFoundError):
        RobustLock(make_name())


def test_create_opens_an_existing_lock(lock):
    again = RobustLock(lock.name, create=True)
    with again:
        assert lock.locked()
    again.close()


def test_name_none_needs_create_and_then_picks_a_random_name():
    with pytest.raises(ValueError):
        RobustLock(None)
    made = RobustLock(None, create=True)
    try:
        assert made.name.startswith("/")
        assert RobustLock(made.name).name == made.name
    finally:
        made.unlink()
        made.close()


def test_options_are_keyword_only(make_name):
    with pytest.raises(TypeError):
        RobustLock(make_name(), True)  # type: ignore[misc]


def test_unlink_and_unlink_robust_lock_remove_the_name(make_name):
    first = RobustLock(make_name(), create=True)
    first.unlink()
    with pytest.raises(FileNotFoundError):
        RobustLock(first.name)
    with first:  # still usable by whoever has it open
        pass
    first.close()
    second = RobustLock(make_name(), create=True)
    ipcxx.unlink_robust_lock(second.name)
    with pytest.raises(FileNotFoundError):
        ipcxx.unlink_robust_lock(second.name)
    second.close()
    with pytest.raises(TypeError):
        ipcxx.unlink_robust_lock(42)  # type: ignore[arg-type]


def test_a_closed_lock_raises_value_error_and_close_is_idempotent(lock):
    other = RobustLock(lock.name)
    other.close()
    other.close()
    assert other.closed
    assert "closed" in repr(other)
    for call in (other.acquire, other.release, other.locked, other.unlink, other.make_consistent):
        with pytest.raises(ValueError):
            call()


def test_close_while_holding_raises_runtime_error(lock):
    lock.acquire()
    with pytest.raises(RuntimeError, match="release"):
        lock.close()
    lock.release()
    lock.close()


def test_a_segment_of_the_wrong_size_is_not_a_lock(make_name):
    memory = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX, size=10)
    memory.close_fd()
    with pytest.raises(ValueError, match="not an ipcxx robust lock"):
        RobustLock(memory.name)
    with pytest.raises(ValueError, match="not an ipcxx robust lock"):
        RobustLock(memory.name, create=True)


def test_a_segment_with_a_foreign_header_is_not_a_lock(lock, make_name):
    import mmap

    size = os.fstat(
        posix_ipc.SharedMemory(lock.name).fd  # a lock's size, read from a real one
    ).st_size
    memory = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX, size=size)
    with mmap.mmap(memory.fd, size) as view:
        view[:] = b"\xff" * size
    memory.close_fd()
    with pytest.raises(ValueError, match="not an ipcxx robust lock"):
        RobustLock(memory.name)


def test_a_dead_holder_is_reported_once_and_make_consistent_keeps_it_usable(lock, spawn):
    kill_while_holding(spawn, lock.name)
    assert lock.locked()
    with pytest.raises(OwnerDiedError):
        lock.acquire()
    assert lock.locked()  # held by this thread now
    lock.make_consistent()
    lock.release()
    assert lock.acquire(timeout=0) is True
    lock.release()
    with lock:
        pass


def test_a_dead_holder_is_reported_to_a_timed_acquire_and_to_a_context_manager(lock, spawn):
    kill_while_holding(spawn, lock.name)
    with pytest.raises(OwnerDiedError):
        lock.acquire(timeout=5)
    lock.make_consistent()
    lock.release()
    kill_while_holding(spawn, lock.name)
    with pytest.raises(OwnerDiedError):
        with lock:
            pass
    lock.make_consistent()  # __enter__ raised holding the lock
    lock.release()


def test_make_consistent_without_a_death_raises_runtime_error(lock):
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.make_consistent()
    lock.acquire()
    with pytest.raises(RuntimeError, match="nothing to repair"):
        lock.make_consistent()
    lock.release()


def test_releasing_without_make_consistent_makes_every_later_use_fail(lock, spawn):
    kill_while_holding(spawn, lock.name)
    with pytest.raises(OwnerDiedError):
        lock.acquire()
    lock.release()
    assert lock.not_recoverable
    for call in (
        lock.acquire,
        lambda: lock.acquire(timeout=0),
        lambda: lock.acquire(timeout=1),
        lock.release,
        lock.locked,
        lock.make_consistent,
    ):
        with pytest.raises(NotRecoverableError):
            call()
    other = spawn(
        "import sys\nfrom ipcxx import NotRecoverableError, RobustLock\n"
        "try:\n    RobustLock(sys.argv[1]).acquire()\n"
        "except NotRecoverableError:\n    print('not recoverable', flush=True)\n",
        lock.name,
    )
    assert other.read_line() == "not recoverable"


def test_ctrl_c_interrupts_a_wait_promptly(lock):
    holder_ready, holder_done = threading.Event(), threading.Event()
    other = RobustLock(lock.name)

    def hold() -> None:
        other.acquire()
        holder_ready.set()
        holder_done.wait(30)
        other.release()

    thread = threading.Thread(target=hold)
    thread.start()
    holder_ready.wait(30)
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.1, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.acquire()
        # The interrupt ended the wait, not a release: the holder still holds (it lets go only
        # once holder_done is set, below). How fast is the scheduler's business.
        assert sent and thread.is_alive() and not holder_done.is_set()
    finally:
        timer.cancel()
        holder_done.set()
        thread.join(30)
        other.close()
    assert not lock.locked()


# The lock segment (cpp/src/robust_mutex.cpp, RobustMutex::Layout): ready, version, magic,
# state, unreported_death, acquisitions, then glibc's x86-64 pthread_mutex_t (__lock, __count,
# __owner, __nusers, __kind, ...). __lock is the owner's TID with the futex flags below.
_LAYOUT = "<IIQIIQ"
_MUTEX = "<iIiIi"
_FUTEX_WAITERS, _FUTEX_OWNER_DIED, _FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
_STATES = {0: "consistent", 1: "inconsistent (owner died, not repaired)", 2: "not recoverable"}


def _read(path: str, limit: int = 4000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-limit:].strip() or "(empty)"
    except OSError as error:
        return f"(unreadable: {error.strerror})"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _lock_state(name: str, processes: dict[int, str]) -> str:
    """The lock word and header, decoded, and who the owner TID is."""
    try:
        raw = Path("/dev/shm", name.lstrip("/")).read_bytes()
    except OSError as error:
        return f"lock segment unreadable: {error.strerror}"
    size = struct.calcsize(_LAYOUT)
    if len(raw) < size + struct.calcsize(_MUTEX):
        return f"lock segment of {len(raw)} bytes: {raw.hex()}"
    _ready, _version, _magic, state, unreported, acquisitions = struct.unpack_from(_LAYOUT, raw)
    word, count, owner, users, kind = struct.unpack_from(_MUTEX, raw, size)
    tid = word & _FUTEX_TID_MASK
    who = processes.get(tid, "not a worker of this test")
    if tid:
        who += ", alive" if _alive(tid) else ", dead"
    return (
        f"lock word 0x{word & 0xFFFFFFFF:08x}: owner tid {tid} ({who})"
        f" waiters={bool(word & _FUTEX_WAITERS)} owner_died={bool(word & _FUTEX_OWNER_DIED)};"
        f" __owner={owner} __count={count} __nusers={users} __kind={kind};"
        f" state={_STATES.get(state, state)} unreported_death={unreported}"
        f" acquisitions={acquisitions}; raw {raw.hex()}"
    )


def _diagnose(process: subprocess.Popen, lines: list[str], folder: Path) -> str:
    """Everything needed to tell why a worker has not finished: its last lines, where the
    kernel has it (state, syscall, wait channel, kernel stack), its Python stack (faulthandler
    on SIGUSR1, see robust_lock_workers.py) and its native stack (gdb, when installed). Each
    piece is bounded in time and any failure to collect it is reported, never raised."""
    pid = process.pid
    parts = [f"worker {pid}: last lines {lines[-8:]}"]
    status = _read(f"/proc/{pid}/status")
    parts.append("  " + " ".join(x for x in status.splitlines() if x.startswith("State:")))
    for what in ("syscall", "wchan", "stack"):
        parts.append(f"  /proc/{pid}/{what}: {_read(f'/proc/{pid}/{what}')}")
    dump = folder / f"stack-{pid}.txt"
    try:
        os.kill(pid, signal.SIGUSR1)
        until = time.monotonic() + 5
        while time.monotonic() < until and not (dump.exists() and dump.stat().st_size):
            time.sleep(0.05)
        parts.append(f"  Python stack:\n{_read(str(dump))}")
    except OSError as error:
        parts.append(f"  Python stack: not collected ({error})")
    gdb = shutil.which("gdb")
    if gdb:
        try:
            native = subprocess.run(
                [gdb, "-batch", "-nx", "-p", str(pid), "-ex", "thread apply all bt"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            parts.append(f"  native stack (gdb):\n{native.stdout[:6000]}{native.stderr[-500:]}")
        except (OSError, subprocess.SubprocessError) as error:
            parts.append(f"  native stack: not collected ({error})")
    return "\n".join(parts)


def test_killed_holders_are_each_reported_once_and_no_waiter_is_stuck(make_name, sizes, tmp_path):
    """N contending processes; the parent SIGKILLs random ones (mostly while they hold the
    lock, at a random point of the critical section, sometimes at any point) until
    sizes.kills have died, replacing each. Every death while holding must be reported to
    exactly one next owner; every survivor must finish. A worker that does not is described
    in the failure message (its stacks, the lock word)."""
    lock = RobustLock(make_name(), create=True)
    counter = tmp_path / "holder"
    counter.write_bytes(b"\0" * 8)
    contenders = 4
    rng = random.Random()
    children: dict[int, tuple[subprocess.Popen, list[str]]] = {}
    buffers: dict[int, bytes] = {}
    at_end: set[int] = set()  # fds whose worker closed its stdout
    roles: dict[int, str] = {}  # pid -> what the test made of it, for the diagnosis

    def start() -> None:
        process = subprocess.Popen(
            [sys.executable, str(WORKER), lock.name, str(counter)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        children[process.stdout.fileno()] = (process, [])
        buffers[process.stdout.fileno()] = b""
        roles[process.pid] = "a contender"

    def read_lines(fd: int, block: bool) -> list[str]:
        while True:
            chunk = os.read(fd, 65536)
            buffers[fd] += chunk
            if not chunk:
                at_end.add(fd)
            if not chunk or not block:
                break
        *lines, buffers[fd] = buffers[fd].split(b"\n")
        if not chunk and buffers[fd]:
            lines.append(buffers[fd])
            buffers[fd] = b""
        return [line.decode() for line in lines]

    certain = ambiguous = kills = 0
    killed: list[int] = []
    certain_pids: list[int] = []
    reported: list[int] = []
    diagnosis = ""

    def note_reports(lines: list[str]) -> None:
        reported.extend(int(line.split()[1]) for line in lines if line.startswith("died "))

    def kill(fd: int) -> None:
        nonlocal certain, ambiguous, kills
        process, lines = children.pop(fd)
        process.kill()
        process.wait()
        lines += read_lines(fd, block=True)
        note_reports(lines)
        killed.append(process.pid)
        roles[process.pid] = f"killed, last line {lines[-1] if lines else None!r}"
        last = lines[-1].split()[0] if lines else "started"
        # "died"/"holding": it held the lock (and had recorded itself in the slot);
        # "acquiring"/"releasing": it may have held it.
        if last in ("died", "holding"):
            certain += 1
            certain_pids.append(process.pid)
        elif last in ("acquiring", "releasing"):
            ambiguous += 1
        kills += 1
        process.stdout.close()
        process.stdin.close()
        del buffers[fd]
        at_end.discard(fd)

    def diagnose_all(pending) -> str:
        return "\n".join(
            [_lock_state(lock.name, roles)]
            + [_diagnose(process, lines, tmp_path) for process, lines in pending]
        )

    started = time.monotonic()
    try:
        for _ in range(contenders):
            start()
        while kills < sizes.kills:
            ready, _, _ = select.select(list(children), [], [], 30)
            if not ready:
                diagnosis = diagnose_all(children.values())
            assert ready, f"no contender made progress for 30 s:\n{diagnosis}"
            # A kill and start in this round may give a new worker the fd of one still listed:
            # reading that one now could block until the new worker writes.
            polled = {fd: children[fd][0] for fd in ready}
            for fd in ready:
                if fd not in children or children[fd][0] is not polled[fd]:
                    continue
                lines = read_lines(fd, block=False)
                children[fd][1].extend(lines)
                assert children[fd][0].poll() in (None, 0), "a worker failed"
                if "holding" in lines and rng.random() < 0.6:
                    kill(fd)  # at a random point of its critical section
                    start()
                elif lines and rng.random() < 0.05:
                    kill(rng.choice(list(children)))  # at any point, waiting ones included
                    start()
                if kills >= sizes.kills:
                    break
        storm = time.monotonic() - started
        for process, _ in children.values():
            process.stdin.close()
        # The survivors' output is read until each closes it: a survivor whose pipe is full
        # blocks in write() and never finishes unless someone reads (docs/reliability.md).
        deadline = time.monotonic() + 60
        while (pending := [fd for fd in children if fd not in at_end]) and (
            left := deadline - time.monotonic()
        ) > 0:
            ready, _, _ = select.select(pending, [], [], left)
            for fd in ready:
                children[fd][1].extend(read_lines(fd, block=False))
        unfinished = []
        for fd, (process, lines) in children.items():
            try:
                code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                unfinished.append((process, lines))
                continue
            assert code == 0, f"a survivor exited with {code}"
            lines += read_lines(fd, block=True)
            note_reports(lines)
        ending = time.monotonic() - started - storm
        if unfinished:
            for process, lines in children.values():
                roles[process.pid] = f"a survivor, last line {lines[-1] if lines else None!r}"
            diagnosis = diagnose_all(unfinished)
        else:
            assert not lock.not_recoverable
    finally:
        for process, _ in children.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        lock.close()
    waits = [
        float(line.split()[1])
        for _, lines in children.values()
        for line in lines
        if line.startswith("finished ")
    ]
    identified = [pid for pid in reported if pid]
    missing = sorted(set(certain_pids) - set(identified))
    print(
        f"kills={kills} certain={certain} ambiguous={ambiguous} reports={len(reported)}"
        f" unidentified={len(reported) - len(identified)} missing={len(missing)}"
        f" stuck={len(unfinished)} storm={storm:.1f}s ending={ending:.1f}s"
        f" longest_survivor_wait={max(waits, default=0):.3f}s"
    )
    assert not unfinished, f"{len(unfinished)} survivor(s) did not finish in 60 s:\n{diagnosis}"
    assert kills == sizes.kills
    # Exactly once, to exactly one next owner: no death is reported twice, and every report
    # names a process that was killed.
    assert len(identified) == len(set(identified))
    assert set(identified) <= set(killed)
    # Every death while certainly holding is reported. (Two deaths in a row, the second
    # before the report was written, are one EOWNERDEAD: at most the ambiguous kills.)
    assert len(missing) <= ambiguous
    # Unidentified reports are holders that died before recording themselves (ambiguous).
    assert len(reported) - len(identified) <= ambiguous
    assert certain >= sizes.kills // 4


def test_an_object_releases_only_what_it_acquired(make_name):
    """Two objects on one name in one thread: releasing through the one that did not acquire
    is refused (it used to unmap a held mutex at the next close: SIGSEGV in the next lock)."""
    from .child_python import run_python

    done = run_python(
        """
import gc, sys
from ipcxx import RobustLock
name, other_name = sys.argv[1], sys.argv[2]
a = RobustLock(name, create=True)
b = RobustLock(name)
b.acquire()
try:
    a.release()
    print("released through the other object")
except RuntimeError:
    print("refused")
b.release()
a.acquire()
a.release()
other = RobustLock(other_name, create=True)
del a
gc.collect()
other.acquire()   # glibc walks this thread's robust list: nothing of it may be unmapped
other.release()
other.unlink(); other.close()
b.unlink(); b.close()
""",
        make_name(),
        make_name(),
    )
    assert done.stdout.split() == ["refused"]


def test_a_lock_whose_holder_thread_died_can_be_closed_after_repair(make_name):
    lock = RobustLock(make_name(), create=True)
    try:
        holder = threading.Thread(target=lock.acquire)
        holder.start()
        holder.join()  # the thread ends holding the lock: the kernel reports its death
        with pytest.raises(OwnerDiedError):
            lock.acquire()
        lock.make_consistent()
        lock.release()
        assert not lock.locked()
        lock.close()  # refused forever before: the dead thread's hold kept counting
        assert lock.closed
    finally:
        ipcxx.unlink_robust_lock(lock.name)
        lock.close()


# Every way an acquisition through an object can end, and close() after it (issue 16, class 5):
# close() is refused only while this object holds the lock or another thread waits on it.


def _thread_ended(native_id: int) -> None:
    """Waits (bounded) until the OS thread is gone: Thread.join() returns before the thread
    exits, and the kernel reports a held robust mutex only at the exit itself. A thread leaves
    /proc/self/task after the kernel has handled its robust list."""
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/self/task/{native_id}"):
        assert time.monotonic() < deadline, "the thread never exited"
        time.sleep(0.001)


def _die_holding(lock: RobustLock) -> None:
    """Acquires `lock` in a thread that then ends holding it; returns once the thread is gone."""
    native: list[int] = []

    def hold() -> None:
        native.append(threading.get_native_id())
        assert lock.acquire() is True

    holder = threading.Thread(target=hold)
    holder.start()
    holder.join()
    _thread_ended(native[0])


def test_close_after_release_and_after_exit(lock):
    with lock:
        with pytest.raises(RuntimeError, match="release"):
            lock.close()
    other = RobustLock(lock.name)
    assert other.acquire() is True
    other.release()
    other.close()
    assert lock.acquire() is True
    lock.release()
    lock.close()
    assert lock.closed


def test_close_after_the_holding_thread_died_and_another_object_got_the_report(lock):
    other = RobustLock(lock.name)
    try:
        _die_holding(lock)
        with pytest.raises(OwnerDiedError):
            other.acquire()
        # This thread holds the lock through `other`, not through `lock`.
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()
        lock.close()  # refused forever before: the dead thread's hold kept counting
        assert lock.closed
        with pytest.raises(RuntimeError, match="release"):
            other.close()
        other.make_consistent()
        other.release()
        assert not other.locked()
    finally:
        other.close()


def test_close_after_the_holding_thread_died_before_anyone_was_told(lock):
    _die_holding(lock)
    lock.close()
    assert lock.closed
    other = RobustLock(lock.name)
    try:
        with pytest.raises(OwnerDiedError):  # still reported, exactly once
            other.acquire()
        other.make_consistent()
        other.release()
        assert other.acquire(timeout=0) is True
        other.release()
    finally:
        other.close()


def test_a_fork_child_of_the_holder_holds_nothing_and_can_close(lock):
    assert lock.acquire() is True
    results_read, results_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            outcome = []
            try:
                lock.release()
                outcome.append("released")
            except RuntimeError:
                outcome.append("release refused")
            outcome.append(f"acquire {lock.acquire(timeout=0)}")
            lock.close()
            outcome.append(f"closed {lock.closed}")
            os.write(results_write, ";".join(outcome).encode())
        finally:
            os._exit(0)
    os.close(results_write)
    with os.fdopen(results_read, "rb") as results:
        reported = results.read().decode()
    assert os.waitpid(child, 0)[1] == 0
    assert reported == "release refused;acquire False;closed True"
    assert lock.locked()  # the parent still holds it
    with pytest.raises(RuntimeError, match="release"):
        lock.close()
    lock.release()


def test_close_after_a_holder_process_was_killed(lock, spawn):
    kill_while_holding(spawn, lock.name)
    lock.close()  # this process's objects hold nothing: the dead holder was another process
    other = RobustLock(lock.name)
    try:
        with pytest.raises(OwnerDiedError):
            other.acquire()
        other.make_consistent()
        other.release()
    finally:
        other.close()


def test_dropping_a_holding_object_leaves_the_lock_to_its_thread_until_the_thread_ends(make_name):
    name = make_name()
    survivor = RobustLock(name, create=True)
    try:
        native: list[int] = []

        def hold_and_drop() -> None:
            native.append(threading.get_native_id())
            dropped = RobustLock(name)
            assert dropped.acquire() is True
            del dropped  # __del__ while holding: the mapping stays for the kernel's report

        holder = threading.Thread(target=hold_and_drop)
        holder.start()
        holder.join()
        _thread_ended(native[0])
        with pytest.raises(OwnerDiedError):
            survivor.acquire()
        survivor.make_consistent()
        survivor.release()
        survivor.close()
    finally:
        ipcxx.unlink_robust_lock(name)
        survivor.close()


def test_close_is_refused_while_another_thread_waits_and_allowed_after(lock):
    other = RobustLock(lock.name)
    try:
        assert other.acquire() is True
        native: list[int] = []
        started = threading.Event()
        outcome: list[object] = []

        def wait_then_release() -> None:
            native.append(threading.get_native_id())
            started.set()
            outcome.append(lock.acquire(timeout=30))
            lock.release()

        waiter = threading.Thread(target=wait_then_release)
        waiter.start()
        started.wait()
        wait_until_blocked(native[0], "futex", futex_in=f"/dev/shm{lock.name}")
        with pytest.raises(RuntimeError, match="waiting"):
            lock.close()
        other.release()
        waiter.join(30)
        assert outcome == [True]
        lock.close()
        assert lock.closed
    finally:
        other.close()

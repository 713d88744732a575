"""Proof that a thread is blocked in the kernel on a given object, read from /proc: a test
that closes or removes something "while another thread waits" first waits for this proof
instead of hoping the thread got there."""

from __future__ import annotations

import os
import platform
import time

# Syscall numbers of the waits we look for, per architecture (asm/unistd.h); glibc may issue
# semop() as either call.
_SYSCALLS = {
    "x86_64": {
        "futex": {202},
        "mq_timedsend": {242},
        "mq_timedreceive": {243},
        "semtimedop": {220, 65},
        "msgsnd": {69},
        "msgrcv": {70},
    },
    "aarch64": {
        "futex": {98},
        "mq_timedsend": {182},
        "mq_timedreceive": {183},
        "semtimedop": {192, 193},
        "msgsnd": {189},
        "msgrcv": {188},
    },
}


def _syscall_of(process: str, tid: int) -> tuple[int, list[int]] | None:
    """(number, arguments) of the syscall the thread is blocked in, or None when running."""
    try:
        with open(f"/proc/{process}/task/{tid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{process}/task/{tid}/syscall") as text:
            fields = text.read().split()
    except FileNotFoundError:
        return None
    if state not in ("S", "D") or not fields or fields[0] in ("running", "-1"):
        return None
    return int(fields[0]), [int(value, 16) for value in fields[1:7]]


def _mappings_of(process: str, path: str) -> list[tuple[int, int]]:
    # By inode: glibc maps a semaphore's file under a temporary name before linking it. Every
    # mapping: two objects of one process opening the same name map it twice.
    inode = os.stat(path).st_ino
    found = []
    with open(f"/proc/{process}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 5 and int(fields[4]) == inode:
                start, end = fields[0].split("-")
                found.append((int(start, 16), int(end, 16)))
    assert found, f"no mapping of {path}"
    return found


def wait_until_blocked(
    tid: int,
    syscall: str,
    *,
    futex_in: str | None = None,
    pid: int | None = None,
    timeout: float = 30,
) -> None:
    """Returns once thread `tid` (threading.get_native_id(); a process's main thread has its
    pid as tid) of process `pid` (default: this one) sleeps in `syscall`; for "futex",
    `futex_in` names the mapped file (e.g. "/dev/shm/sem.x") the futex word lies in, which
    tells a semaphore wait from a wait for the GIL. Polls /proc; fails after `timeout`."""
    process = "self" if pid is None else str(pid)
    numbers = _SYSCALLS[platform.machine()][syscall]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _syscall_of(process, tid)
        if found and found[0] in numbers:
            if futex_in is None:
                return
            if any(start <= found[1][0] < end for start, end in _mappings_of(process, futex_in)):
                return
        os.sched_yield()
    raise AssertionError(f"thread {tid} never blocked in {syscall}")

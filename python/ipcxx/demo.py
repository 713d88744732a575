"""The ipcxx demo: a parent and a child process exchange data through a POSIX semaphore pair,
a shared memory segment and a message queue, then through their System V counterparts
(demo_sysv), with timings. Every object is removed at the end, also after Ctrl-C or a failing
child, and only objects this run created: names carry the pid and a random token, and a name is
unlinked only once this run has created it (a name someone else holds is left alone)."""

from __future__ import annotations

import mmap
import os
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack

import posix_ipc

from . import demo_sysv

PAYLOAD = b"hello from the parent process"


def _prefix() -> str:
    """The name prefix of one demo run: pid plus a random token, so no other program's name."""
    return f"/ipcxx_demo_{os.getpid()}_{secrets.token_hex(4)}_"


def _remove(unlink, name: str) -> None:
    try:
        unlink(name)
    except posix_ipc.ExistentialError:
        pass


def _create(cleanup: ExitStack, make, unlink, name: str, **options):
    """make(name, O_CREX): the unlink is registered only once the name is ours. (Registering
    it before creation would, when O_CREX fails because the name is taken, unlink someone
    else's object.) Ctrl-C between the two leaves the object behind, never removes a foreign
    one."""
    obj = make(name, posix_ipc.O_CREX, **options)
    cleanup.callback(_remove, unlink, name)
    return obj


def run(rounds: int) -> int:
    prefix = _prefix()
    names = [prefix + kind for kind in ("ping", "pong", "memory", "queue")]
    with ExitStack() as cleanup:
        ping = _create(cleanup, posix_ipc.Semaphore, posix_ipc.unlink_semaphore, names[0])
        cleanup.callback(ping.close)
        pong = _create(cleanup, posix_ipc.Semaphore, posix_ipc.unlink_semaphore, names[1])
        cleanup.callback(pong.close)
        memory = _create(
            cleanup,
            posix_ipc.SharedMemory,
            posix_ipc.unlink_shared_memory,
            names[2],
            size=mmap.PAGESIZE,
        )
        view = mmap.mmap(memory.fd, memory.size)
        memory.close_fd()
        cleanup.callback(view.close)
        queue = _create(cleanup, posix_ipc.MessageQueue, posix_ipc.unlink_message_queue, names[3])
        cleanup.callback(queue.close)

        child = subprocess.Popen(
            [sys.executable, "-m", "ipcxx", "demo-child", *names, "--rounds", str(rounds)]
        )
        cleanup.callback(_stop, child)
        print(f"parent {os.getpid()} started child {child.pid}")

        # 1. Semaphore ping-pong: each round trip is two posts and two waits across processes.
        started = time.perf_counter()
        for _ in range(rounds):
            ping.release()
            pong.acquire(10)
        elapsed = time.perf_counter() - started
        print(
            f"semaphores:    {rounds} round trips in {elapsed * 1e3:.1f} ms "
            f"({elapsed / rounds * 1e6:.2f} us each)"
        )

        # 2. Shared memory: write a payload, let the child upper-case it in place.
        view[: len(PAYLOAD)] = PAYLOAD
        started = time.perf_counter()
        ping.release()
        pong.acquire(10)
        elapsed = time.perf_counter() - started
        answer = bytes(view[: len(PAYLOAD)])
        print(
            f"shared memory: wrote {PAYLOAD!r}, child made it {answer!r} ({elapsed * 1e6:.0f} us)"
        )

        # 3. Message queue: the child queues three replies with priorities, then says so;
        # they come out highest priority first.
        started = time.perf_counter()
        ping.release()
        pong.acquire(10)
        received = [queue.receive(10) for _ in range(3)]
        elapsed = time.perf_counter() - started
        for message, priority in received:
            print(f"message queue: priority {priority}: {message.decode()}")
        print(f"message queue: 3 messages in {elapsed * 1e6:.0f} us")

        status = child.wait(timeout=30)
        ok = status == 0 and answer == PAYLOAD.upper() and [p for _, p in received] == [9, 5, 1]
    ok = demo_sysv.run() and ok
    print("demo finished: all objects removed" if ok else "demo FAILED")
    return 0 if ok else 1


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()


def child(ping_name: str, pong_name: str, memory_name: str, queue_name: str, rounds: int) -> int:
    ping = posix_ipc.Semaphore(ping_name)
    pong = posix_ipc.Semaphore(pong_name)
    memory = posix_ipc.SharedMemory(memory_name)
    view = mmap.mmap(memory.fd, memory.size)
    memory.close_fd()
    queue = posix_ipc.MessageQueue(queue_name)
    try:
        for _ in range(rounds):
            ping.acquire(10)
            pong.release()
        ping.acquire(10)
        view[: len(PAYLOAD)] = bytes(view[: len(PAYLOAD)]).upper()
        pong.release()
        ping.acquire(10)
        for priority in (1, 9, 5):
            queue.send(
                f"reply from child {os.getpid()} with priority {priority}", priority=priority
            )
        pong.release()
        return 0
    finally:
        view.close()
        queue.close()
        ping.close()
        pong.close()

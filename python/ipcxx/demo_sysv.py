"""The System V half of the ipcxx demo: a semaphore with undo, a shared memory segment and a
typed message queue between this process and a child. Everything is removed at the end, and
only that: each object is removed through the handle that created it (by its id), never by
looking a key up, so an object someone else holds under a key is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack

import sysv_ipc


def _remove(obj) -> None:
    try:
        obj.remove()
    except sysv_ipc.ExistentialError:
        pass


def run() -> bool:
    with ExitStack() as cleanup:
        turn = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX)
        cleanup.callback(_remove, turn)
        memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=4096)
        cleanup.callback(_remove, memory)
        cleanup.callback(memory.detach)
        queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX)
        cleanup.callback(_remove, queue)

        memory.write(b"sysv greeting from the parent")
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipcxx",
                "demo-sysv-child",
                str(turn.key),
                str(memory.key),
                str(queue.key),
            ]
        )
        cleanup.callback(_stop, child)
        started = time.perf_counter()
        turn.release()  # the child may go
        replies = [queue.receive(type=kind) for kind in (3, 2, 1)]  # chosen by type
        elapsed = time.perf_counter() - started
        for message, kind in replies:
            print(f"sysv queue:    type {kind}: {message.decode()}")
        answer = memory.read(29)
        print(f"sysv memory:   child rewrote it to {answer!r} ({elapsed * 1e6:.0f} us)")
        status = child.wait(timeout=30)
        # The child held the semaphore with undo=True and exited: the kernel gave it back.
        print(f"sysv semaphore: value after the child exited: {turn.value} (restored by undo)")
        return (
            status == 0
            and answer == b"SYSV GREETING FROM THE PARENT"
            and [kind for _, kind in replies] == [3, 2, 1]
            and turn.value == 1
        )


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()


def child(turn_key: str, memory_key: str, queue_key: str) -> int:
    turn = sysv_ipc.Semaphore(int(turn_key))
    turn.undo = True
    turn.acquire(10)  # held until exit; SEM_UNDO releases it then
    memory = sysv_ipc.SharedMemory(int(memory_key))
    memory.write(memory.read(29).upper())
    memory.detach()
    queue = sysv_ipc.MessageQueue(int(queue_key))
    for kind in (1, 2, 3):
        queue.send(f"reply of type {kind} from child {os.getpid()}", type=kind)
    return 0

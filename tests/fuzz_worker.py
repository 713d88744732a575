"""A worker process for the bad-input fuzz tests: reads pickled calls from stdin, runs each,
and answers with the name of the exception it raised ("ok" when none). If a call crashes the
interpreter the parent sees the pipe close and reports that example. Objects a call creates
are removed at once; a call that would wait forever is ended by a timer signal."""

from __future__ import annotations

import pickle
import signal
import struct
import sys
import warnings

import posix_ipc
import sysv_ipc

PREFIX = sys.argv[1]  # names the fuzzer may create start with this


def cleanup(obj) -> None:
    for method in ("unlink", "remove", "close", "close_fd"):
        try:
            if method == "remove" and isinstance(obj, sysv_ipc.SharedMemory) and obj.attached:
                obj.detach()
            getattr(obj, method, lambda: None)()
        except Exception:  # noqa: BLE001,S110 - best effort: it may already be gone
            pass


def fixtures() -> dict:
    """Long-lived objects that method and attribute fuzzing acts on."""
    semaphore = posix_ipc.Semaphore(PREFIX + "sem", posix_ipc.O_CREAT, initial_value=1000)
    queue = posix_ipc.MessageQueue(PREFIX + "mq", posix_ipc.O_CREAT | posix_ipc.O_NONBLOCK)
    memory = posix_ipc.SharedMemory(PREFIX + "shm", posix_ipc.O_CREAT, size=4096)
    sysv_semaphore = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1000)
    sysv_semaphore.block = False
    sysv_memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=4096)
    sysv_queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX)
    for kind in range(1, 50):
        sysv_queue.send(b"m", type=kind)
    return {
        "posix_semaphore": semaphore,
        "posix_queue": queue,
        "posix_memory": memory,
        "sysv_semaphore": sysv_semaphore,
        "sysv_memory": sysv_memory,
        "sysv_queue": sysv_queue,
    }


def resolve(objects: dict, target: str):
    module_name, _, rest = target.partition(".")
    if module_name in objects:
        obj = objects[module_name]
        return obj, rest
    module = {"posix_ipc": posix_ipc, "sysv_ipc": sysv_ipc}[module_name]
    return module, rest


def sysv_ids() -> set[str]:
    found = set()
    for kind in ("sem", "shm", "msg"):
        with open(f"/proc/sysvipc/{kind}") as table:
            found.update(f"{kind}:{line.split()[1]}" for line in list(table)[1:])
    return found


SYSV_KIND = {sysv_ipc.Semaphore: "sem", sysv_ipc.SharedMemory: "shm", sysv_ipc.MessageQueue: "msg"}


def run(objects: dict, request: tuple) -> str:
    kind, target, args, kwargs = request
    owner, attribute = resolve(objects, target)
    if kind == "setattr":
        setattr(owner, attribute, args[0])
        return "ok"
    existing = sysv_ids()
    result = getattr(owner, attribute)(*args, **kwargs)
    if isinstance(result, (posix_ipc.Semaphore, posix_ipc.SharedMemory, posix_ipc.MessageQueue)):
        cleanup(result)  # named under PREFIX or randomly: made by this call
    elif type(result) in SYSV_KIND:
        if f"{SYSV_KIND[type(result)]}:{result.id}" in existing:
            # A random key or id opened an object that was already there: leave it alone.
            if isinstance(result, sysv_ipc.SharedMemory) and result.attached:
                result.detach()
        else:
            cleanup(result)
    return "ok"


def main() -> None:
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, lambda *_: None)
    objects = fixtures()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    try:
        while True:
            header = stdin.read(4)
            if len(header) < 4:
                break
            request = pickle.loads(stdin.read(struct.unpack("=I", header)[0]))
            signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)  # ends any wait a call starts
            try:
                answer = run(objects, request)
            except BaseException as error:  # noqa: BLE001 - the type is the answer
                answer = f"{type(error).__module__}.{type(error).__qualname__}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            stdout.write(answer.encode() + b"\n")
            stdout.flush()
    finally:
        for obj in objects.values():
            cleanup(obj)


if __name__ == "__main__":
    main()

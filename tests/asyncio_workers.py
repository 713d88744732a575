"""Child processes for tests/test_asyncio.py: open one IPC object and obey line commands.

Run as `python asyncio_workers.py KIND IDENT` with KIND one of psem, pmq, ssem, smq (IDENT a
POSIX name or a System V key). It prints `ready`, then for each line on stdin:

- `release N`    release the semaphore N times (no reply: the parent's awaits are the reply)
- `send START N` send messages START..START+N-1 (never blocks: the parent keeps room)
- `receive N`    receive N messages (never blocks: the parent knows they are there)
- `end`          print `done` and the sequence numbers received so far, then exit

`python asyncio_workers.py undo-churn KEY ROUNDS SEED` instead cancels acquire_async calls with
undo=True on a System V semaphore that it releases itself through a second handle without undo,
and prints the units it released, the units its completed acquires got, the value just
before it exits, and the units the pool gave back for cancelled waits.
"""

from __future__ import annotations

import sys


def open_object(kind: str, ident: str) -> object:
    if kind in ("psem", "pmq"):
        import posix_ipc

        return (posix_ipc.Semaphore if kind == "psem" else posix_ipc.MessageQueue)(ident)
    import sysv_ipc

    return (sysv_ipc.Semaphore if kind == "ssem" else sysv_ipc.MessageQueue)(int(ident))


async def undo_churn(key: int, rounds: int, seed: int) -> None:
    import asyncio
    import random

    import sysv_ipc

    rng = random.Random(seed)
    waiter, releaser = sysv_ipc.Semaphore(key), sysv_ipc.Semaphore(key)
    waiter.undo = True
    loop = asyncio.get_running_loop()
    acquired = released = 0

    async def one() -> None:
        nonlocal acquired
        await waiter.acquire_async()
        acquired += 1

    for _ in range(rounds):
        tasks = [asyncio.ensure_future(one()) for _ in range(8)]
        for _ in range(rng.randrange(3)):
            loop.call_soon(releaser.release)
            released += 1
        for task in tasks:
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    from ipcxx.aio.pool import get_pool

    get_pool().wait_idle()
    await asyncio.sleep(0)
    print(released, acquired, waiter.value, get_pool().given_back, flush=True)


def main() -> None:
    if sys.argv[1] == "undo-churn":
        import asyncio

        asyncio.run(undo_churn(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
        return
    kind, ident = sys.argv[1], sys.argv[2]
    obj = open_object(kind, ident)
    received: list[str] = []
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "release":
            for _ in range(int(args[0])):
                obj.release()  # type: ignore[attr-defined]
        elif command == "send":
            start, count = int(args[0]), int(args[1])
            for sequence in range(start, start + count):
                obj.send(str(sequence).encode())  # type: ignore[attr-defined]
        elif command == "receive":
            for _ in range(int(args[0])):
                received.append(obj.receive()[0].decode())  # type: ignore[attr-defined]
        elif command == "end":
            print("done", " ".join(received), flush=True)
            return


if __name__ == "__main__":
    main()

"""Child processes for tests/test_asyncio_extensions.py: open an ipcxx object, obey line commands.

`python asyncio_extension_workers.py channel NAME` opens the Channel NAME, prints `ready`, then
for each line on stdin:

- `send START N` send messages START..START+N-1 as decimal text (the parent keeps room)
- `receive N`    receive N messages (the parent knows they are there)
- `end`          print `done` and the messages received so far, then exit

`python asyncio_extension_workers.py lock NAME` opens the RobustLock NAME, prints `ready`, then:

- `acquire`        acquire (without limit), print `held`
- `acquire_async`  acquire through asyncio.run(lock.acquire_async()) (the main thread holds it,
                   for a task that has ended), print `held`
- `release`        release, print `released`
- `end`      print `done`, then exit (a lock still held is left to its dead holder)
"""

from __future__ import annotations

import os
import sys

import ipcxx


def channel(name: str) -> None:
    opened = ipcxx.Channel(name)
    received: list[str] = []
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "send":
            start, count = int(args[0]), int(args[1])
            for sequence in range(start, start + count):
                opened.send(str(sequence).encode(), timeout=30)
        elif command == "receive":
            for _ in range(int(args[0])):
                received.append(opened.receive(timeout=30).decode().strip())
        elif command == "end":
            print("done", " ".join(received), flush=True)
            return


def lock(name: str) -> None:
    opened = ipcxx.RobustLock(name)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "acquire":
            opened.acquire()
            print("held", flush=True)
        elif command == "acquire_async":
            import asyncio

            asyncio.run(opened.acquire_async())
            print("held", flush=True)
        elif command == "release":
            opened.release()
            print("released", flush=True)
        elif command == "end":
            print("done", flush=True)
            os._exit(0)  # a lock still held stays with this dead holder


if __name__ == "__main__":
    {"channel": channel, "lock": lock}[sys.argv[1]](sys.argv[2])

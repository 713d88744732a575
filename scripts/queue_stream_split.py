"""Two processes, one stream of small objects, three ways: a bare Channel with pickling in the
loop (A: the parent sends dumps(obj, 5), the child loads(receive())), the same plus the queue's
item semaphore (B), and ipcxx.Queue put/get (Q); then pickle.dumps alone in this process. Shows
how far the queue is from the bare ring with pickling, and what a two-process stream costs
beyond single-process pickling (docs/performance.md). Run in a private namespace:
python scripts/queue_stream_split.py (the parent on core 0, the child on core 1)."""

from __future__ import annotations

import os
import pickle
import time

import ipcxx
import posix_ipc

COUNT = 200_000
OBJ = (1, 2, 3)


def consume(
    mode: str, channel: ipcxx.Channel, items: posix_ipc.Semaphore, queue: ipcxx.Queue
) -> None:
    loads = pickle.loads
    for _ in range(COUNT):
        if mode == "Q":
            queue.get()
            continue
        loads(channel.receive())
        if mode == "B":
            try:
                items.acquire(0)
            except posix_ipc.BusyError:
                pass


def produce(
    mode: str, channel: ipcxx.Channel, items: posix_ipc.Semaphore, queue: ipcxx.Queue
) -> None:
    dumps = pickle.dumps
    for _ in range(COUNT):
        if mode == "Q":
            queue.put(OBJ)
            continue
        if mode == "B":
            items.release()
        channel.send(dumps(OBJ, 5))


def run(mode: str) -> float:
    """Nanoseconds per object, from the first put to the child's last get."""
    channel = ipcxx.Channel(None, create=True, capacity=4 << 20)
    items = posix_ipc.Semaphore("/queue_stream_split", posix_ipc.O_CREX)
    queue: ipcxx.Queue = ipcxx.Queue()
    done_reader, done_writer = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.sched_setaffinity(0, {1})
                consume(mode, channel, items, queue)
                os.write(done_writer, b"x")
                code = 0
            finally:
                os._exit(code)
        os.sched_setaffinity(0, {0})
        started = time.perf_counter()
        produce(mode, channel, items, queue)
        os.read(done_reader, 1)
        elapsed = time.perf_counter() - started
        os.waitpid(pid, 0)
        return elapsed / COUNT * 1e9
    finally:
        os.close(done_reader)
        os.close(done_writer)
        items.unlink()
        channel.unlink()
        channel.close()
        queue.close()
        queue.unlink()


def main() -> None:
    for _ in range(3):
        print({mode: f"{run(mode):.0f} ns" for mode in "ABQ"}, flush=True)
    dumps = pickle.dumps
    started = time.perf_counter()
    for _ in range(COUNT):
        dumps(OBJ, 5)
    print(f"dumps alone {(time.perf_counter() - started) / COUNT * 1e9:.0f} ns")


if __name__ == "__main__":
    main()

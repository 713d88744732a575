"""Measures how long ipcxx.Channel takes to recover from a killed participant (docs/reliability.md,
"Channel: kill -9 of producers and consumers"): a producer killed holding a reservation with a
message queued behind it, and a consumer killed holding a peeked message while the ring is full.
Prints the median and maximum over 30 trials of each:

    python scripts/measure_channel_recovery.py
"""

import os
import signal
import statistics
import time

import ipcxx


def trial() -> tuple[float, float]:
    channel = ipcxx.Channel(None, create=True, capacity=4096)
    ready_read, ready_write = os.pipe()
    try:
        child = os.fork()
        if child == 0:
            _held = ipcxx.Channel(channel.name).reserve(100).__enter__()  # kept, never committed
            os.write(ready_write, b"r")
            signal.pause()
        os.read(ready_read, 1)
        channel.send(b"behind")
        started = time.monotonic()
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        assert channel.receive(timeout=5) == b"behind"
        producer = time.monotonic() - started

        channel.send(b"x" * 1500)
        child = os.fork()
        if child == 0:
            _held = ipcxx.Channel(channel.name).peek().__enter__()  # kept, never finished
            os.write(ready_write, b"r")
            signal.pause()
        os.read(ready_read, 1)
        channel.send(b"y" * 1500)  # the ring is full: the next send needs the peeked space
        started = time.monotonic()
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        channel.send(b"z" * 1500, timeout=5)
        consumer = time.monotonic() - started
        assert channel.lost == 1 and channel.abandoned == 1
        return producer, consumer
    finally:
        os.close(ready_read)
        os.close(ready_write)
        channel.unlink()
        channel.close()


def main() -> None:
    results = [trial() for _ in range(30)]
    for index, what in enumerate(
        (
            "producer killed mid-reservation: next message received",
            "consumer killed mid-peek: producer gets the space",
        )
    ):
        times = sorted(result[index] for result in results)
        print(
            f"{what}: median {statistics.median(times) * 1e3:.1f} ms, "
            f"max {times[-1] * 1e3:.1f} ms (n={len(times)})"
        )


if __name__ == "__main__":
    main()

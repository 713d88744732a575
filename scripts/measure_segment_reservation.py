"""Measures what reserving a segment's space at creation costs (docs/reliability.md, "A full
/dev/shm"): the median time to create (and unlink) an ipcxx.Channel of several capacities and
an ipcxx.RobustLock, and, in the same run on plain files in /dev/shm of the same sizes, what
the old sparse creation (ftruncate) and the reservation (fallocate) cost on their own, and what
the first write of every page costs after each (a ring's first fill pays that either way):

    python scripts/measure_segment_reservation.py
"""

import mmap
import os
import statistics
import time

import ipcxx

CAPACITIES = ((4 << 10, 100), (1 << 20, 50), (64 << 20, 7), (1 << 30, 3))
SEGMENT_EXTRA = 12 << 10  # a channel's header and participant table in front of the ring


def median_creation_ms(create, rounds: int) -> float:
    """The median time of create(); the object is unlinked and closed outside the timing."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        made = create()
        samples.append(time.perf_counter() - started)
        made.unlink()
        made.close()
    return statistics.median(samples) * 1e3


def raw_segment(size: int, reserve: bool) -> tuple[float, float, float]:
    """(ms to size it, ms to write every page once) for one plain file."""
    path = f"/dev/shm/ipcxx_reserve_{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        started = time.perf_counter()
        if reserve:
            os.posix_fallocate(fd, 0, size)
        else:
            os.ftruncate(fd, size)
        sized = time.perf_counter()
        with mmap.mmap(fd, size) as memory:
            for offset in range(0, size, mmap.PAGESIZE):
                memory[offset] = 1
        touched = time.perf_counter()
    finally:
        os.close(fd)
        os.unlink(path)
    return (sized - started) * 1e3, (touched - sized) * 1e3


def main() -> None:
    print("creation (median ms):")
    for capacity, rounds in CAPACITIES:
        took = median_creation_ms(
            lambda capacity=capacity: ipcxx.Channel(None, create=True, capacity=capacity), rounds
        )
        print(f"  Channel capacity {capacity >> 10:>8} KiB: {took:9.3f}")
    lock_ms = median_creation_ms(lambda: ipcxx.RobustLock(None, create=True), 100)
    print(f"  RobustLock:                     {lock_ms:9.3f}")
    print("plain /dev/shm files of the same sizes (median of 3, ms): size it, then write each page")
    for capacity, _ in CAPACITIES:
        size = capacity + SEGMENT_EXTRA
        for reserve in (False, True):
            runs = [raw_segment(size, reserve) for _ in range(3)]
            sized = statistics.median(run[0] for run in runs)
            touched = statistics.median(run[1] for run in runs)
            how = "fallocate" if reserve else "ftruncate"
            print(f"  {capacity >> 10:>8} KiB {how}: {sized:9.3f}  first write {touched:9.3f}")


if __name__ == "__main__":
    main()

"""Benchmark cases, run in a worker process against whichever posix_ipc/sysv_ipc is importable
(ipcxx's, or upstream's from a --target folder on PYTHONPATH).

Usage: python cases.py CASE SECONDS  ->  prints {"ns": <nanoseconds per operation>}
Each case sets up its objects, runs its operation in a timed loop for about SECONDS, removes
what it created, and reports the time per operation. Nothing here asserts.

Objects are the run's own (see OwnedObjects in run.py), on both sides: POSIX names start with
$IPCXX_BENCH_PREFIX, System V keys come from the block in $IPCXX_BENCH_KEYS, and each System V
object is recorded in $IPCXX_BENCH_RECORD as soon as it exists, so that run.py can remove
exactly these after a crash. Run by hand, the worker makes up a prefix and keys of its own.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable

import posix_ipc
import sysv_ipc

MIB = 1 << 20

PREFIX = (
    os.environ.get("IPCXX_BENCH_PREFIX") or f"ipcxx_bench_{os.getpid()}_{secrets.token_hex(4)}_"
)
_KEYS = os.environ.get("IPCXX_BENCH_KEYS")
KEY_FIRST, KEY_COUNT = (
    map(int, _KEYS.split(":"))
    if _KEYS
    else (0x10000000 + (secrets.randbelow(0x6FFF) << 16), 1 << 16)
)
RECORD = os.environ.get("IPCXX_BENCH_RECORD")
_serial = itertools.count()


def own_name() -> str:
    """A POSIX name of this run: its prefix, this worker's pid and a serial number."""
    return f"/{PREFIX}{os.getpid()}_{next(_serial)}"


_SYSV_KINDS = {"Semaphore": "sem", "SharedMemory": "shm", "MessageQueue": "msg"}


def own_sysv(cls, **options):
    """Creates a System V object with a free key from the run's block and records it."""
    for _ in range(1000):
        key = KEY_FIRST + secrets.randbelow(KEY_COUNT)
        try:
            obj = cls(key, sysv_ipc.IPC_CREX, **options)
        except sysv_ipc.ExistentialError:
            continue  # someone else's key: leave it and try another
        if RECORD:
            # One short O_APPEND write per line: whole lines even with concurrent workers.
            with open(RECORD, "a") as record:
                record.write(f"{_SYSV_KINDS[cls.__name__]} {key} {obj.id}\n")
        return obj
    raise RuntimeError(f"no free System V key in {KEY_FIRST}+{KEY_COUNT}")


# A case returns (step, cleanup): step(n) performs n operations.
Case = Callable[[], "tuple[Callable[[int], None], Callable[[], None]]"]
CASES: dict[str, Case] = {}


def case(name: str):
    def register(factory: Case) -> Case:
        CASES[name] = factory
        return factory

    return register


def timed(step: Callable[[int], None], seconds: float) -> float:
    """Nanoseconds per operation: calibrate a batch size, then time whole batches."""
    batch = 1
    while True:
        started = time.perf_counter_ns()
        step(batch)
        elapsed = time.perf_counter_ns() - started
        if elapsed > 20_000_000 or batch >= 1 << 26:
            break
        batch *= 4
    deadline = time.perf_counter() + seconds
    best = elapsed / batch
    while time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        step(batch)
        best = min(best, (time.perf_counter_ns() - started) / batch)
    return best


# ---- posix_ipc ----------------------------------------------------------------------------


def posix_semaphore(initial: int):
    semaphore = posix_ipc.Semaphore(own_name(), posix_ipc.O_CREX, initial_value=initial)

    def cleanup() -> None:
        semaphore.unlink()
        semaphore.close()

    return semaphore, cleanup


@case("posix_sem_acquire_release")
def _():
    semaphore, cleanup = posix_semaphore(1)
    acquire, release = semaphore.acquire, semaphore.release

    def step(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    return step, cleanup


@case("robust_lock_acquire_release")
def _():
    """ipcxx.RobustLock acquire()+release() (an ipcxx extension, crash-robust); without it
    (upstream) the best it offers for a lock across processes, a POSIX semaphore."""
    if not hasattr(posix_ipc.MessageQueue, "receive_into"):  # upstream's posix_ipc
        semaphore, cleanup = posix_semaphore(1)
        acquire, release = semaphore.acquire, semaphore.release
    else:
        import ipcxx

        lock = ipcxx.RobustLock(own_name(), create=True)
        acquire, release = lock.acquire, lock.release

        def cleanup() -> None:
            lock.unlink()
            lock.close()

    def step(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    return step, cleanup


@case("robust_lock_vs_sysv_undo_acquire_release")
def _():
    """ipcxx.RobustLock acquire()+release() against upstream's other lock that survives its
    holder's death: a System V semaphore with undo=True (SEM_UNDO: the kernel gives the value
    back when the holder exits). Same ipcxx side as robust_lock_acquire_release."""
    if not hasattr(posix_ipc.MessageQueue, "receive_into"):  # upstream's posix_ipc
        semaphore = own_sysv(sysv_ipc.Semaphore, initial_value=1)
        semaphore.undo = True
        acquire, release, cleanup = semaphore.acquire, semaphore.release, semaphore.remove
    else:
        import ipcxx

        lock = ipcxx.RobustLock(own_name(), create=True)
        acquire, release = lock.acquire, lock.release

        def cleanup() -> None:
            lock.unlink()
            lock.close()

    def step(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    return step, cleanup


@case("posix_sem_acquire0_release")
def _():
    semaphore, cleanup = posix_semaphore(1)
    acquire, release = semaphore.acquire, semaphore.release

    def step(n: int) -> None:
        for _ in range(n):
            acquire(0)
            release()

    return step, cleanup


@case("posix_sem_acquire0_busy")
def _():
    semaphore, cleanup = posix_semaphore(0)
    acquire, busy = semaphore.acquire, posix_ipc.BusyError

    def step(n: int) -> None:
        for _ in range(n):
            try:
                acquire(0)
            except busy:
                pass

    return step, cleanup


@case("posix_sem_acquire_release_busy_thread")
def _():
    semaphore, cleanup_semaphore = posix_semaphore(1)
    acquire, release = semaphore.acquire, semaphore.release
    running = [True]

    def spin() -> None:
        while running[0]:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()

    def step(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    def cleanup() -> None:
        running[0] = False
        spinner.join()
        cleanup_semaphore()

    return step, cleanup


def posix_queue_case(size: int):
    def factory():
        queue = posix_ipc.MessageQueue(
            own_name(), posix_ipc.O_CREX, max_messages=8, max_message_size=max(size, 16)
        )
        message = b"x" * size
        send, receive = queue.send, queue.receive

        def step(n: int) -> None:
            for _ in range(n):
                send(message)
                receive()

        def cleanup() -> None:
            queue.unlink()
            queue.close()

        return step, cleanup

    return factory


for _size, _label in ((16, "16B"), (1024, "1KiB"), (8192, "8KiB"), (65536, "64KiB")):
    case(f"posix_mq_send_receive_{_label}")(posix_queue_case(_size))


def best_receive(queue, size: int) -> Callable[[], object]:
    """receive_into() (an ipcxx extension) into one reused buffer; a module without it
    (upstream) gets receive(), the best it offers for the same work."""
    if not hasattr(queue, "receive_into"):
        return queue.receive
    buffer = bytearray(max(size, 16))
    receive_into = queue.receive_into
    return lambda: receive_into(buffer)


def posix_queue_into_case(size: int):
    def factory():
        queue = posix_ipc.MessageQueue(
            own_name(), posix_ipc.O_CREX, max_messages=8, max_message_size=max(size, 16)
        )
        message = b"x" * size
        send, receive = queue.send, best_receive(queue, size)

        def step(n: int) -> None:
            for _ in range(n):
                send(message)
                receive()

        def cleanup() -> None:
            queue.unlink()
            queue.close()

        return step, cleanup

    return factory


case("posix_mq_send_receive_into_8KiB")(posix_queue_into_case(8192))


@case("posix_shm_create_map_write_unlink_1MiB")
def _():
    data = b"y" * MIB
    name = own_name()

    def step(n: int) -> None:
        for _ in range(n):
            memory = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=MIB)
            view = mmap.mmap(memory.fd, MIB)
            view[:] = data
            view.close()
            memory.close_fd()
            memory.unlink()

    return step, lambda: None


@case("posix_shm_memoryview_write_read_1MiB")
def _():
    """The segment as a buffer (an ipcxx extension); without it (upstream) an mmap of `fd`."""
    memory = posix_ipc.SharedMemory(own_name(), posix_ipc.O_CREX, size=MIB)
    try:
        view = memoryview(memory)
        mapped = None
    except TypeError:
        mapped = mmap.mmap(memory.fd, MIB)
        view = memoryview(mapped)
    data = b"z" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            view[:] = data
            bytes(view)

    def cleanup() -> None:
        view.release()
        if mapped is not None:
            mapped.close()
        memory.close_fd()
        memory.unlink()

    return step, cleanup


@case("posix_shm_mapped_write_read_1MiB")
def _():
    memory = posix_ipc.SharedMemory(own_name(), posix_ipc.O_CREX, size=MIB)
    view = mmap.mmap(memory.fd, MIB)
    data = b"z" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            view[:] = data
            bytes(view)

    def cleanup() -> None:
        view.close()
        memory.close_fd()
        memory.unlink()

    return step, cleanup


def pin_to(cpu: int) -> None:
    """Ping-pong latency depends on whether both processes share a core: pin them to two
    different cores (when there are two) so every run measures the same thing."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[cpu]})


def ping_pong(make_pair, serve, request):
    """A forked child answers each request; one operation is one direction of a round trip."""
    first, second, cleanup = make_pair()
    allowed = os.sched_getaffinity(0)
    child = os.fork()
    if child == 0:
        try:
            pin_to(1)
            serve(first, second)
        finally:
            os._exit(0)
    pin_to(0)

    def step(n: int) -> None:
        for _ in range(n // 2 + 1):
            request(first, second)

    def finish() -> None:
        os.kill(child, 9)
        os.waitpid(child, 0)
        os.sched_setaffinity(0, allowed)
        cleanup()

    return step, finish


@case("posix_pingpong_semaphores_one_way")
def _():
    def make_pair():
        a, clean_a = posix_semaphore(0)
        b, clean_b = posix_semaphore(0)
        return a, b, lambda: (clean_a(), clean_b())

    def serve(a, b):
        while True:
            a.acquire()
            b.release()

    def request(a, b):
        a.release()
        b.acquire()

    return ping_pong(make_pair, serve, request)


@case("posix_pingpong_queues_one_way")
def _():
    def make_pair():
        a = posix_ipc.MessageQueue(
            own_name(), posix_ipc.O_CREX, max_messages=2, max_message_size=16
        )
        b = posix_ipc.MessageQueue(
            own_name(), posix_ipc.O_CREX, max_messages=2, max_message_size=16
        )

        def cleanup():
            for queue in (a, b):
                queue.unlink()
                queue.close()

        return a, b, cleanup

    def serve(a, b):
        while True:
            b.send(a.receive()[0])

    def request(a, b):
        a.send(b"ping")
        b.receive()

    return ping_pong(make_pair, serve, request)


def contention(processes: int):
    def factory():
        semaphore, cleanup = posix_semaphore(1)
        name = semaphore.name

        def step(n: int) -> None:
            per_process = max(n // processes, 1)
            children = []
            for _ in range(processes - 1):
                pid = os.fork()
                if pid == 0:
                    other = posix_ipc.Semaphore(name)
                    for _ in range(per_process):
                        other.acquire()
                        other.release()
                    os._exit(0)
                children.append(pid)
            for _ in range(per_process):
                semaphore.acquire()
                semaphore.release()
            for pid in children:
                os.waitpid(pid, 0)

        return step, cleanup

    return factory


for _count in (1, 2, 4, 8):
    case(f"posix_sem_contention_{_count}_processes")(contention(_count))


# ---- sysv_ipc -----------------------------------------------------------------------------


@case("sysv_sem_acquire_release")
def _():
    semaphore = own_sysv(sysv_ipc.Semaphore, initial_value=1)
    acquire, release = semaphore.acquire, semaphore.release

    def step(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    return step, semaphore.remove


@case("sysv_sem_acquire_timeout0_busy")
def _():
    semaphore = own_sysv(sysv_ipc.Semaphore)
    acquire, busy = semaphore.acquire, sysv_ipc.BusyError

    def step(n: int) -> None:
        for _ in range(n):
            try:
                acquire(timeout=0)
            except busy:
                pass

    return step, semaphore.remove


@case("sysv_sem_block_false_busy")
def _():
    semaphore = own_sysv(sysv_ipc.Semaphore)
    semaphore.block = False
    acquire, busy = semaphore.acquire, sysv_ipc.BusyError

    def step(n: int) -> None:
        for _ in range(n):
            try:
                acquire()
            except busy:
                pass

    return step, semaphore.remove


@case("sysv_semset_op_2_vs_2_semops")
def _():
    """Take and give back two semaphores: one atomic SemaphoreSet.op each way (an ipcxx
    extension); without it (upstream) acquire() and release() on two separate semaphores."""
    if not hasattr(sysv_ipc, "SemaphoreSet"):
        first = own_sysv(sysv_ipc.Semaphore, initial_value=1)
        second = own_sysv(sysv_ipc.Semaphore, initial_value=1)
        acquire_1, acquire_2 = first.acquire, second.acquire
        release_1, release_2 = first.release, second.release

        def separate(n: int) -> None:
            for _ in range(n):
                acquire_1()
                acquire_2()
                release_1()
                release_2()

        def cleanup() -> None:
            first.remove()
            second.remove()

        return separate, cleanup
    _SYSV_KINDS.setdefault("SemaphoreSet", "sem")  # recorded (and removed after a crash) as "sem"
    pair = own_sysv(sysv_ipc.SemaphoreSet, count=2, initial_value=1)
    op, take, give = pair.op, [(0, -1), (1, -1)], [(0, 1), (1, 1)]

    def atomic(n: int) -> None:
        for _ in range(n):
            op(take)
            op(give)

    return atomic, pair.remove


def sysv_queue_case(size: int):
    def factory():
        queue = own_sysv(sysv_ipc.MessageQueue, max_message_size=max(size, 16))
        message = b"x" * size
        send, receive = queue.send, queue.receive

        def step(n: int) -> None:
            for _ in range(n):
                send(message)
                receive()

        return step, queue.remove

    return factory


def sysv_queue_into_case(size: int):
    def factory():
        queue = own_sysv(sysv_ipc.MessageQueue, max_message_size=max(size, 16))
        message = b"x" * size
        send, receive = queue.send, best_receive(queue, size)

        def step(n: int) -> None:
            for _ in range(n):
                send(message)
                receive()

        return step, queue.remove

    return factory


case("sysv_mq_send_receive_into_8KiB")(sysv_queue_into_case(8192))
case("sysv_mq_send_receive_16B")(sysv_queue_case(16))
case("sysv_mq_send_receive_8KiB")(sysv_queue_case(8192))


def sysv_memory():
    memory = own_sysv(sysv_ipc.SharedMemory, size=MIB)

    def cleanup() -> None:
        memory.detach()
        memory.remove()

    return memory, cleanup


@case("sysv_shm_write_read_1MiB")
def _():
    memory, cleanup = sysv_memory()
    data = b"w" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            memory.write(data)
            memory.read()

    return step, cleanup


@case("sysv_shm_memoryview_write_read_1MiB")
def _():
    memory, cleanup = sysv_memory()
    data = b"v" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            view = memoryview(memory)
            view[:] = data
            bytes(view)
            view.release()

    return step, cleanup


def main() -> None:
    name, seconds = sys.argv[1], float(sys.argv[2])
    step, cleanup = CASES[name]()
    try:
        result = timed(step, seconds)
    finally:
        cleanup()
    print(json.dumps({"ns": result, "module": posix_ipc.__file__}))


if __name__ == "__main__":
    main()

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

import contextlib
import ctypes
import itertools
import json
import mmap
import os
import secrets
import shutil
import signal
import sys
import tempfile
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
# Which side of a row this worker measures (run.py sets it). The rows of ipcxx.Channel against an
# alternative (a POSIX queue, faster-fifo, iceoryx2, a pipe, a memcpy) run the alternative when it
# is "alternative"; every other case tells the sides apart by the module it imports.
SIDE = os.environ.get("IPCXX_BENCH_SIDE", "ipcxx")
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


# ---- ipcxx.Channel against alternatives ---------------------------------------------------
#
# Both sides of these rows run against ipcxx (and bench/.alternatives for faster-fifo and
# iceoryx2); SIDE says which one this worker measures. Two-process rows fork a child pinned to
# the second core (the parent, timed, takes the first) and talk to it over a pipe of commands.

MESSAGE_16 = b"m" * 16
BATCH = 64


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _expect(fd: int, what: bytes) -> None:
    got = _read_exact(fd, len(what))
    if got != what:
        raise RuntimeError(f"the child process failed (sent {got!r}, expected {what!r})")


def forked(child_main: Callable[[int, int], None]):
    """Forks a child pinned to the second core that runs child_main(commands, replies) (two
    pipe ends) and exits on SIGTERM or when child_main returns; pins this process to the first.
    Returns (pid, commands, replies, stop); stop() ends the child (SIGKILL only if it does not
    exit within 5 s) and restores this process's affinity."""
    commands_read, commands = os.pipe()
    replies, replies_write = os.pipe()
    allowed = os.sched_getaffinity(0)
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(commands)
            os.close(replies)
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
            pin_to(1)
            child_main(commands_read, replies_write)
            status = 0
        except SystemExit:
            status = 0
        finally:
            os._exit(status)
    os.close(commands_read)
    os.close(replies_write)
    pin_to(0)

    def stop() -> None:
        os.close(commands)  # a child reading commands sees the end of them
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)  # a serving child leaves its loop
        deadline = time.monotonic() + 5
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                break
            time.sleep(0.001)
        os.close(replies)
        os.sched_setaffinity(0, allowed)

    return child, commands, replies, stop


def stream(transport):
    """Messages per second between 2 processes: the parent (timed) sends n messages, the child
    receives them, and a step ends when the child says it has all n. transport() (in the parent,
    before the fork) returns (producer, consumer, cleanup); consumer() runs in the child, after
    the fork, producer() in the parent once the child is ready; each returns (step, close)."""
    producer, consumer, cleanup = transport()

    def child_main(commands: int, replies: int) -> None:
        consume, close = consumer()
        try:
            os.write(replies, b"r")
            while len(count := _read_exact(commands, 8)) == 8:
                consume(int.from_bytes(count, "little"))
                os.write(replies, b"k")
        finally:
            close()

    _, commands, replies, stop = forked(child_main)
    try:
        _expect(replies, b"r")
        produce, close = producer()
    except BaseException:
        stop()
        cleanup()
        raise

    def step(n: int) -> None:
        os.write(commands, n.to_bytes(8, "little"))
        produce(n)
        _expect(replies, b"k")

    def finish() -> None:
        stop()
        close()
        cleanup()

    return step, finish


def round_trips(transport):
    """One-way latency between 2 processes: half of a round trip to a child that answers each
    message. transport() (before the fork) returns (requester, server, cleanup); server() runs
    in the child and returns (serve_forever, close), requester() in the parent once the child is
    ready and returns (request, close); then the child is told to start (for iceoryx2: after
    the parent's subscriber exists)."""
    requester, server, cleanup = transport()

    def child_main(commands: int, replies: int) -> None:
        serve, close = server()
        try:
            os.write(replies, b"r")
            _expect(commands, b"g")
            serve()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            close()

    _, commands, replies, stop = forked(child_main)
    try:
        _expect(replies, b"r")
        request, close = requester()
        os.write(commands, b"g")
    except BaseException:
        stop()
        cleanup()
        raise

    def step(n: int) -> None:
        for _ in range(n // 2 + 1):
            request()

    def finish() -> None:
        stop()
        close()
        cleanup()

    return step, finish


def _send_each(send, message: bytes = MESSAGE_16) -> Callable[[int], None]:
    def produce(n: int) -> None:
        for _ in range(n):
            send(message)

    return produce


def _receive_each(receive) -> Callable[[int], None]:
    def consume(n: int) -> None:
        for _ in range(n):
            receive()

    return consume


def _nothing() -> None:
    pass


def channel_stream(
    *,
    batches: bool = False,
    size: int = 16,
    capacity: int = MIB,
    spin: float | None = None,
    receive: str | None = None,
):
    """ipcxx.Channel (default capacity and spin); the child opens it by name. With batches:
    send_many of BATCH messages, receive_many(BATCH). size: bytes per message; capacity: the
    ring; spin: a fixed spin of both sides (None: adaptive); receive: the consumer's call when
    it differs ("receive", "receive_many", "receive_many_into" into BATCH reused buffers)."""
    message = MESSAGE_16 if size == 16 else b"m" * size
    receive = receive or ("receive_many" if batches else "receive")

    def transport():
        import ipcxx

        name = own_name()
        created = ipcxx.Channel(name, create=True, capacity=capacity)
        if spin is not None:
            created.spin = spin

        def producer():
            if not batches:
                return _send_each(created.send, message), _nothing
            send_many, batch = created.send_many, [message] * BATCH

            def produce(n: int) -> None:
                full, rest = divmod(n, BATCH)
                for _ in range(full):
                    send_many(batch)
                if rest:
                    send_many(batch[:rest])

            return produce, _nothing

        def consumer():
            channel = ipcxx.Channel(name)
            if spin is not None:
                channel.spin = spin
            if receive == "receive":
                return _receive_each(channel.receive), channel.close
            if receive == "receive_many_into":
                receive_many_into = channel.receive_many_into
                buffers = [bytearray(size) for _ in range(BATCH)]

                def consume_into(n: int) -> None:
                    while n > 0:
                        n -= len(receive_many_into(buffers[: min(n, BATCH)]))

                return consume_into, channel.close
            receive_many = channel.receive_many

            def consume(n: int) -> None:
                while n > 0:
                    n -= len(receive_many(min(n, BATCH)))

            return consume, channel.close

        def cleanup() -> None:
            created.unlink()
            created.close()

        return producer, consumer, cleanup

    return stream(transport)


def posix_queue_stream():
    """ipcxx's posix_ipc.MessageQueue of 16-byte messages, 10 deep (the default msg_max, what
    an unprivileged user gets), inherited by the child."""

    def transport():
        queue = posix_ipc.MessageQueue(
            own_name(), posix_ipc.O_CREX, max_messages=10, max_message_size=16
        )

        def cleanup() -> None:
            queue.unlink()
            queue.close()

        return (
            lambda: (_send_each(queue.send), _nothing),
            lambda: (_receive_each(queue.receive), _nothing),
            cleanup,
        )

    return stream(transport)


def pipe_stream():
    """os.pipe(): os.write of 16 bytes, os.read(16) (whole messages: each write is atomic)."""

    def transport():
        read_end, write_end = os.pipe()

        def produce(n: int) -> None:
            for _ in range(n):
                os.write(write_end, MESSAGE_16)

        def consume(n: int) -> None:
            for _ in range(n):
                os.read(read_end, 16)

        def cleanup() -> None:
            os.close(read_end)
            os.close(write_end)

        return lambda: (produce, _nothing), lambda: (consume, _nothing), cleanup

    return stream(transport)


def faster_fifo_stream():
    """faster_fifo.Queue (1 MiB, as the channel's default capacity): put() and get() of a 16-byte
    bytes object (pickled, as faster-fifo does)."""

    def transport():
        import faster_fifo

        queue = faster_fifo.Queue(max_size_bytes=1 << 20)
        return (
            lambda: (_send_each(queue.put), _nothing),
            lambda: (_receive_each(queue.get), _nothing),
            _nothing,
        )

    return stream(transport)


class _Iceoryx2:
    """iceoryx2 publish-subscribe of a 16-byte ctypes payload, every file named with the run's
    prefix in a private root folder (so a crashed worker's /dev/shm segments are found and
    removed by run.py), no signal handling of its own, no overflow (the publisher retries until
    delivered: nothing is lost, like every other transport here)."""

    def __init__(self) -> None:
        import iceoryx2

        self.iox2 = iceoryx2
        # This worker's own prefix (inside the run's): its files, and nobody else's, are removed.
        self.prefix = f"{PREFIX}{os.getpid()}_{next(_serial)}_"
        self.root = tempfile.mkdtemp(prefix=self.prefix)

        class Message(ctypes.Structure):
            _fields_ = [("data", ctypes.c_uint8 * 16)]

        self.message_type = Message

    def node(self):
        iox2 = self.iox2
        config = iox2.config.default()
        config.global_cfg.prefix = iox2.FileName.new(self.prefix)
        config.global_cfg.root_path = iox2.Path.new(self.root + "/")
        return (
            iox2.NodeBuilder.new()
            .config(config)
            .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
            .create(iox2.ServiceType.Ipc)
        )

    def service(self, node, which: str):
        return (
            node.service_builder(self.iox2.ServiceName.new(f"{self.prefix}/{which}"))
            .publish_subscribe(self.message_type)
            .enable_safe_overflow(False)
            .subscriber_max_buffer_size(256)
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(1)
            .open_or_create()
        )

    def publisher(self, service):
        strategy = self.iox2.BackpressureStrategy.RetryUntilDelivered
        publisher = service.publisher_builder().backpressure_strategy(strategy).create()
        send_copy, message = publisher.send_copy, self.message_type()
        return publisher, lambda: send_copy(message)

    @staticmethod
    def subscriber(service):
        """(subscriber, poll): poll() busy-polls until a sample comes, copies its 16 bytes out
        (as the other transports' receive does) and gives the sample back."""
        subscriber = service.subscriber_builder().buffer_size(256).create()
        receive, string_at = subscriber.receive, ctypes.string_at

        def poll() -> bytes:
            while (sample := receive()) is None:
                pass
            data = string_at(sample.payload_ptr, 16)
            sample.delete()
            return data

        return subscriber, poll

    def cleanup(self) -> None:
        """Removes the root folder and what iceoryx2 keeps in /dev/shm under this prefix (a
        global management segment outlives the nodes)."""
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            for entry in os.listdir("/dev/shm"):
                if entry.startswith(self.prefix):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join("/dev/shm", entry))


def iceoryx2_stream():
    def transport():
        ice = _Iceoryx2()
        # The parent's node and ports are created after the fork (a Rust node is not carried
        # over a fork) and after the child's, so the publisher connects to the subscriber.
        kept: list = []

        def consumer():
            node = ice.node()
            service = ice.service(node, "stream")
            subscriber, poll = ice.subscriber(service)
            own = [node, service, subscriber]

            def close() -> None:
                subscriber.delete()
                own.clear()  # drops the node: its files go

            return _receive_each(poll), close

        def producer():
            node = ice.node()
            service = ice.service(node, "stream")
            publisher, send = ice.publisher(service)
            kept[:] = [node, service, publisher]

            def produce(n: int) -> None:
                for _ in range(n):
                    send()

            return produce, publisher.delete

        def cleanup() -> None:
            kept.clear()
            ice.cleanup()

        return producer, consumer, cleanup

    return stream(transport)


def channel_round_trips(spin: float | None):
    def transport():
        import ipcxx

        names = own_name(), own_name()
        created = [ipcxx.Channel(name, create=True) for name in names]

        def server():
            a, b = (ipcxx.Channel(name) for name in names)
            if spin is not None:
                a.spin = b.spin = spin
            receive, send = a.receive, b.send

            def serve() -> None:
                while True:
                    send(receive())

            return serve, lambda: (a.close(), b.close())

        def requester():
            a, b = created
            if spin is not None:
                a.spin = b.spin = spin
            send, receive = a.send, b.receive

            def request() -> None:
                send(MESSAGE_16)
                receive()

            return request, _nothing

        def cleanup() -> None:
            for channel in created:
                channel.unlink()
                channel.close()

        return requester, server, cleanup

    return round_trips(transport)


def posix_queue_round_trips():
    """As posix_pingpong_queues_one_way: two ipcxx POSIX queues, 2 deep."""

    def transport():
        a, b = (
            posix_ipc.MessageQueue(
                own_name(), posix_ipc.O_CREX, max_messages=2, max_message_size=16
            )
            for _ in range(2)
        )

        def server():
            def serve() -> None:
                while True:
                    b.send(a.receive()[0])

            return serve, _nothing

        def requester():
            def request() -> None:
                a.send(MESSAGE_16)
                b.receive()

            return request, _nothing

        def cleanup() -> None:
            for queue in (a, b):
                queue.unlink()
                queue.close()

        return requester, server, cleanup

    return round_trips(transport)


def iceoryx2_round_trips():
    """iceoryx2 publish-subscribe both ways, both ends busy-polling their subscriber (its lowest
    latency; it has no blocking receive on a publish-subscribe port)."""

    def transport():
        ice = _Iceoryx2()
        kept: list = []

        def server():
            node = ice.node()
            requests, answers = ice.service(node, "a"), ice.service(node, "b")
            subscriber, poll = ice.subscriber(requests)
            publisher, send = ice.publisher(answers)
            own = [node, requests, answers, publisher, subscriber]

            def serve() -> None:
                publisher.update_connections()  # the parent's subscriber exists now
                while True:
                    poll()
                    send()

            def close() -> None:
                publisher.delete()
                subscriber.delete()
                own.clear()

            return serve, close

        def requester():
            node = ice.node()
            requests, answers = ice.service(node, "a"), ice.service(node, "b")
            publisher, send = ice.publisher(requests)
            subscriber, poll = ice.subscriber(answers)
            kept[:] = [node, requests, answers, publisher, subscriber]

            def request() -> None:
                send()
                poll()

            def close() -> None:
                publisher.delete()
                subscriber.delete()

            return request, close

        def cleanup() -> None:
            kept.clear()
            ice.cleanup()

        return requester, server, cleanup

    return round_trips(transport)


def channel_send_receive():
    import ipcxx

    channel = ipcxx.Channel(own_name(), create=True)
    send, receive = channel.send, channel.receive

    def step(n: int) -> None:
        for _ in range(n):
            send(MESSAGE_16)
            receive()

    def cleanup() -> None:
        channel.unlink()
        channel.close()

    return step, cleanup


CHANNEL_1MIB_CAPACITY = 8 * MIB  # the largest message is capacity / 2 - 16


def channel_reserve_peek():
    """One process: copy 1 MiB from a bytes object into reserve()'s view (committed on exit),
    then peek() at it (a read-only view of the ring, consumed on exit: no copy out)."""
    import ipcxx

    channel = ipcxx.Channel(own_name(), create=True, capacity=CHANNEL_1MIB_CAPACITY)
    reserve, peek, data = channel.reserve, channel.peek, b"c" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            with reserve(MIB) as view:
                view[:] = data
            with peek():
                pass

    def cleanup() -> None:
        channel.unlink()
        channel.close()

    return step, cleanup


def memcpy_1mib():
    """One 1 MiB copy, the same way (a memoryview slice assignment from a bytes object)."""
    target, data = memoryview(bytearray(MIB)), b"c" * MIB

    def step(n: int) -> None:
        for _ in range(n):
            target[:] = data

    return step, target.release


def against(ipcxx_side: Case, alternative: Case) -> Case:
    """A case whose other side is an alternative, not upstream (see SIDE)."""
    return lambda: (alternative if SIDE == "alternative" else ipcxx_side)()


case("channel_send_receive_16B_vs_posix_mq")(against(channel_send_receive, posix_queue_case(16)))
case("channel_2proc_16B_vs_posix_mq")(against(channel_stream, posix_queue_stream))
case("channel_2proc_16B_vs_faster_fifo")(against(channel_stream, faster_fifo_stream))
case("channel_2proc_16B_vs_iceoryx2")(against(channel_stream, iceoryx2_stream))
case("channel_2proc_16B_vs_pipe")(against(channel_stream, pipe_stream))
case("channel_2proc_batch64_vs_posix_mq")(
    against(lambda: channel_stream(batches=True), posix_queue_stream)
)
# The cliffs of issue 17 item 7: 64 KiB messages in batches with the adaptive spin against a
# fixed 50 µs one; 1 MiB messages (8 MiB ring) taken by receive_many or receive_many_into
# against receive().
case("channel_2proc_64KiB_batch64_adaptive_vs_fixed_spin")(
    against(
        lambda: channel_stream(batches=True, size=64 * 1024),
        lambda: channel_stream(batches=True, size=64 * 1024, spin=50e-6),
    )
)
case("channel_2proc_1MiB_receive_many_vs_receive")(
    against(
        lambda: channel_stream(size=MIB, capacity=CHANNEL_1MIB_CAPACITY, receive="receive_many"),
        lambda: channel_stream(size=MIB, capacity=CHANNEL_1MIB_CAPACITY),
    )
)
case("channel_2proc_1MiB_receive_many_into_vs_receive")(
    against(
        lambda: channel_stream(
            size=MIB, capacity=CHANNEL_1MIB_CAPACITY, receive="receive_many_into"
        ),
        lambda: channel_stream(size=MIB, capacity=CHANNEL_1MIB_CAPACITY),
    )
)
case("channel_pingpong_one_way_vs_iceoryx2_busy")(
    against(lambda: channel_round_trips(None), iceoryx2_round_trips)
)
case("channel_pingpong_spin0_one_way_vs_posix_mq")(
    against(lambda: channel_round_trips(0.0), posix_queue_round_trips)
)
case("channel_reserve_peek_1MiB_vs_memcpy")(against(channel_reserve_peek, memcpy_1mib))


def cpp_side():
    raise SystemExit("the ipcxx side of this row is cpp/bench/channel_bench.cpp (run.py runs it)")


# Their ipcxx side is C++ (run.py's CPP_CASES); the other is this, the Python binding.
case("channel_2proc_16B_cpp_vs_python")(against(cpp_side, channel_stream))
case("channel_2proc_16B_cpp_guards_vs_python")(against(cpp_side, channel_stream))


# ---- ipcxx.Queue against alternatives (issue 18): rows of their own module ----------------
import queue_cases  # noqa: E402 - bench/ is this script's folder

queue_cases.register(sys.modules[__name__])


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

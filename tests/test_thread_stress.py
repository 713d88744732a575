"""16 threads hammer one object of each kind while another thread closes or removes it (and
re-inits it where the API allows): every thread ends with success or the documented exception,
never a crash, a hang or a wrong result (docs/free-threading.md).

Each kind runs in a child interpreter (this file run as a script), so a crash fails one test
instead of the session, and a hang is bounded by the child's deadline and the parent's timeout.
Threads start together on a threading.Barrier; the closer acts after every worker has done
some operations (an event count, not a sleep). The switch interval is lowered so that the GIL
changes hands often on this (GIL) build."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time

import pytest

THREADS = 16
KINDS = [
    "posix_semaphore",
    "posix_message_queue",
    "posix_shared_memory",
    "sysv_semaphore",
    "sysv_semaphore_set",
    "sysv_shared_memory",
    "sysv_message_queue",
    "robust_lock",
    "channel",
    "channel_views",
    "async_waiters",
    "posix_notification",
]


# ---- the child: one kind, `rounds` rounds of THREADS workers against one closer --------------


class Round:
    """The shared bookkeeping of one round: workers count their operations and the
    exceptions they met; anything not in `allowed` is a failure."""

    def __init__(self, allowed: tuple[type[BaseException], ...]) -> None:
        self.allowed = allowed
        self.barrier = threading.Barrier(THREADS + 1)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.operations = 0
        self.expected = 0
        self.failures: list[str] = []
        self.started = threading.Semaphore(0)

    def run(self, worker, closer, deadline: float) -> None:
        threads = [threading.Thread(target=self._work, args=(worker, i)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            self.barrier.wait(timeout=30)
            for _ in range(THREADS):  # every worker did some operations before the close
                if not self.started.acquire(timeout=max(0.1, deadline - time.monotonic())):
                    self.failures.append("a worker never completed its first operations")
                    break
            closer()
        except Exception as error:  # noqa: BLE001 - reported, not swallowed
            self.failures.append(f"closer: {type(error).__name__}: {error}")
        finally:
            self.stop.set()
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.failures.append("a worker hung")

    def add_to(self, report: dict) -> None:
        """Adds this round's counts to a kind's report."""
        report["failures"] += self.failures
        report["operations"] += self.operations
        report["expected_exceptions"] += self.expected

    def _work(self, worker, index: int) -> None:
        try:
            self.barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            self.failures.append("barrier broken")
            return
        done = 0
        signalled = False
        while not self.stop.is_set():
            try:
                worker(index)
            except self.allowed:
                with self.lock:
                    self.expected += 1
            except Exception as error:  # noqa: BLE001 - anything else is the failure we seek
                self.failures.append(f"worker: {type(error).__name__}: {error}")
                break
            done += 1
            if done == 20 and not signalled:
                self.started.release()
                signalled = True
        if not signalled:
            self.started.release()
        with self.lock:
            self.operations += done


def _posix_name() -> str:
    # The parent removes whatever carries its prefix if this child dies (a crash is the
    # failure the test looks for, and must not leave objects behind).
    return f"/{os.environ['IPCXX_STRESS_PREFIX']}{os.urandom(4).hex()}"


def _note(made: list[int], ident: int) -> None:
    """Records a System V id for this child's cleanup and for the parent's (stdout)."""
    made.append(ident)
    print(f"made {ident}", flush=True)


def posix_semaphore(rounds: int, deadline: float, report: dict) -> None:
    import posix_ipc

    allowed = (posix_ipc.ExistentialError, posix_ipc.BusyError)
    name = _posix_name()
    probe = posix_ipc.Semaphore(name, posix_ipc.O_CREX, initial_value=4)
    try:

        def one_round() -> None:
            sem = posix_ipc.Semaphore(name)
            held = [0] * THREADS
            state = Round(allowed)

            def worker(i: int) -> None:
                sem.acquire(0.01)
                held[i] += 1
                sem.release()
                held[i] -= 1

            def closer() -> None:
                for _ in range(3):
                    sem.close()
                    sem.__init__(name)  # re-init: the same semaphore through a new handle
                sem.close()

            state.run(worker, closer, deadline)
            state.add_to(report)
            # Conservation: what a worker acquired and could not release (closed between the
            # two) is missing from the value; nothing else may be.
            lost = sum(held)
            if probe.value != 4 - lost:
                report["failures"].append(f"value {probe.value}, expected {4 - lost}")
            for _ in range(lost):
                probe.release()

        for _ in range(rounds):
            one_round()
    finally:
        probe.unlink()
        probe.close()


def posix_message_queue(rounds: int, deadline: float, report: dict) -> None:
    import posix_ipc

    allowed = (posix_ipc.ExistentialError, posix_ipc.BusyError)
    name = _posix_name()
    probe = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=8, max_message_size=64)
    try:

        def one_round() -> None:
            queue = posix_ipc.MessageQueue(name)
            sent = [0] * THREADS
            received = [0] * THREADS
            into = [bytearray(64) for _ in range(THREADS)]
            state = Round(allowed)

            def worker(i: int) -> None:
                queue.send(b"m%02d" % i, 0)
                sent[i] += 1
                if i % 2:
                    message, _ = queue.receive(0)
                else:
                    size, _ = queue.receive_into(into[i], 0)
                    message = bytes(into[i][:size])
                received[i] += 1
                if len(message) != 3 or message[:1] != b"m" or int(message[1:]) >= THREADS:
                    state.failures.append(f"corrupt message {message!r}")

            def closer() -> None:
                for _ in range(3):
                    queue.close()
                    queue.__init__(name)
                queue.close()

            state.run(worker, closer, deadline)
            state.add_to(report)
            left = sum(sent) - sum(received)
            if probe.current_messages != left:
                report["failures"].append(f"{probe.current_messages} queued, expected {left}")
            while probe.current_messages:
                probe.receive(0)

        for _ in range(rounds):
            one_round()
    finally:
        probe.unlink()
        probe.close()


def posix_shared_memory(rounds: int, deadline: float, report: dict) -> None:
    import mmap

    import posix_ipc

    allowed = (posix_ipc.ExistentialError, BufferError, ValueError, OSError)
    name = _posix_name()
    size = THREADS * 64
    probe = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=size)
    try:

        def one_round() -> None:
            memory = posix_ipc.SharedMemory(name)
            state = Round(allowed)

            def worker(i: int) -> None:
                pattern = bytes([i + 1]) * 64
                with memoryview(memory) as view:
                    view[i * 64 : (i + 1) * 64] = pattern
                    if view[i * 64 : (i + 1) * 64] != pattern:
                        state.failures.append("view read back another thread's bytes")
                fd = memory.fd
                if fd < 0:
                    raise ValueError("closed")  # mmap(-1) would map anonymous memory
                with mmap.mmap(fd, size) as mapped:
                    if mapped[i * 64 : (i + 1) * 64] != pattern:
                        state.failures.append("mmap read back another thread's bytes")

            def closer() -> None:
                for _ in range(3):
                    memory.close_fd()
                    memory.__init__(name)
                memory.close_fd()

            state.run(worker, closer, deadline)
            state.add_to(report)

        for _ in range(rounds):
            one_round()
    finally:
        probe.unlink()
        probe.close_fd()


def _sysv_key() -> int:
    return int.from_bytes(os.urandom(3), "big") + 0x49500000


def sysv_semaphore(rounds: int, deadline: float, report: dict) -> None:
    import sysv_ipc

    allowed = (sysv_ipc.ExistentialError, sysv_ipc.BusyError)

    def one_round() -> None:
        sem = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=4)
        made: list[int] = []
        _note(made, sem.id)
        state = Round(allowed)

        def worker(_: int) -> None:
            sem.acquire(0.01)
            sem.release()

        def closer() -> None:
            for _ in range(3):
                sem.remove()
                key = _sysv_key()
                sem.__init__(key, sysv_ipc.IPC_CREX, initial_value=4)  # re-init: a new one
                _note(made, sem.id)
            sem.remove()

        try:
            state.run(worker, closer, deadline)
        finally:
            _remove_ids(sysv_ipc.Semaphore, made)
        state.add_to(report)

    for _ in range(rounds):
        one_round()


def sysv_semaphore_set(rounds: int, deadline: float, report: dict) -> None:
    import sysv_ipc

    allowed = (sysv_ipc.ExistentialError, sysv_ipc.BusyError)

    def one_round() -> None:
        members = sysv_ipc.SemaphoreSet(None, sysv_ipc.IPC_CREX, count=2, initial_value=4)
        made: list[int] = []
        _note(made, members.id)
        state = Round(allowed)

        def worker(i: int) -> None:
            members.op([(0, -1), (1, -1)], timeout=0.01, undo=bool(i % 2))
            members.op([(0, 1), (1, 1)], undo=bool(i % 2))
            values = members.values
            if values[0] != values[1]:  # both members always move together (atomic op)
                state.failures.append(f"values diverged: {values}")

        def closer() -> None:
            for _ in range(3):
                members.remove()
                members.__init__(_sysv_key(), sysv_ipc.IPC_CREX, count=2, initial_value=4)
                _note(made, members.id)
            members.remove()

        try:
            state.run(worker, closer, deadline)
        finally:
            _remove_ids(sysv_ipc.SemaphoreSet, made)
        state.add_to(report)

    for _ in range(rounds):
        one_round()


def sysv_shared_memory(rounds: int, deadline: float, report: dict) -> None:
    import mmap

    import sysv_ipc

    # ValueError: attach() to a segment the closer removed and the kernel destroyed (EINVAL,
    # upstream's mapping).
    allowed = (sysv_ipc.ExistentialError, sysv_ipc.NotAttachedError, ValueError)
    size = THREADS * 64

    def one_round() -> None:
        memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=size)
        made: list[int] = []
        _note(made, memory.id)
        state = Round(allowed)

        def worker(i: int) -> None:
            pattern = bytes([i + 1]) * 64
            step = i % 4
            if step == 0:
                segment = memory.id
                memory.write(pattern, i * 64)
                # The closer may have re-initialised the object onto a new segment in between.
                if memory.read(64, i * 64) != pattern and memory.id == segment:
                    state.failures.append("read back another thread's bytes")
            elif step == 1:
                with memoryview(memory) as view:
                    view[i * 64 : (i + 1) * 64] = pattern
                    if view[i * 64 : (i + 1) * 64] != pattern:
                        state.failures.append("view read back another thread's bytes")
            elif step == 2:
                memory.detach()
                memory.attach()
            else:
                # Not a second attach: each would stay mapped (DC-21) and run into the
                # process's map count. One read: `attached` then `address` would be two, and a
                # detach between them is not an error (0 means detached).
                address = memory.address
                if address % mmap.PAGESIZE:
                    state.failures.append(f"attached at {address:#x}, not a page boundary")

        def closer() -> None:
            for _ in range(3):
                memory.remove()
                try:
                    memory.detach()
                except sysv_ipc.NotAttachedError:
                    pass  # a worker detached it first
                memory.__init__(None, sysv_ipc.IPC_CREX, size=size)
                _note(made, memory.id)
            memory.remove()

        try:
            state.run(worker, closer, deadline)
        finally:
            _remove_ids(sysv_ipc.SharedMemory, made)
        state.add_to(report)

    for _ in range(rounds):
        one_round()


def sysv_message_queue(rounds: int, deadline: float, report: dict) -> None:
    import sysv_ipc

    allowed = (sysv_ipc.ExistentialError, sysv_ipc.BusyError)

    def one_round() -> None:
        queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=64)
        made: list[int] = []
        _note(made, queue.id)
        into = [bytearray(64) for _ in range(THREADS)]
        state = Round(allowed)

        def worker(i: int) -> None:
            try:
                queue.send(b"m%02d" % i, block=False, type=i + 1)
            except OSError as error:
                # send() to a removed queue is OSError(EINVAL), as upstream (sysv DC-24).
                if type(error) is not OSError or error.errno != errno.EINVAL:
                    raise
                raise sysv_ipc.ExistentialError("removed") from error
            if i % 2:
                message, kind = queue.receive(block=False)
            else:
                size, kind = queue.receive_into(into[i], block=False)
                message = bytes(into[i][:size])
            if message != b"m%02d" % (kind - 1):
                state.failures.append(f"message {message!r} of type {kind}")

        def closer() -> None:
            for _ in range(3):
                queue.remove()
                queue.__init__(None, sysv_ipc.IPC_CREX, max_message_size=64)
                _note(made, queue.id)
            queue.remove()

        try:
            state.run(worker, closer, deadline)
        finally:
            _remove_ids(sysv_ipc.MessageQueue, made)
        state.add_to(report)

    for _ in range(rounds):
        one_round()


def robust_lock(rounds: int, deadline: float, report: dict) -> None:
    import ipcxx

    # ValueError: closed; RuntimeError: close() refused while a thread holds or waits.
    allowed = (ValueError, RuntimeError)

    def one_round() -> None:
        name = _posix_name()
        lock = ipcxx.RobustLock(name, create=True)
        inside = [0]
        entered = [0] * THREADS

        state = Round((ValueError,))

        def worker(i: int) -> None:
            if not lock.acquire(timeout=0.01):
                return
            try:
                seen = inside[0]
                inside[0] = seen + 1  # a lost update here would mean two holders at once
                entered[i] += 1
            finally:
                lock.release()

        def closer() -> None:
            # close() refuses while any thread holds or waits (RuntimeError, documented):
            # under 16 hammering threads it may never get its moment, so it tries a bounded
            # number of times; the round then closes it once the workers stopped.
            for _ in range(2000):
                try:
                    lock.close()
                    return
                except allowed:
                    continue

        try:
            state.run(worker, closer, deadline)
            lock.close()  # idempotent; must succeed with no thread holding or waiting
            if not lock.closed:
                state.failures.append("close() did not close an idle lock")
        finally:
            ipcxx.unlink_robust_lock(name)
        if inside[0] != sum(entered):
            state.failures.append(f"mutual exclusion: {inside[0]} != {sum(entered)}")
        state.add_to(report)

    for _ in range(rounds):
        one_round()


def channel(rounds: int, deadline: float, report: dict) -> None:
    import ipcxx

    # ValueError('the Channel is closed'): the closer closed the object between two calls
    # (documented); TimeoutError: timeout=0 met a full or empty ring.
    allowed = (ValueError, TimeoutError)
    name = _posix_name()
    probe = ipcxx.Channel(name, create=True, capacity=1 << 16)
    try:

        def one_round() -> None:
            chan = ipcxx.Channel(name)
            sent: list[list[bytes]] = [[] for _ in range(THREADS)]
            received: list[list[bytes]] = [[] for _ in range(THREADS)]
            counters = [0] * THREADS  # per thread: messages made
            steps = [0] * THREADS  # per thread: operations tried
            # Reservations published for another thread to exit as well: a view finished by
            # two threads must still commit once.
            shared: list = []
            state = Round(allowed)

            def payload(i: int) -> bytes:
                counters[i] += 1
                return b"c%02d-%07d" % (i, counters[i])

            def worker(i: int) -> None:
                step = steps[i] % 5
                steps[i] += 1
                if step == 0:
                    message = payload(i)
                    chan.send(message, timeout=0)
                    sent[i].append(message)
                elif step == 1:
                    received[i].append(chan.receive(timeout=0))
                elif step == 2:
                    message = payload(i)
                    view = chan.reserve(len(message), timeout=0)
                    with view as mapped:
                        mapped[:] = message
                        if i % 2:
                            shared.append(view)  # another worker exits it too
                    sent[i].append(message)
                elif step == 3:
                    with chan.peek(timeout=0) as mapped:
                        received[i].append(bytes(mapped))
                else:
                    try:
                        view = shared.pop()
                    except IndexError:
                        return
                    view.__exit__(None, None, None)
                    if not view.finished:
                        state.failures.append("an exited view is not finished")

            def closer() -> None:
                for _ in range(3):
                    chan.close()
                    chan.__init__(name)  # re-open: the same ring through a new handle
                chan.close()

            state.run(worker, closer, deadline)
            leftovers: list[bytes] = []
            while True:
                try:
                    leftovers.append(probe.receive(timeout=0))
                except (TimeoutError, ipcxx.EndOfStream):  # the workers' handle was closed
                    break
            state.add_to(report)
            # Conservation: every message sent is received exactly once (by a worker or by
            # the drain), and nothing else arrives.
            out = sorted(m for per in sent for m in per)
            arrived = sorted([m for per in received for m in per] + leftovers)
            if out != arrived:
                missing = sorted(set(out) - set(arrived))[:3]
                extra = sorted(set(arrived) - set(out))[:3]
                report["failures"].append(
                    f"{len(out)} sent, {len(arrived)} received; missing {missing}, extra {extra}"
                )
            if probe.lost or probe.abandoned:
                report["failures"].append(f"lost {probe.lost}, abandoned {probe.abandoned}")

        for _ in range(rounds):
            one_round()
    finally:
        probe.unlink()
        probe.close()


def _is_open(view) -> bool:
    """Whether a ChannelView was not exited yet (its repr says "(finished)" or "(exited, ...)"
    once it was)."""
    return repr(view).endswith("bytes>")


def channel_views(rounds: int, deadline: float, report: dict) -> None:
    import ipcxx

    # ValueError: __enter__ of an exited view, or the Channel closed by the closer; BufferError:
    # an export of an exited view, or an exit that met another thread's live export (the
    # documented refusal: that reservation is discarded when the export is released);
    # TimeoutError: timeout=0 met a full or empty ring (or a reservation held by an export).
    allowed = (ValueError, BufferError, TimeoutError)
    name = _posix_name()
    probe = ipcxx.Channel(name, create=True, capacity=1 << 16)
    try:

        def one_round() -> None:
            chan = ipcxx.Channel(name)
            current: list = [None]  # the one view every worker touches
            made: list = []  # every view published
            reserved: list[bytes] = []  # written into reservations (each sent once or discarded)
            sent: list[bytes] = []  # sent with send() (each arrives once)
            arrived: list[bytes] = []  # received, drained, or read through a peek view
            steps = [0] * THREADS
            state = Round(allowed)

            def publish() -> None:
                """Worker 0: a new reservation or peek view, entered, once the last one was
                exited (finished, or held by an export)."""
                view = current[0]
                if view is not None and _is_open(view):
                    return
                steps[0] += 1
                if steps[0] % 2:
                    message = b"r%07d" % steps[0]
                    view = chan.reserve(len(message), timeout=0)
                    view.__enter__()[:] = message
                    reserved.append(message)
                else:
                    message = b"s%07d" % steps[0]
                    chan.send(message, timeout=0)
                    sent.append(message)
                    view = chan.peek(timeout=0)
                    arrived.append(bytes(view.__enter__()))  # not shared yet: this thread's
                made.append(view)
                current[0] = view

            def worker(i: int) -> None:
                if i == 0:
                    publish()
                    return
                view = current[0]
                if view is None:
                    return
                step = steps[i] % 4
                steps[i] += 1
                if step == 0:
                    if view.__exit__(None, None, None) is not False:
                        state.failures.append("an exit returned something other than False")
                    if _is_open(view):
                        state.failures.append("a view is still open after an exit returned")
                elif step == 1:
                    with memoryview(view) as mapped:  # an export racing the exits
                        if len(mapped) != view.size:
                            state.failures.append("an export of the wrong size")
                elif step == 2:
                    view.__enter__()  # the stored memoryview, or ValueError once exited
                    repr(view)
                else:
                    arrived.append(chan.receive(timeout=0))

            def closer() -> None:
                for _ in range(3):
                    chan.close()
                    chan.__init__(name)  # views keep the ring mapped
                chan.close()

            state.run(worker, closer, deadline)
            if current[0] is not None:
                try:
                    current[0].__exit__(None, None, None)
                except BufferError:
                    state.failures.append("an export outlived every worker")
            while True:
                try:
                    arrived.append(probe.receive(timeout=0))
                except TimeoutError:
                    break
            state.add_to(report)
            if not all(view.finished for view in made):
                report["failures"].append("a view is not finished after the round")
            # Conservation: each message sent arrives once; each reservation arrives once or
            # was discarded (an exit refused because of another thread's export).
            if len(set(arrived)) != len(arrived):
                report["failures"].append("a message arrived twice")
            if not set(sent) <= set(arrived):
                report["failures"].append(f"{len(set(sent) - set(arrived))} sent never arrived")
            if not set(arrived) <= set(sent) | set(reserved):
                report["failures"].append("a message arrived that nobody wrote")
            committed = len(set(arrived) & set(reserved))
            if committed + probe.abandoned - abandoned_before[0] != len(reserved):
                report["failures"].append(
                    f"{len(reserved)} reserved, {committed} arrived, "
                    f"{probe.abandoned - abandoned_before[0]} discarded"
                )
            abandoned_before[0] = probe.abandoned
            if probe.lost:
                report["failures"].append(f"lost {probe.lost}")

        abandoned_before = [0]
        for _ in range(rounds):
            one_round()
    finally:
        probe.unlink()
        probe.close()


def async_waiters(rounds: int, deadline: float, report: dict) -> None:
    import asyncio

    import posix_ipc
    from ipcxx.aio.pool import get_pool

    # BusyError: a wait's timeout expired.
    allowed = (posix_ipc.BusyError,)
    sem_name, queue_name = _posix_name(), _posix_name()
    sem = posix_ipc.Semaphore(sem_name, posix_ipc.O_CREX, initial_value=2)
    queue = posix_ipc.MessageQueue(queue_name, posix_ipc.O_CREX, max_messages=4, max_message_size=8)
    try:

        def one_round() -> None:
            # Every thread runs its own event loop; all their tasks wait on the same two objects.
            loops = [asyncio.new_event_loop() for _ in range(THREADS)]
            sent = [0] * THREADS
            received = [0] * THREADS
            state = Round(allowed)

            async def take() -> None:
                await sem.acquire_async(0.05)
                sem.release()  # no await in between: a cancellation never holds a unit

            async def pass_message(i: int) -> None:
                await queue.send_async(b"a%02d" % i, 0.05)
                sent[i] += 1
                message, _ = await queue.receive_async(0.05)
                received[i] += 1
                if len(message) != 3 or message[:1] != b"a":
                    state.failures.append(f"corrupt message {message!r}")

            async def batch(i: int) -> None:
                tasks = [asyncio.ensure_future(take()) for _ in range(3)]
                tasks.append(asyncio.ensure_future(pass_message(i)))
                await asyncio.sleep(0)
                tasks[i % 4].cancel()  # cancelled in its wait (exactly: nothing taken or sent)
                for result in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(result, (posix_ipc.BusyError, asyncio.CancelledError)):
                        continue
                    if isinstance(result, BaseException):
                        state.failures.append(f"task: {type(result).__name__}: {result}")

            def worker(i: int) -> None:
                loops[i].run_until_complete(batch(i))

            state.run(worker, lambda: None, deadline)
            if not get_pool().wait_idle(30):
                report["failures"].append("the wait pool never became idle")
            for loop in loops:
                loop.run_until_complete(asyncio.sleep(0))  # deliveries posted to it
                loop.close()
            state.add_to(report)
            if sem.value != 2:
                report["failures"].append(f"semaphore value {sem.value}, expected 2")
            left = sum(sent) - sum(received)
            if queue.current_messages != left:
                report["failures"].append(f"{queue.current_messages} queued, expected {left}")
            while queue.current_messages:
                queue.receive(0)

        for _ in range(rounds):
            one_round()
    finally:
        sem.unlink()
        sem.close()
        queue.unlink()
        queue.close()


def posix_notification(rounds: int, deadline: float, report: dict) -> None:
    import gc

    import posix_ipc

    # BusyError: an empty or full queue, or a registration that another thread's request made
    # first; ExistentialError: a call on the closed object; OSError(EBADF): a notification
    # request on it.
    allowed = (posix_ipc.ExistentialError, posix_ipc.BusyError, OSError)
    name = _posix_name()
    probe = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, max_messages=8, max_message_size=64)
    # Counted by appending to lists (one atomic call each), never under a lock: a __del__ of a
    # parameter that another thread freed can run on this thread at any point, inside such a
    # lock too (free-threaded builds free it later on its owning thread), and would deadlock.
    made: list[None] = []
    gone: list[None] = []
    ran: list[None] = []

    try:

        def one_round() -> None:
            queue = posix_ipc.MessageQueue(name)
            state = Round(allowed)

            class Parameter:
                """Counts itself; every fourth one's __del__ calls back into the queue (the
                notification lock must not be held while a dropped parameter is released)."""

                def __init__(self, i: int) -> None:
                    self.i = i
                    made.append(None)

                def __del__(self) -> None:
                    gone.append(None)
                    if self.i % 4 == 0:
                        try:
                            queue.request_notification(None)
                        except allowed:
                            pass

            def callback(parameter: Parameter) -> None:
                ran.append(None)

            def worker(i: int) -> None:
                step = i % 4
                if step == 0:
                    queue.request_notification((callback, Parameter(i)))
                elif step == 1:
                    queue.request_notification(None)
                elif step == 2:
                    queue.send(b"n%02d" % i, 0)
                else:
                    message, _ = queue.receive(0)
                    if len(message) != 3 or message[:1] != b"n":
                        state.failures.append(f"corrupt message {message!r}")

            def closer() -> None:
                for _ in range(3):
                    queue.close()
                    queue.__init__(name)
                queue.close()

            state.run(worker, closer, deadline)
            state.add_to(report)
            while probe.current_messages:
                probe.receive(0)
            # Every parameter is released once: by its callback's run, a cancel, a replacing
            # request or a close (callbacks run on notification threads: give them a moment).
            until = time.monotonic() + 10
            while time.monotonic() < until:
                gc.collect()
                if len(made) == len(gone):
                    break
                time.sleep(0.01)
            if len(made) != len(gone):
                report["failures"].append(f"parameters made {len(made)}, gone {len(gone)}")

        for _ in range(rounds):
            one_round()
        report["notifications_run"] = len(ran)
    finally:
        probe.unlink()
        probe.close()


def _remove_ids(cls, ids: list[int]) -> None:
    """Removes every object a round made, by id (the leak guard checks)."""
    import sysv_ipc

    for ident in ids:
        try:
            if cls is sysv_ipc.Semaphore:
                sysv_ipc.remove_semaphore(ident)
            elif cls is sysv_ipc.SharedMemory:
                sysv_ipc.remove_shared_memory(ident)
            elif cls is sysv_ipc.MessageQueue:
                sysv_ipc.remove_message_queue(ident)
            else:
                sysv_ipc.remove_semaphore(ident)  # a set is a semaphore id too
        except sysv_ipc.ExistentialError:
            pass


def child_main(kind: str, rounds: int, seconds: float) -> None:
    import faulthandler

    faulthandler.enable()
    # A hang dumps every thread's stack before the parent's timeout kills the child.
    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    sys.setswitchinterval(1e-5)
    report = {"kind": kind, "failures": [], "operations": 0, "expected_exceptions": 0}
    started = time.monotonic()
    globals()[kind](rounds, started + seconds, report)
    report["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(report), flush=True)


# ---- the tests ---------------------------------------------------------------------------------


def _remove_leftovers(prefix: str, output: str, kind: str) -> None:
    """After the child: removes the objects a dead child could not (its prefix, its ids)."""
    import posix_ipc
    import sysv_ipc

    for folder in ("/dev/shm", "/dev/mqueue"):
        for entry in os.listdir(folder) if os.path.isdir(folder) else ():
            if prefix not in entry:
                continue
            name = "/" + entry.removeprefix("sem.")
            for unlink in (
                posix_ipc.unlink_semaphore,
                posix_ipc.unlink_shared_memory,
                posix_ipc.unlink_message_queue,
            ):
                try:
                    unlink(name)
                except posix_ipc.ExistentialError:
                    pass
    remove = {
        "sysv_semaphore": sysv_ipc.remove_semaphore,
        "sysv_semaphore_set": sysv_ipc.remove_semaphore,
        "sysv_shared_memory": sysv_ipc.remove_shared_memory,
        "sysv_message_queue": sysv_ipc.remove_message_queue,
    }.get(kind)
    for line in output.splitlines():
        if remove and line.startswith("made "):
            try:
                remove(int(line.split()[1]))
            except sysv_ipc.ExistentialError:
                pass


@pytest.mark.parametrize("kind", KINDS)
def test_sixteen_threads_and_a_closer_end_in_success_or_documented_errors(kind, sizes):
    rounds = 40 if sizes.full else 2
    # A bound on hangs, not an expected duration (a round ends as soon as its closer is done):
    # generous, since 17 threads share 2 cores with other programs and a worker can be starved
    # for seconds before its first operations.
    seconds = 120 if sizes.full else 60
    prefix = f"ipcxx_t{os.getpid()}_stress_{os.urandom(3).hex()}_"
    output = ""
    try:
        child = subprocess.run(
            [sys.executable, __file__, kind, str(rounds), str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 90,
            env={**os.environ, "IPCXX_STRESS_PREFIX": prefix},
        )
        output = child.stdout
    finally:
        _remove_leftovers(prefix, output, kind)
    assert child.returncode == 0, f"child died ({child.returncode}):\n{child.stderr[-4000:]}"
    assert output.strip(), f"the child printed no report:\n{child.stderr[-4000:]}"
    report = json.loads(output.strip().splitlines()[-1])
    assert report["failures"] == [], report["failures"][:10]
    assert report["operations"] > rounds * THREADS, report


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))

"""The *_async methods of posix_ipc and sysv_ipc (ipcxx.aio): waits across processes,
timeouts, the bounded pool, fork, and exact cancellation under thousands of random cancels."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import random
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import posix_ipc
import sysv_ipc
from ipcxx.aio.pool import POOL_THREADS, get_pool

RUN_WORKER = (
    f"import runpy; runpy.run_path({str(Path(__file__).with_name('asyncio_workers.py'))!r}, "
    "run_name='__main__')"
)
BATCH = 16  # operations in flight per round of a churn test
Operation = Callable[[], Coroutine[Any, Any, Any]]


@pytest.fixture
def worker(spawn):
    """worker(kind, ident) starts tests/asyncio_workers.py on one object and waits until the
    child has opened it."""

    def start(kind: str, ident: object):
        child = spawn(RUN_WORKER, kind, str(ident))
        assert child.read_line() == "ready"
        return child

    return start


@pytest.fixture
def rounds(sizes) -> int:
    """Rounds of BATCH operations per churn test: about 3,000 operations quick, 40,000 full."""
    return 2500 if sizes.full else 200


@pytest.fixture
def psem(make_name, track):
    return track(posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX))


@pytest.fixture
def pmq(make_name, track):
    return track(
        posix_ipc.MessageQueue(make_name(), posix_ipc.O_CREX, max_messages=4, max_message_size=16)
    )


@pytest.fixture
def ssem(sysv):
    return sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX))


@pytest.fixture
def smq(sysv):
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    queue.max_size = 48  # a few short messages fill it, so sends wait
    return queue


def settle_pool() -> None:
    """Waits until the pool has finished every job, so that a unit a worker takes for a
    cancelled wait has been given back before the test counts."""
    assert get_pool().wait_idle(timeout=30)


async def interrupted(operation: Operation, rng: random.Random) -> tuple[str, Any]:
    """Runs `operation()` and interrupts it at a random moment, one of three ways: cancel() after
    0-3 loop iterations, asyncio.wait_for with a timeout under 2 ms, or a 5 ms wait_for (so
    that the operation's own timeout, if it has one, ends it first). Returns (outcome, result)."""
    way = rng.randrange(3)
    try:
        if way == 0:
            task = asyncio.ensure_future(operation())
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            return "done", await task
        limit = rng.uniform(0, 0.002) if way == 1 else 0.005
        return "done", await asyncio.wait_for(operation(), limit)
    except asyncio.CancelledError:
        return "cancelled", None
    except asyncio.TimeoutError:
        return "timed out", None
    except (posix_ipc.BusyError, sysv_ipc.BusyError, TimeoutError):  # ipcxx: builtin TimeoutError
        return "busy", None


def short_timeout(rng: random.Random) -> float:
    return rng.uniform(0, 0.002)


# --- each method works, and waits end when another process acts ---


def test_posix_acquire_async_returns_at_once_when_a_unit_is_there(psem):
    psem.release()
    asyncio.run(psem.acquire_async())
    assert psem.value == 0


def test_acquire_async_completes_when_another_process_releases(psem, ssem, worker):
    async def main() -> None:
        for semaphore, kind, ident in ((psem, "psem", psem.name), (ssem, "ssem", ssem.key)):
            child = worker(kind, ident)
            task = asyncio.ensure_future(semaphore.acquire_async())
            for _ in range(3):
                await asyncio.sleep(0)
            assert not task.done()
            child.send_line("release 1")
            await task
            child.send_line("end")
            assert child.read_line() == "done"
            assert semaphore.value == 0

    asyncio.run(main())


def test_sysv_acquire_async_takes_delta_and_is_a_kernel_waiter_meanwhile(ssem, worker):
    async def main() -> None:
        child = worker("ssem", ssem.key)
        task = asyncio.ensure_future(ssem.acquire_async(delta=2))
        while ssem.waiting_for_nonzero == 0:  # a pool thread is blocked in semtimedop
            await asyncio.sleep(0.001)
        child.send_line("release 1")
        child.send_line("release 2")
        await task
        child.send_line("end")
        assert child.read_line() == "done"
        assert ssem.value == 1

    asyncio.run(main())


def test_posix_receive_async_completes_when_another_process_sends(pmq, worker):
    async def main() -> None:
        child = worker("pmq", pmq.name)
        task = asyncio.ensure_future(pmq.receive_async())
        await asyncio.sleep(0)
        assert not task.done()
        child.send_line("send 7 1")
        assert await task == (b"7", 0)
        child.send_line("end")
        assert child.read_line() == "done"

    asyncio.run(main())


def test_posix_send_async_completes_when_another_process_makes_room(pmq, worker):
    async def main() -> None:
        for sequence in range(pmq.max_messages):
            await pmq.send_async(str(sequence).encode(), priority=1)
        child = worker("pmq", pmq.name)
        task = asyncio.ensure_future(pmq.send_async(b"last", priority=2))
        await asyncio.sleep(0)
        assert not task.done()
        child.send_line("receive 1")
        await task
        child.send_line("end")
        assert child.read_line() == "done 0"
        assert pmq.receive(0) == (b"last", 2)

    asyncio.run(main())


def test_sysv_receive_async_completes_when_another_process_sends(smq, worker):
    async def main() -> None:
        child = worker("smq", smq.key)
        task = asyncio.ensure_future(smq.receive_async())
        await asyncio.sleep(0)
        assert not task.done()
        child.send_line("send 5 1")
        assert await task == (b"5", 1)
        await smq.send_async(b"typed", type=9)
        assert await smq.receive_async(type=9) == (b"typed", 9)
        child.send_line("end")
        assert child.read_line() == "done"

    asyncio.run(main())


def test_sysv_send_async_completes_when_another_process_makes_room(smq, worker):
    async def main() -> None:
        sent = 0
        while True:  # fill the queue: 48 bytes
            try:
                smq.send(str(sent).encode(), block=False)
            except sysv_ipc.BusyError:
                break
            sent += 1
        child = worker("smq", smq.key)
        task = asyncio.ensure_future(smq.send_async(b"x", type=3))
        await asyncio.sleep(0)
        assert not task.done()
        child.send_line(f"receive {sent}")
        await task
        child.send_line("end")
        assert child.read_line() == "done " + " ".join(str(n) for n in range(sent))
        assert smq.receive(block=False) == (b"x", 3)

    asyncio.run(main())


# --- timeouts and arguments ---


def test_expired_timeouts_raise_the_modules_busy_error(psem, ssem, pmq):
    async def main() -> None:
        for timeout in (0, 0.01):
            with pytest.raises(posix_ipc.BusyError):
                await psem.acquire_async(timeout)
            with pytest.raises(sysv_ipc.BusyError):
                await ssem.acquire_async(timeout=timeout, delta=1)
            with pytest.raises(posix_ipc.BusyError):
                await pmq.receive_async(timeout)
        for sequence in range(pmq.max_messages):
            await pmq.send_async(str(sequence).encode(), 0)
        with pytest.raises(posix_ipc.BusyError):
            await pmq.send_async(b"full", timeout=0.01)
        assert pmq.current_messages == pmq.max_messages

    asyncio.run(main())
    settle_pool()
    assert psem.value == 0 and ssem.value == 0


def test_arguments_are_checked_like_the_synchronous_methods(psem, ssem, pmq, smq):
    async def main() -> None:
        for bad in (-1, "1", float("nan")):
            with pytest.raises(TypeError, match="non-negative"):
                await psem.acquire_async(bad)
            with pytest.raises(TypeError, match="non-negative"):
                await pmq.receive_async(bad)
        with pytest.raises(ValueError):
            await ssem.acquire_async(delta=0)
        with pytest.raises(ValueError):
            await pmq.send_async(b"x", priority=-1)
        with pytest.raises(ValueError):
            await smq.send_async(b"x", type=0)

    asyncio.run(main())


def test_block_false_makes_the_async_calls_fail_at_once_like_the_sync_ones(ssem, pmq):
    ssem.block = False
    pmq.block = False

    async def main() -> None:
        with pytest.raises(sysv_ipc.BusyError):
            await ssem.acquire_async()
        with pytest.raises(posix_ipc.BusyError):
            await pmq.receive_async()

    asyncio.run(main())


def test_a_semaphore_removed_during_a_wait_raises_in_the_waiter(ssem):
    async def main() -> None:
        task = asyncio.ensure_future(ssem.acquire_async())
        while ssem.waiting_for_nonzero == 0:
            await asyncio.sleep(0.001)
        ssem.remove()
        with pytest.raises(sysv_ipc.Error):
            await task

    asyncio.run(main())


def test_the_modules_gain_only_the_methods():
    for module in (posix_ipc, sysv_ipc):
        assert not [name for name in vars(module) if "async" in name or "install" in name]
        assert module.Semaphore.acquire_async.__qualname__ == "Semaphore.acquire_async"
        assert module.MessageQueue.receive_async.__module__ == module.__name__
        assert inspect.iscoroutinefunction(module.MessageQueue.send_async)


# --- the bounded pool ---


def pool_threads() -> int:
    return sum(thread.name.startswith("ipcxx-aio-") for thread in threading.enumerate())


def test_two_hundred_pending_acquires_use_at_most_the_pools_threads(psem, ssem, worker):
    async def main() -> None:
        for semaphore, kind, ident in ((psem, "psem", psem.name), (ssem, "ssem", ssem.key)):
            others = threading.active_count() - pool_threads()
            tasks = [asyncio.ensure_future(semaphore.acquire_async()) for _ in range(200)]
            for _ in range(3):
                await asyncio.sleep(0)
            assert not any(task.done() for task in tasks)
            assert pool_threads() <= POOL_THREADS
            assert threading.active_count() <= others + POOL_THREADS
            child = worker(kind, ident)
            child.send_line("release 200")
            await asyncio.gather(*tasks)
            child.send_line("end")
            assert child.read_line() == "done"
            assert semaphore.value == 0
            assert threading.active_count() <= others + POOL_THREADS

    asyncio.run(main())


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_child_gets_a_pool_of_its_own(psem):
    async def acquire_with_local_release() -> None:
        asyncio.get_running_loop().call_soon(psem.release)
        await psem.acquire_async(timeout=10)

    asyncio.run(acquire_with_local_release())  # the parent's pool has a thread now
    assert pool_threads() >= 1
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            asyncio.run(acquire_with_local_release())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- exact cancellation, across processes ---


async def churn_acquires(
    semaphore: Any, child: Any, operations: list[Operation], rounds: int, rng: random.Random
) -> tuple[Counter[str], int]:
    """Rounds of BATCH interrupted acquires while the child releases 0-5 units per round at
    moments the parent does not control. Returns the outcomes and the units released."""
    outcomes: Counter[str] = Counter()
    released = 0
    for _ in range(rounds):
        units = rng.randrange(6)
        child.send_line(f"release {units}")
        released += units
        results = await asyncio.gather(
            *(interrupted(rng.choice(operations), rng) for _ in range(BATCH))
        )
        outcomes.update(outcome for outcome, _ in results)
    child.send_line("end")
    assert child.read_line() == "done"
    settle_pool()
    await asyncio.sleep(0)  # give-backs the pool posted to this loop run now
    return outcomes, released


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_cancelled_acquires_never_consume_a_unit(kind, psem, ssem, worker, rounds):
    rng = random.Random(os.getpid())
    semaphore = psem if kind == "posix" else ssem
    child = worker("psem", psem.name) if kind == "posix" else worker("ssem", ssem.key)
    operations: list[Operation] = [
        lambda: semaphore.acquire_async(),
        lambda: semaphore.acquire_async(short_timeout(rng)),
    ]
    given_back = get_pool().given_back
    outcomes, released = asyncio.run(churn_acquires(semaphore, child, operations, rounds, rng))
    given_back = get_pool().given_back - given_back
    print(
        f"\n{kind} acquire_async: {released} units released, outcomes {dict(outcomes)}, "
        f"{given_back} units taken for cancelled waits and given back"
    )
    assert outcomes["done"] + semaphore.value == released
    assert given_back > 0  # the late-acquire path was exercised, not only early cancels
    assert outcomes["cancelled"] + outcomes["timed out"] > rounds * BATCH // 4


def test_cancelled_sysv_acquires_give_back_with_the_same_undo_setting(ssem, spawn, rounds):
    child = spawn(RUN_WORKER, "undo-churn", str(ssem.key), str(rounds), str(os.getpid()))
    released, acquired, value_before_exit, given_back = map(int, child.read_line().split())
    assert child.finish() == 0
    # Exact while the child lived, and after its exit the kernel undid exactly its completed
    # acquires: a give-back without undo would have left an extra unit per cancelled take.
    assert acquired + value_before_exit == released
    assert ssem.value == released
    print(f"\nundo churn: {released} released, {acquired} acquired, {given_back} given back")


async def churn_receives(
    queue: Any,
    child: Any,
    operations: list[Operation],
    capacity: int,
    rounds: int,
    rng: random.Random,
    drain: Callable[[], bytes],
) -> tuple[Counter[str], list[int], list[int], int]:
    """Rounds of BATCH interrupted receives while the child sends 0-5 numbered messages per
    round (never more than the queue holds, so the child never blocks)."""
    outcomes: Counter[str] = Counter()
    received: list[int] = []
    sent = 0
    for _ in range(rounds):
        count = rng.randrange(min(6, capacity - (sent - len(received))) + 1)
        child.send_line(f"send {sent} {count}")
        sent += count
        results = await asyncio.gather(
            *(interrupted(rng.choice(operations), rng) for _ in range(BATCH))
        )
        outcomes.update(outcome for outcome, _ in results)
        received += [int(result[0]) for outcome, result in results if outcome == "done"]
    child.send_line("end")
    assert child.read_line() == "done"
    left: list[int] = []
    while True:
        try:
            left.append(int(drain()))
        except (posix_ipc.BusyError, sysv_ipc.BusyError):
            return outcomes, received, left, sent


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_cancelled_receives_never_lose_a_message(kind, pmq, smq, worker, rounds):
    rng = random.Random(os.getpid() + 1)
    if kind == "posix":
        queue, child, capacity = pmq, worker("pmq", pmq.name), pmq.max_messages
        operations: list[Operation] = [
            lambda: pmq.receive_async(),
            lambda: pmq.receive_async(short_timeout(rng)),
        ]

        def drain() -> bytes:
            return pmq.receive(0)[0]
    else:
        queue, child, capacity = smq, worker("smq", smq.key), 8
        operations = [lambda: smq.receive_async(), lambda: smq.receive_async(type=-5)]

        def drain() -> bytes:
            return smq.receive(block=False)[0]

    outcomes, received, left, sent = asyncio.run(
        churn_receives(queue, child, operations, capacity, rounds, rng, drain)
    )
    print(f"\n{kind} receive_async: {sent} sent, {len(left)} left, outcomes {dict(outcomes)}")
    assert sorted(received + left) == list(range(sent))  # each exactly once
    assert outcomes["cancelled"] + outcomes["timed out"] > rounds * BATCH // 4


async def churn_sends(
    child: Any,
    send: Callable[[bytes], Coroutine[Any, Any, None]],
    rounds: int,
    rng: random.Random,
    drain: Callable[[], bytes],
) -> tuple[Counter[str], list[int], list[int]]:
    """Rounds of BATCH interrupted sends of numbered messages into a small queue while the
    child takes 0-5 out per round (only messages known to be there, so it never blocks)."""
    outcomes: Counter[str] = Counter()
    completed: list[int] = []
    taken = 0
    next_number = 0
    for _ in range(rounds):
        count = rng.randrange(min(6, len(completed) - taken) + 1)
        child.send_line(f"receive {count}")
        taken += count
        numbers = range(next_number, next_number + BATCH)
        next_number += BATCH
        results = await asyncio.gather(
            *(interrupted(lambda n=n: send(str(n).encode()), rng) for n in numbers)
        )
        outcomes.update(outcome for outcome, _ in results)
        outcomes_by_number = zip(numbers, results, strict=True)
        completed += [n for n, (outcome, _) in outcomes_by_number if outcome == "done"]
    child.send_line("end")
    reply = child.read_line().split()
    assert reply[0] == "done"
    got = [int(number) for number in reply[1:]]
    while True:
        try:
            got.append(int(drain()))
        except (posix_ipc.BusyError, sysv_ipc.BusyError):
            return outcomes, completed, got


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_cancelled_sends_never_send_and_completed_ones_send_once(kind, pmq, smq, worker, rounds):
    rng = random.Random(os.getpid() + 2)
    if kind == "posix":
        child = worker("pmq", pmq.name)

        def send(message: bytes) -> Coroutine[Any, Any, None]:
            if rng.random() < 0.5:
                return pmq.send_async(message, short_timeout(rng))
            return pmq.send_async(message)

        def drain() -> bytes:
            return pmq.receive(0)[0]
    else:
        child = worker("smq", smq.key)

        def send(message: bytes) -> Coroutine[Any, Any, None]:
            return smq.send_async(message)

        def drain() -> bytes:
            return smq.receive(block=False)[0]

    outcomes, completed, got = asyncio.run(churn_sends(child, send, rounds, rng, drain))
    print(f"\n{kind} send_async: {len(completed)} completed, outcomes {dict(outcomes)}")
    assert sorted(got) == sorted(completed)  # what arrived is exactly what completed, once
    assert len(set(got)) == len(got)
    assert outcomes["cancelled"] + outcomes["timed out"] > rounds * BATCH // 4


# --- a loop that is stopped, then closed without running again ---

STRANDED = 2 * POOL_THREADS + 1  # more waits than the pool has threads


def semaphore_and_worker(kind: str, psem: Any, ssem: Any, worker: Any) -> tuple[Any, Any]:
    if kind == "posix":
        return psem, worker("psem", psem.name)
    return ssem, worker("ssem", ssem.key)


def release_in_child(child: Any, units: int) -> None:
    child.send_line(f"release {units}")
    child.send_line("end")
    assert child.read_line() == "done"  # released: the child handles lines in order


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_units_taken_for_a_stopped_loop_come_back_when_it_is_closed_unrun(kind, psem, ssem, worker):
    semaphore, child = semaphore_and_worker(kind, psem, ssem, worker)
    given_back = get_pool().given_back
    loop = asyncio.new_event_loop()
    try:
        tasks = [loop.create_task(semaphore.acquire_async()) for _ in range(STRANDED)]
        loop.run_until_complete(asyncio.sleep(0))  # every task has run once: all wait in the pool
        assert not any(task.done() for task in tasks)
        # The loop is stopped. Another process releases a unit per wait; the pool's threads take
        # them all and post them to the loop, which will never run again.
        release_in_child(child, STRANDED)
        settle_pool()
        assert semaphore.value == 0
    finally:
        loop.close()
    # Given back as the close drops them (a free-threaded build frees each on the worker thread
    # that made it, which the pool wakes for that within a slice).
    assert get_pool().wait_delivered(timeout=30)
    assert semaphore.value == STRANDED  # 0 (all lost) before the deliveries gave them back
    assert get_pool().given_back - given_back == STRANDED
    collected = [weakref.ref(task) for task in tasks]
    del tasks
    gc.collect()  # the tasks, pending forever, are collected: nothing comes back twice
    assert not [task for task in collected if task() is not None]
    assert semaphore.value == STRANDED


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_a_unit_delivered_to_a_task_that_never_resumes_comes_back_when_the_task_is_collected(
    kind, psem, ssem, worker
):
    semaphore, child = semaphore_and_worker(kind, psem, ssem, worker)
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(semaphore.acquire_async())
        loop.run_until_complete(asyncio.sleep(0))
        release_in_child(child, 1)
        settle_pool()  # the unit is taken; its delivery waits in the stopped loop's queue
        # The loop runs once more: the delivery gives the unit to the task's future, and the
        # loop stops (queued behind it) before the task resumes to see it.
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert not task.done()
        assert semaphore.value == 0
    finally:
        loop.close()
    assert semaphore.value == 0  # the unit is the task's while the task exists
    del task
    gc.collect()  # collecting the task closes its coroutine, which gives the unit back
    assert semaphore.value == 1


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_no_message_is_taken_for_a_loop_closed_without_running_again(kind, pmq, smq, worker):
    queue, child = (
        (pmq, worker("pmq", pmq.name)) if kind == "posix" else (smq, worker("smq", smq.key))
    )
    loop = asyncio.new_event_loop()
    try:
        receives = [loop.create_task(queue.receive_async()) for _ in range(3)]
        loop.run_until_complete(asyncio.sleep(0))
        child.send_line("send 0 2")  # while the loop is stopped
        child.send_line("end")
        assert child.read_line() == "done"
        assert not any(task.done() for task in receives)
    finally:
        loop.close()
    collected = weakref.ref(loop)
    del receives, loop
    gc.collect()
    assert collected() is None  # nothing of ipcxx.aio keeps a closed loop (and its tasks) alive
    assert queue.current_messages == 2  # receives happen only inside a running task
    first, _ = queue.receive(0) if kind == "posix" else queue.receive(False)
    assert first == b"0"  # in order, none taken


# --- wakes by another process (its latency is a benchmark's business, not a test's) ---


def test_acquire_async_is_woken_by_each_release_of_another_process(psem, worker):
    async def main() -> None:
        child = worker("psem", psem.name)
        for _ in range(50):
            task = asyncio.ensure_future(psem.acquire_async())
            for _ in range(3):
                await asyncio.sleep(0)
            assert not task.done()  # the value is 0: only the child's release can end it
            child.send_line("release 1")
            await task
        child.send_line("end")
        assert child.read_line() == "done"

    asyncio.run(main())
    assert psem.value == 0  # each release went to exactly one acquire

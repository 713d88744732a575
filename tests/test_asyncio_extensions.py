"""asyncio for ipcxx.Channel (receive_async, receive_many_async, send_async, async for) and
ipcxx.RobustLock (acquire_async, async with): waits across processes, timeouts, close from
another thread, many waiters, and exact cancellation counted under random cancels."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import ipcxx
from ipcxx import Channel
from tests.test_asyncio import BATCH, interrupted, rounds, settle_pool, short_timeout

__all__ = ["rounds"]  # a fixture of tests/test_asyncio.py, used here too

RUN_WORKER = (
    "import runpy; runpy.run_path("
    f"{str(Path(__file__).with_name('asyncio_extension_workers.py'))!r}, run_name='__main__')"
)
PADDING = 1000  # bytes per message in the send churn: four fill a 4096-byte ring


@pytest.fixture
def worker(spawn):
    """worker(kind, name) starts tests/asyncio_extension_workers.py on one object and waits
    until the child has opened it."""

    def start(kind: str, name: str):
        child = spawn(RUN_WORKER, kind, name)
        assert child.read_line() == "ready"
        return child

    return start


@pytest.fixture
def channel(make_name):
    made = Channel(make_name(), create=True, capacity=4096)
    yield made
    made.close()


def pool_threads() -> int:
    return sum(thread.name.startswith("ipcxx-aio-") for thread in threading.enumerate())


def fill(channel: Channel, message: bytes) -> int:
    sent = 0
    while True:
        try:
            channel.send(message, timeout=0)
        except TimeoutError:
            return sent
        sent += 1


def drain(channel: Channel) -> list[bytes]:
    left = []
    while True:
        try:
            left.append(channel.receive(0))
        except (TimeoutError, ipcxx.EndOfStream):  # the producer process may have ended
            return left


# --- Channel: each method works, and waits end when another process acts ---


def test_channel_receive_async_completes_when_another_process_sends(channel, worker):
    async def main() -> None:
        child = worker("channel", channel.name)
        task = asyncio.ensure_future(channel.receive_async())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()
        child.send_line("send 0 1")
        assert await task == b"0"
        many = asyncio.ensure_future(channel.receive_many_async(10))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not many.done()
        child.send_line("send 1 3")
        batch = await many
        while len(batch) < 3:
            batch += await channel.receive_many_async(10, timeout=10)
        assert batch == [b"1", b"2", b"3"]
        child.send_line("end")
        assert child.read_line() == "done"

    asyncio.run(main())


def test_channel_send_async_completes_when_another_process_makes_room(channel, worker):
    async def main() -> None:
        queued = fill(channel, b"x" * PADDING)
        child = worker("channel", channel.name)
        task = asyncio.ensure_future(channel.send_async(b"last".ljust(PADDING)))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()
        child.send_line("receive 1")
        await task
        child.send_line("end")
        assert child.read_line() == "done " + "x" * PADDING
        assert drain(channel)[-1] == b"last".ljust(PADDING)
        assert queued >= 2

    asyncio.run(main())


def test_channel_timeouts_raise_timeout_error_and_send_nothing(channel):
    async def main() -> None:
        for timeout in (0, 0.01):
            with pytest.raises(TimeoutError, match="a message"):
                await channel.receive_async(timeout)
            with pytest.raises(TimeoutError, match="a message"):
                await channel.receive_many_async(4, timeout=timeout)
        queued = fill(channel, b"y" * PADDING)
        for timeout in (0, 0.01):
            with pytest.raises(TimeoutError, match="space"):
                await channel.send_async(b"z" * PADDING, timeout)
        assert drain(channel) == [b"y" * PADDING] * queued  # no "z" went out

    asyncio.run(main())


def test_channel_arguments_are_checked_like_the_synchronous_methods(channel):
    async def main() -> None:
        for bad in (-1, "1", float("nan"), True):
            with pytest.raises((TypeError, ValueError)) as sync:
                channel.receive(bad)
            with pytest.raises(sync.type, match=str(sync.value)):
                await channel.receive_async(bad)
            with pytest.raises(sync.type, match=str(sync.value)):
                await channel.receive_many_async(1, bad)
            with pytest.raises(sync.type, match=str(sync.value)):
                await channel.send_async(b"x", bad)
        with pytest.raises(ValueError, match="max_count"):
            await channel.receive_many_async(0)
        with pytest.raises(ValueError, match="can never fit"):
            await channel.send_async(b"x" * (channel.max_message_size + 1))
        with pytest.raises(TypeError):
            await channel.send_async("not a buffer")
        await channel.send_async(b"", timeout=1e12)  # beyond any deadline: without limit
        assert await channel.receive_async(timeout=1e12) == b""

    asyncio.run(main())


def test_closing_a_channel_from_another_thread_ends_its_waits(make_name):
    empty = Channel(make_name(), create=True, capacity=4096)
    full = Channel(make_name(), create=True, capacity=4096)
    fill(full, b"f" * PADDING)

    async def main() -> None:
        waits = [asyncio.ensure_future(empty.receive_async()) for _ in range(3)]
        waits.append(asyncio.ensure_future(empty.receive_many_async(5)))
        waits.append(asyncio.ensure_future(full.send_async(b"g" * PADDING)))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not any(wait.done() for wait in waits)
        closers = [threading.Thread(target=target.close) for target in (empty, full)]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
        for wait in waits:
            with pytest.raises(ValueError, match="closed"):
                await wait

    try:
        asyncio.run(main())
    finally:
        empty.close()
        full.close()


def test_many_waiters_on_one_channel_each_take_one_message(channel, worker):
    async def main() -> None:
        others = threading.active_count() - pool_threads()
        waiters = [asyncio.ensure_future(channel.receive_async(timeout=60)) for _ in range(120)]
        for _ in range(3):
            await asyncio.sleep(0)
        assert not any(waiter.done() for waiter in waiters)
        assert threading.active_count() <= others + 4  # the pool's threads, for any number
        child = worker("channel", channel.name)
        for start in range(0, 120, 40):  # the ring holds fewer than 120 at once
            child.send_line(f"send {start} 40")
        got = await asyncio.gather(*waiters)
        assert sorted(int(message) for message in got) == list(range(120))
        child.send_line("end")
        assert child.read_line() == "done"

    asyncio.run(main())


def test_async_for_yields_messages_in_order(channel, worker):
    async def main() -> list[bytes]:
        child = worker("channel", channel.name)
        child.send_line("send 0 5")
        got = []
        async for message in channel:
            got.append(message)
            if len(got) == 5:
                break
        child.send_line("end")
        assert child.read_line() == "done"
        return got

    assert asyncio.run(main()) == [b"0", b"1", b"2", b"3", b"4"]


class _Ended(EOFError):
    """Stands for the Channel's end-of-stream exception (an EOFError subclass)."""


class _FiniteChannel(Channel):
    """A Channel whose stream ends when it is empty: its receive raises an EOFError subclass."""

    def receive(self, timeout: float | None = None) -> bytes:
        try:
            return super().receive(0)
        except TimeoutError:
            raise _Ended("end of stream") from None


def test_async_for_ends_when_the_receive_reports_the_end_of_the_stream(channel):
    for message in (b"a", b"b", b"c"):
        channel.send(message)
    finite = _FiniteChannel(channel.name)

    async def main() -> list[bytes]:
        return [message async for message in finite]

    try:
        assert asyncio.run(main()) == [b"a", b"b", b"c"]
    finally:
        finite.close()


def test_async_for_ends_at_the_end_of_the_stream_even_while_waiting(channel):
    producer = Channel(channel.name)
    producer.send(b"a")

    async def main() -> list[bytes]:
        got = []
        async for message in channel:
            got.append(message)
            if message == b"a":  # the consumer now waits in the pool for more
                asyncio.get_running_loop().call_later(0.01, finish)
        return got

    def finish() -> None:
        producer.send(b"b")
        producer.finish()

    try:
        assert asyncio.run(main()) == [b"a", b"b"]  # ends: EndOfStream is an EOFError
        with pytest.raises(ipcxx.EndOfStream):
            asyncio.run(channel.receive_async(timeout=1))
    finally:
        producer.close()


# --- Channel: exact cancellation, across processes ---


@pytest.mark.parametrize("many", [False, True], ids=["receive_async", "receive_many_async"])
def test_cancelled_channel_receives_never_lose_a_message(channel, worker, rounds, many):
    rng = random.Random(os.getpid() + 11 + many)
    operations = (
        [lambda: channel.receive_many_async(3), lambda: channel.receive_many_async(2, 0.001)]
        if many
        else [lambda: channel.receive_async(), lambda: channel.receive_async(short_timeout(rng))]
    )

    async def main() -> tuple[Counter[str], list[int], int]:
        child = worker("channel", channel.name)
        outcomes: Counter[str] = Counter()
        received: list[int] = []
        sent = 0
        for _ in range(rounds):
            count = rng.randrange(min(6, 64 - (sent - len(received))) + 1)
            child.send_line(f"send {sent} {count}")
            sent += count
            results = await asyncio.gather(
                *(interrupted(rng.choice(operations), rng) for _ in range(BATCH))
            )
            outcomes.update(outcome for outcome, _ in results)
            for outcome, result in results:
                if outcome == "done":
                    messages = result if isinstance(result, list) else [result]
                    received += [int(message) for message in messages]
        child.send_line("end")
        assert child.read_line() == "done"
        return outcomes, received, sent

    outcomes, received, sent = asyncio.run(main())
    left = [int(message) for message in drain(channel)]
    print(f"\nChannel receives: {sent} sent, {len(left)} left, outcomes {dict(outcomes)}")
    assert sorted(received + left) == list(range(sent))  # each exactly once
    assert channel.lost == 0
    assert outcomes["cancelled"] + outcomes["timed out"] > rounds * BATCH // 4


def test_cancelled_channel_sends_never_send_and_completed_ones_send_once(channel, worker, rounds):
    rng = random.Random(os.getpid() + 13)

    def send(number: int) -> Any:
        message = str(number).encode().ljust(PADDING)
        if rng.random() < 0.5:
            return channel.send_async(message, short_timeout(rng))
        return channel.send_async(message)

    async def main() -> tuple[Counter[str], list[int], list[int]]:
        child = worker("channel", channel.name)
        outcomes: Counter[str] = Counter()
        completed: list[int] = []
        taken = next_number = 0
        for _ in range(rounds):
            count = rng.randrange(min(6, len(completed) - taken) + 1)
            child.send_line(f"receive {count}")
            taken += count
            numbers = range(next_number, next_number + BATCH)
            next_number += BATCH
            results = await asyncio.gather(
                *(interrupted(lambda n=n: send(n), rng) for n in numbers)
            )
            outcomes.update(outcome for outcome, _ in results)
            completed += [
                n for n, (outcome, _) in zip(numbers, results, strict=True) if outcome == "done"
            ]
        child.send_line("end")
        reply = child.read_line().split()
        assert reply[0] == "done"
        return outcomes, completed, [int(number) for number in reply[1:]]

    outcomes, completed, got = asyncio.run(main())
    got += [int(message) for message in drain(channel)]
    print(f"\nChannel sends: {len(completed)} completed, outcomes {dict(outcomes)}")
    assert sorted(got) == sorted(completed)  # exactly the sends that returned, each once
    assert len(set(got)) == len(got)
    assert channel.abandoned == 0  # no half-made message
    assert outcomes["cancelled"] + outcomes["timed out"] > rounds * BATCH // 4


def test_no_channel_message_is_taken_for_a_loop_closed_without_running_again(channel, worker):
    child = worker("channel", channel.name)
    loop = asyncio.new_event_loop()
    try:
        receives = [loop.create_task(channel.receive_async()) for _ in range(3)]
        receives.append(loop.create_task(channel.receive_many_async(5)))
        loop.run_until_complete(asyncio.sleep(0))
        child.send_line("send 0 2")  # while the loop is stopped
        child.send_line("end")
        assert child.read_line() == "done"
        settle_pool()  # the pool saw the messages arrive: readiness, nothing taken
        assert not any(task.done() for task in receives)
    finally:
        loop.close()
    collected = weakref.ref(loop)
    del receives, loop
    gc.collect()
    assert collected() is None
    assert drain(channel) == [b"0", b"1"]  # in order, none taken


# --- RobustLock: acquire_async and async with ---


@pytest.fixture
def lock(make_name):
    made = ipcxx.RobustLock(make_name(), create=True)
    yield made
    try:
        made.close()
    except RuntimeError:  # a failed test left it held: the name is unlinked all the same
        pass


def test_acquire_async_takes_a_free_lock_and_async_with_releases_it(lock):
    async def main() -> None:
        assert await lock.acquire_async() is True
        assert lock.locked()
        lock.release()
        async with lock as entered:
            assert entered is lock and lock.locked()
        assert not lock.locked()
        assert await lock.acquire_async(timeout=0) is True
        with pytest.raises(RuntimeError, match="this task already holds"):
            await lock.acquire_async()
        lock.release()

    asyncio.run(main())
    assert lock.acquire(0) is True  # the loop thread gave it back
    lock.release()


def test_tasks_of_one_loop_hold_the_lock_one_at_a_time(lock):
    holders: list[int] = []
    inside: list[int] = []

    async def use(number: int) -> None:
        async with lock:
            inside.append(number)
            assert len(inside) == 1, inside  # mutual exclusion between tasks of one thread
            for _ in range(3):
                await asyncio.sleep(0)  # other tasks run meanwhile, and must wait
            holders.append(number)
            inside.remove(number)

    async def main() -> None:
        await asyncio.gather(*(use(number) for number in range(20)))

    asyncio.run(main())
    assert sorted(holders) == list(range(20))
    assert not lock.locked()


def test_another_tasks_release_and_repair_are_refused_as_another_threads_are(lock):
    async def main() -> None:
        assert await lock.acquire_async()
        results: list[BaseException] = []

        async def intruder() -> None:
            for call in (lock.release, lock.make_consistent):
                try:
                    call()
                except RuntimeError as error:
                    results.append(error)

        await asyncio.ensure_future(intruder())
        assert [str(error) for error in results] == [
            "this task does not hold the lock (another asyncio task acquired it)"
        ] * 2
        errors: list[BaseException] = []

        def from_thread() -> None:
            try:
                lock.release()
            except RuntimeError as error:
                errors.append(error)

        thread = threading.Thread(target=from_thread)
        thread.start()
        thread.join()
        assert len(errors) == 1
        with pytest.raises(RuntimeError, match="this thread already holds"):
            lock.acquire(0)  # the loop's thread holds it, for the task
        assert lock.locked()
        lock.release()  # the holding task
        assert not lock.locked()

    asyncio.run(main())


def test_acquire_async_timeouts_return_false_and_bad_ones_are_refused(lock, worker):
    child = worker("lock", lock.name)
    child.send_line("acquire")
    assert child.read_line() == "held"

    async def main() -> None:
        assert await lock.acquire_async(timeout=0) is False
        assert await lock.acquire_async(timeout=0.02) is False
        for bad in (-1, "1", float("nan"), True):
            with pytest.raises((TypeError, ValueError)) as sync:
                lock.acquire(bad)
            with pytest.raises(sync.type, match=str(sync.value)):
                await lock.acquire_async(bad)

    asyncio.run(main())
    settle_pool()
    child.send_line("release")
    assert child.read_line() == "released"
    assert not lock.locked()


def test_acquire_async_waits_for_another_process_which_then_waits_for_the_task(lock, worker):
    from tests.kernel_wait import wait_until_blocked

    child = worker("lock", lock.name)
    child.send_line("acquire")
    assert child.read_line() == "held"

    async def hold() -> None:  # the task that acquires is the one that releases
        assert await lock.acquire_async() is True
        assert child.read_line() == "released"
        child.send_line("acquire")  # the child now waits for this task
        pid = child.process.pid
        wait_until_blocked(pid, "futex", futex_in=f"/dev/shm{lock.name}", pid=pid)
        lock.release()

    async def main() -> None:
        task = asyncio.ensure_future(hold())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()
        child.send_line("release")
        await task

    asyncio.run(main())
    assert child.read_line() == "held"
    child.send_line("release")
    assert child.read_line() == "released"


@pytest.mark.parametrize("waiting", [True, False], ids=["while-waiting", "before"])
def test_a_holder_killed_is_reported_to_the_awaiting_task_which_repairs(lock, worker, waiting):
    child = worker("lock", lock.name)
    child.send_line("acquire")
    assert child.read_line() == "held"

    async def repair() -> None:
        with pytest.raises(ipcxx.OwnerDiedError):
            await lock.acquire_async()
        assert lock.locked()  # this task holds it
        other = threading.Thread(target=lambda: results.append(lock.acquire(0)))
        other.start()
        other.join()
        lock.make_consistent()
        lock.release()
        assert await lock.acquire_async(timeout=1) is True  # consistent: usable again
        lock.release()

    async def main() -> None:
        task = asyncio.ensure_future(repair())
        if waiting:
            for _ in range(3):
                await asyncio.sleep(0)
            assert not task.done()
        child.kill()  # SIGKILL while holding
        await task

    results: list[bool] = []
    asyncio.run(main())
    assert results == [False]
    assert not lock.not_recoverable


def test_a_holding_tasks_process_killed_is_reported_to_the_next_owner(lock, worker):
    child = worker("lock", lock.name)
    child.send_line("acquire_async")
    assert child.read_line() == "held"
    child.kill()
    with pytest.raises(ipcxx.OwnerDiedError):
        lock.acquire(timeout=10)
    lock.make_consistent()
    lock.release()


def test_tasks_on_two_loops_in_two_threads_exclude_each_other(lock):
    inside: list[str] = []
    done: Counter[str] = Counter()

    async def use(name: str) -> None:
        for _ in range(30):
            async with lock:
                inside.append(name)
                assert len(inside) == 1, inside
                await asyncio.sleep(0)
                inside.remove(name)
                done[name] += 1

    async def many(name: str) -> None:
        await asyncio.gather(*(use(f"{name}{n}") for n in range(3)))

    other = threading.Thread(target=asyncio.run, args=(many("b"),))
    other.start()
    asyncio.run(many("a"))
    other.join()
    assert sum(done.values()) == 180
    assert not lock.locked()


def test_cancelled_acquires_never_leave_the_lock_held(lock, worker, rounds):
    rng = random.Random(os.getpid() + 17)
    child = worker("lock", lock.name)
    inside: list[int] = []

    async def use() -> bool:
        timeout = short_timeout(rng) if rng.random() < 0.3 else None
        if not await lock.acquire_async(timeout):
            return False
        inside.append(1)
        try:
            assert len(inside) == 1
            await asyncio.sleep(0)  # a cancellation may land here, while holding
        finally:
            inside.pop()
            lock.release()
        return True

    async def main() -> Counter[str]:
        outcomes: Counter[str] = Counter()
        for _ in range(rounds // 4):
            child.send_line("acquire")  # another process holds it at the start of each round
            assert child.read_line() == "held"
            operations = [asyncio.ensure_future(interrupted(use, rng)) for _ in range(BATCH)]
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            child.send_line("release")
            results = await asyncio.gather(*operations)
            assert child.read_line() == "released"
            outcomes.update(
                outcome if outcome != "done" else ("acquired" if result else "timed out")
                for outcome, result in results
            )
        return outcomes

    outcomes = asyncio.run(main())
    settle_pool()
    print(f"\nRobustLock acquire_async: outcomes {dict(outcomes)}")
    assert not lock.locked()  # no cancelled acquire kept it
    assert lock.acquire(0) is True
    lock.release()
    assert outcomes["acquired"] > 0
    assert outcomes["cancelled"] + outcomes["timed out"] > 0

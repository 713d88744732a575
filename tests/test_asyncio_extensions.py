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
        except TimeoutError:
            return left


# --- Channel: each method works, and waits end when another process acts ---


def test_channel_receive_async_completes_when_another_process_sends(channel, worker):
    async def main() -> None:
        child = worker("channel", channel.name)
        task = asyncio.ensure_future(channel.receive_async())
        many = asyncio.ensure_future(channel.receive_many_async(10))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done() and not many.done()
        child.send_line("send 0 1")
        assert await task == b"0"
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


@pytest.mark.skipif(not hasattr(ipcxx, "EndOfStream"), reason="end of stream not in this build")
def test_async_for_ends_at_the_channels_own_end_of_stream():  # pragma: no cover - once it lands
    assert issubclass(ipcxx.EndOfStream, EOFError)


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

"""Queue.get_async and Queue.put_async (issue 18 item 5): they wait without blocking the event
loop, time out with queue.Empty/queue.Full, end with EndOfStream, and cancel exactly: a
cancelled get_async takes nothing and a cancelled put_async puts nothing."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import queue as queue_module
import random
import threading
import time

import pytest

import ipcxx
from ipcxx.aio.pool import get_pool
from tests import queue_workers


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_get_async_waits_for_another_process_without_blocking_the_loop(make_queue):
    q = make_queue()
    context = multiprocessing.get_context("fork")

    async def main() -> tuple[list[object], int]:
        waiting = asyncio.ensure_future(q.get_async(timeout=30))
        ticks = 0
        while ticks < 3:  # the loop keeps running while get_async waits
            await asyncio.sleep(0)
            ticks += 1
        producer = context.Process(target=queue_workers.produce, args=(q, 5, 3))
        producer.start()
        first = await waiting
        rest = [await q.get_async(timeout=30) for _ in range(2)]
        producer.join(30)
        return [first, *rest], ticks

    got, ticks = asyncio.run(main())
    assert got == [(5, 0), (5, 1), (5, 2)] and ticks == 3


def test_get_async_times_out_with_empty_and_ends_with_end_of_stream(make_queue):
    q = make_queue(ipcxx.Queue, 0, end_of_stream=True)

    async def main() -> None:
        with pytest.raises(queue_module.Empty):
            await q.get_async(timeout=0)
        started = time.monotonic()
        with pytest.raises(queue_module.Empty):
            await q.get_async(timeout=0.05)
        assert time.monotonic() - started >= 0.05
        producer = pickle.loads(pickle.dumps(q))
        producer.put("last")
        producer.close()
        assert await q.get_async(timeout=10) == "last"
        with pytest.raises(ipcxx.EndOfStream):
            await q.get_async(timeout=10)

    asyncio.run(main())


def test_cancelled_get_async_never_takes_an_object(make_queue):
    q = make_queue(ipcxx.Queue, 0, capacity=1 << 14)
    other = pickle.loads(pickle.dumps(q))
    count = 3000

    def produce() -> None:
        for number in range(count):
            other.put(number)
            if number % 7 == 0:
                time.sleep(0)  # let the loop's tasks interleave (pacing, not synchronisation)

    got: list[int] = []
    cancelled = 0

    async def main() -> None:
        nonlocal cancelled
        rng = random.Random(18)
        thread = threading.Thread(target=produce)
        thread.start()
        while thread.is_alive() or q.qsize():
            task = asyncio.ensure_future(q.get_async(timeout=10))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            if not task.done() and rng.random() < 0.5:
                task.cancel()
            try:
                got.append(await task)
            except asyncio.CancelledError:
                cancelled += 1
            except queue_module.Empty:
                break
        thread.join(30)

    asyncio.run(main())
    while True:
        try:
            got.append(q.get_nowait())
        except queue_module.Empty:
            break
    other.close()
    assert cancelled > 50
    assert got == list(range(count))  # none lost to a cancelled get, none twice, in order


def test_put_async_waits_for_a_place_and_a_cancelled_one_puts_nothing(make_queue):
    q = make_queue(ipcxx.Queue, 1)

    async def main() -> None:
        await q.put_async("first", timeout=1)
        with pytest.raises(queue_module.Full):
            await q.put_async("refused", timeout=0)
        with pytest.raises(queue_module.Full):
            await q.put_async("refused", timeout=0.05)
        cancelled = asyncio.ensure_future(q.put_async("cancelled", timeout=30))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        waiting = asyncio.ensure_future(q.put_async("second", timeout=30))
        await asyncio.sleep(0)
        assert not waiting.done()
        assert q.get(timeout=10) == "first"  # frees the place: put_async goes on
        await waiting
        assert q.get(timeout=10) == "second"
        with pytest.raises(queue_module.Empty):
            q.get_nowait()
        # The cancelled put_async's wait stays in the pool until its worker sees it is gone
        # (within a slice) and may take the place "second" freed meanwhile; it gives it back
        # through this loop. Let the pool settle and the loop run that before counting places.
        assert await asyncio.to_thread(get_pool().wait_idle, 30)
        await asyncio.sleep(0)
        assert get_pool().wait_delivered(timeout=30)
        assert q.qsize() == 0 and not q.full()

    asyncio.run(main())

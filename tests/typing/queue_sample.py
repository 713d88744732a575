"""A program using ipcxx's queues, type-checked by tests/typing/check.py (mypy --strict)."""

from __future__ import annotations

import queue

import ipcxx


def roundtrip() -> int:
    jobs: ipcxx.Queue[tuple[int, str]] = ipcxx.Queue(maxsize=10)
    done: ipcxx.JoinableQueue[int] = ipcxx.JoinableQueue()
    simple: ipcxx.SimpleQueue[bytes] = ipcxx.SimpleQueue(capacity=1 << 16)
    try:
        jobs.put((1, "one"), timeout=1.0)
        jobs.put_nowait((2, "two"))
        number, _ = jobs.get(timeout=1.0)
        jobs.put_many([(3, "three"), (4, "four")])
        batch: list[tuple[int, str]] = jobs.get_many(max_messages_to_get=2)
        number += len(batch)
        try:
            jobs.get_nowait()
        except queue.Empty:
            pass
        done.put(number)
        done.get()
        done.task_done()
        finished: bool = done.join(timeout=1.0)
        simple.put(b"x")
        data: bytes = simple.get()
        size: int = jobs.qsize()
        flags: tuple[bool, bool] = (jobs.empty(), jobs.full())
        jobs.close()
        jobs.join_thread()
        return number + size + len(data) + int(finished) + int(flags[0])
    finally:
        for handle in (jobs, done, simple):
            handle.unlink()
        done.close()
        simple.close()


def ends() -> list[str]:
    stream: ipcxx.Queue[str] = ipcxx.Queue(end_of_stream=True, name="/ipcxx_typing_sample")
    try:
        stream.declare_producer()
        stream.put("a")
        stream.close()
        reader = ipcxx.Queue.open("/ipcxx_typing_sample", end_of_stream=True)
        return [str(item) for item in reader]
    finally:
        ipcxx.unlink_queue("/ipcxx_typing_sample")


async def awaited(jobs: ipcxx.Queue[int]) -> int:
    await jobs.put_async(1, timeout=1.0)
    return await jobs.get_async(timeout=1.0) + await jobs.get_async()

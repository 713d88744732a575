"""Crash safety and end of stream (issue 18 items 5 and 6): exactly once with 4 producers and 4
consumers, kill -9 of producers and consumers mid-stream never blocks the others nor delivers a
half-written object, and close() of the last producer ends an end_of_stream queue."""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal

import pytest

import ipcxx
from tests import queue_workers


def _finish(processes):
    for process in processes:
        process.join(30)
        if process.exitcode is None:
            process.kill()
            process.join()


def _collect(receiver, count):
    results = []
    for _ in range(count):
        assert receiver.poll(120), "a consumer did not finish"
        results.append(receiver.recv())
    return results


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_exactly_once_with_four_producers_and_four_consumers(make_queue, method):
    context = multiprocessing.get_context(method)
    queue = make_queue(ipcxx.Queue, 0, capacity=1 << 15, end_of_stream=True)
    queue.declare_producer()  # the stream stays open until every producer has started
    pipes = [context.Pipe(duplex=False) for _ in range(4)]  # one each: big writes interleave
    count = 5000
    consumers = [
        context.Process(target=queue_workers.consume_until_end, args=(queue, sender))
        for _, sender in pipes
    ]
    producers = [
        context.Process(target=queue_workers.produce, args=(queue, p, count)) for p in range(4)
    ]
    for process in (*consumers, *producers):
        process.start()
    try:
        _finish(producers)  # each declared itself at its first put and closed at its end
        assert [producer.exitcode for producer in producers] == [0, 0, 0, 0]
        queue.close()  # the last producer: the stream ends when the ring is drained
        results = [_collect(receiver, 1)[0] for receiver, _ in pipes]
    finally:
        _finish((*producers, *consumers))
    everything = [item for result in results for item in result]
    assert sorted(everything) == sorted((p, n) for p in range(4) for n in range(count))
    for result in results:
        for producer in range(4):
            numbers = [n for p, n in result if p == producer]
            assert numbers == sorted(numbers)  # FIFO per producer within each consumer


def test_a_producer_killed_mid_message_never_delivers_half_an_object(make_queue):
    context = multiprocessing.get_context("fork")
    queue = make_queue()
    ready_read, ready_write = context.Pipe(duplex=False)
    writer = context.Process(target=queue_workers.die_while_writing, args=(queue, ready_write))
    writer.start()
    try:
        assert ready_read.poll(30)
        queue.put("behind the half-written one")
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        assert queue.get(timeout=10) == "behind the half-written one"
        with pytest.raises(queue_module.Empty):
            queue.get(timeout=0.2)
        assert queue._channel.abandoned == 1
    finally:
        _finish([writer])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_kill_9_of_producers_and_consumers_mid_stream_blocks_nobody(make_queue, method):
    context = multiprocessing.get_context(method)
    queue = make_queue(ipcxx.Queue, 0, capacity=1 << 14)
    ready_read, ready_write = context.Pipe(duplex=False)
    victims = [
        context.Process(target=queue_workers.produce_forever, args=(queue, 7, ready_write)),
        context.Process(target=queue_workers.consume_forever, args=(queue, ready_write)),
    ]
    for victim in victims:
        victim.start()
    try:
        assert ready_read.poll(60) and ready_read.recv()
        assert ready_read.poll(60) and ready_read.recv()
        for victim in victims:
            os.kill(victim.pid, signal.SIGKILL)
        _finish(victims)
        # The survivors: this process puts and gets through the same queue.
        for number in range(3000):
            queue.put(("survivor", number))
        got = []
        while len([g for g in got if g[0] == "survivor"]) < 3000:
            got.append(queue.get(timeout=10))
    finally:
        _finish(victims)
    survivors = [n for g in got if g[0] == "survivor" for n in [g[1]]]
    assert survivors == list(range(3000))
    killed = [g[1] for g in got if g[0] == 7]
    assert killed == sorted(set(killed))  # what the killed producer committed: once, in order


def test_default_queue_never_ends_and_end_of_stream_queue_ends_at_close(make_queue):
    context = multiprocessing.get_context("fork")
    for end_of_stream in (False, True):
        queue = make_queue(ipcxx.Queue, 0, end_of_stream=end_of_stream)
        producer = context.Process(target=queue_workers.produce, args=(queue, 0, 10))
        producer.start()
        _finish([producer])
        assert producer.exitcode == 0
        assert [queue.get(timeout=10) for _ in range(10)] == [(0, n) for n in range(10)]
        if end_of_stream:
            with pytest.raises(ipcxx.EndOfStream):
                queue.get(timeout=10)
            assert list(queue) == []
        else:
            with pytest.raises(queue_module.Empty):  # as multiprocessing: just empty
                queue.get(timeout=0.1)

"""ipcxx.Queue, SimpleQueue and JoinableQueue behave as multiprocessing's (issue 18 item 1):
Empty/Full with and without timeouts, qsize/empty/full, close, JoinableQueue accounting, and
the same across processes of every start method."""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_module
import threading
import time

import pytest

import ipcxx
from tests import queue_workers
from tests.queue_workers import START_METHODS


def test_objects_come_out_in_order_and_equal(make_queue):
    q = make_queue()
    objects = [1, "two", (3, 4.0), {"five": [6]}, None, b"seven", bytearray(b"8")]
    for obj in objects:
        q.put(obj)
    assert q.qsize() == len(objects)
    assert [q.get(timeout=10) for _ in objects] == objects
    assert q.empty() and q.qsize() == 0


def test_get_raises_empty_at_once_or_after_the_timeout(make_queue):
    q = make_queue()
    with pytest.raises(queue_module.Empty):
        q.get_nowait()
    with pytest.raises(queue_module.Empty):
        q.get(False)
    with pytest.raises(queue_module.Empty):
        q.get(timeout=-1)  # multiprocessing: a negative timeout polls once
    started = time.monotonic()
    with pytest.raises(queue_module.Empty):
        q.get(timeout=0.05)
    assert time.monotonic() - started >= 0.05
    q.put("there")
    assert q.get(block=False) == "there"


def test_a_bounded_queue_raises_full_and_counts_objects(make_queue):
    q = make_queue(ipcxx.Queue, 2)
    assert not q.full()
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue_module.Full):
        q.put(3, block=False)
    with pytest.raises(queue_module.Full):
        q.put_nowait(3)
    started = time.monotonic()
    with pytest.raises(queue_module.Full):
        q.put(3, timeout=0.05)
    assert time.monotonic() - started >= 0.05
    assert q.get(timeout=10) == 1
    assert not q.full()
    q.put(3, timeout=10)
    assert [q.get(timeout=10), q.get(timeout=10)] == [2, 3]


def test_an_unbounded_queue_is_never_full(make_queue):
    q = make_queue(ipcxx.Queue, 0, capacity=4096)
    for number in range(1000):  # far more than the 4 KiB ring holds: spilled, never blocked
        q.put_nowait(number)
    assert not q.full() and q.qsize() == 1000
    assert [q.get(timeout=10) for _ in range(1000)] == list(range(1000))


def test_closed_queue_refuses_put_and_get_and_pickling(make_queue):
    q = make_queue()
    q.close()
    q.close()  # idempotent
    with pytest.raises(ValueError, match="is closed"):
        q.put(1)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    with pytest.raises(ValueError):
        pickle.dumps(q)
    q.join_thread()


def test_join_thread_requires_close(make_queue):
    q = make_queue()
    with pytest.raises(AssertionError):
        q.join_thread()


def test_pickling_errors_raise_at_put_and_keep_the_counts(make_queue):
    q = make_queue(ipcxx.Queue, 1)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: None)
    assert q.qsize() == 0 and not q.full()
    q.put(1)
    assert q.get(timeout=10) == 1


def test_joinable_queue_counts_tasks(make_queue):
    q = make_queue(ipcxx.JoinableQueue)
    with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
        q.task_done()
    q.put(1)
    q.put(2)
    assert q.join(timeout=0.01) is False
    q.get(timeout=10)
    q.task_done()
    assert q.join(timeout=0.01) is False
    q.get(timeout=10)
    q.task_done()
    assert q.join(timeout=10) is True
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_simple_queue(make_queue):
    q = make_queue(ipcxx.SimpleQueue)
    assert q.empty()
    q.put({"a": 1})
    assert not q.empty()
    assert q.get() == {"a": 1}
    q.close()
    with pytest.raises(OSError):
        q.get()


def _outcome(call, q):
    try:
        return ("returned", repr(call(q)))
    except Exception as failure:
        return (type(failure).__name__, str(failure))


@pytest.mark.parametrize("operation", ["put", "get", "empty"])
def test_a_closed_simple_queue_raises_what_multiprocessing_raises(make_queue, operation):
    # multiprocessing's SimpleQueue uses its closed pipe ends: OSError("handle is closed").
    calls = {"put": lambda q: q.put(2), "get": lambda q: q.get(), "empty": lambda q: q.empty()}
    outcomes = []
    for q in (multiprocessing.SimpleQueue(), make_queue(ipcxx.SimpleQueue)):
        q.put(1)
        q.close()
        outcomes.append(_outcome(calls[operation], q))
    assert outcomes[1] == outcomes[0] == ("OSError", "handle is closed")


@pytest.mark.parametrize("timeout", [2**63, 2**70, 1e300, float("inf"), 9e9])
@pytest.mark.parametrize("operation", ["put", "get"])
def test_a_huge_timeout_waits_without_limit_in_put_and_get(make_queue, operation, timeout):
    # multiprocessing raises OverflowError (get) or OSError (put on a full queue): documented.
    q = make_queue(ipcxx.Queue, 1)
    if operation == "put":
        q.put("first")
    outcome: list[object] = []
    done = threading.Event()

    def wait():
        try:
            if operation == "put":
                q.put("second", timeout=timeout)
                outcome.append("put")
            else:
                outcome.append(q.get(timeout=timeout))
        except Exception as failure:
            outcome.append(failure)
        done.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert not done.wait(0.2), f"{operation}(timeout={timeout!r}) did not wait: {outcome}"
    if operation == "put":
        assert q.get(timeout=10) == "first"
    else:
        q.put("second")
    assert done.wait(30)
    waiter.join()
    assert outcome == ["put" if operation == "put" else "second"]
    if operation == "put":
        assert q.get(timeout=10) == "second"


def test_a_nan_timeout_is_a_value_error_in_put_and_get(make_queue):
    nan = float("nan")
    reference = multiprocessing.Queue()
    try:
        with pytest.raises(ValueError):  # multiprocessing's get too (its put: OSError, documented)
            reference.get(timeout=nan)
    finally:
        reference.close()
    full = make_queue(ipcxx.Queue, 1)
    full.put(0)
    roomy = make_queue(ipcxx.Queue, 2)
    unbounded = make_queue(ipcxx.JoinableQueue)
    unbounded.put(0)
    for q in (full, roomy, unbounded):
        with pytest.raises(ValueError, match="timeout must be None or a non-negative number"):
            q.put(1, timeout=nan)
        with pytest.raises(ValueError, match="timeout must be None or a non-negative number"):
            q.get(timeout=nan)
    assert full.qsize() == 1 and roomy.qsize() == 0 and unbounded.qsize() == 1
    roomy.put(1, False, nan)  # without block the timeout is ignored, as in multiprocessing
    assert roomy.get(False, nan) == 1


def test_join_with_a_nan_timeout_raises_value_error_as_put_and_get(make_queue):
    # multiprocessing's join() has no timeout (ours is an extension): NaN is refused as in get.
    unbounded = make_queue(ipcxx.JoinableQueue)
    unbounded.put(0)  # an unfinished task
    joined: list[object] = []

    def join():
        try:
            joined.append(unbounded.join(timeout=float("nan")))
        except Exception as failure:
            joined.append(failure)

    joiner = threading.Thread(target=join, daemon=True)
    joiner.start()
    joiner.join(30)
    assert not joiner.is_alive(), "join(timeout=nan) waits for ever"
    assert isinstance(joined[0], ValueError), joined
    assert unbounded.get(timeout=10) == 0
    unbounded.task_done()
    assert unbounded.join(timeout=float("inf")) is True


@pytest.mark.parametrize("maxsize", [2**31, 2**63, 2**100])
def test_a_maxsize_beyond_a_c_int_is_an_overflow_error_as_in_multiprocessing(make_queue, maxsize):
    with pytest.raises(OverflowError):
        multiprocessing.Queue(maxsize)
    for cls in (ipcxx.Queue, ipcxx.JoinableQueue):
        with pytest.raises(OverflowError, match="maxsize"):
            cls(maxsize)
    largest = make_queue(ipcxx.Queue, 2**31 - 1)  # as multiprocessing's largest
    largest.put(1)
    assert not largest.full() and largest.get(timeout=10) == 1


def test_queues_are_generic_for_type_checkers():
    assert ipcxx.Queue[int] is not None
    assert ipcxx.SimpleQueue[str] is not None
    assert ipcxx.JoinableQueue[bytes] is not None


def test_named_queue_is_opened_by_name_and_removed_only_on_request(make_name):
    name = make_name()
    q = ipcxx.Queue(3, name=name)
    try:
        with pytest.raises(FileExistsError):
            ipcxx.Queue(name=name)
        other = ipcxx.Queue.open(name)
        other.put("from the other handle")
        assert q.get(timeout=10) == "from the other handle"
        for _ in range(3):
            other.put(0)
        assert q.full()
        other.close()
        del other
        import gc

        gc.collect()
        assert ipcxx.Queue.open(name).qsize() == 3  # still there
    finally:
        q.close()
        ipcxx.unlink_queue(name)
    with pytest.raises(FileNotFoundError):
        ipcxx.Queue.open(name)


@pytest.mark.parametrize("method", START_METHODS)
def test_order_per_producer_across_processes(make_queue, method):
    context = multiprocessing.get_context(method)
    q = make_queue(ipcxx.Queue, 0, capacity=1 << 14)  # small: producers spill
    count = 3000
    producers = [
        context.Process(target=queue_workers.produce, args=(q, p, count)) for p in range(2)
    ]
    receiver, sender = context.Pipe(duplex=False)
    consumer = context.Process(target=queue_workers.consume, args=(q, 2 * count, sender))
    for process in (*producers, consumer):
        process.start()
    try:
        assert receiver.poll(60), "the consumer did not finish"
        got = receiver.recv()
    finally:
        for process in (*producers, consumer):
            process.join(30)
            if process.exitcode is None:
                process.kill()
                process.join()
    for producer in range(2):
        assert [n for p, n in got if p == producer] == list(range(count))
    assert [process.exitcode for process in (*producers, consumer)] == [0, 0, 0]
    assert q.qsize() == 0


@pytest.mark.parametrize("method", START_METHODS)
def test_joinable_queue_across_processes(make_queue, method):
    context = multiprocessing.get_context(method)
    q = make_queue(ipcxx.JoinableQueue, 10)
    receiver, sender = context.Pipe(duplex=False)
    workers = [
        context.Process(target=queue_workers.task_worker, args=(q, sender)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        for number in range(200):
            q.put(number, timeout=30)
        q.put(None, timeout=30)
        q.put(None, timeout=30)
        assert q.join(timeout=60)
        assert receiver.poll(30)
        totals = [receiver.recv()]
        assert receiver.poll(30)
        totals.append(receiver.recv())
    finally:
        for worker in workers:
            worker.join(30)
            if worker.exitcode is None:
                worker.kill()
                worker.join()
    assert sum(totals) == sum(range(200))
    with pytest.raises(ValueError):
        q.task_done()

"""The native half of ipcxx.Queue (python/src/extensions/queue_core.cpp): put(obj) and get()
run in one C call; these tests cover what that call must hand back to the Python methods, and
what it must never mix up (nested pickling, the spill order, counts on failure)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import weakref

import pytest

import ipcxx

np = pytest.importorskip("numpy")


class PutsWhilePickled:
    """Puts `inner` to `target` from inside its own pickling (a __reduce__ that has effects)."""

    def __init__(self, target, inner, payload):
        self.target, self.inner, self.payload = target, inner, payload

    def __reduce__(self):
        self.target.put(self.inner)
        return (list, ([self.payload],))


def test_a_put_from_inside_pickling_keeps_each_objects_buffers(make_queue):
    # Both objects have out-of-band buffers: the nested put must not take the outer's (nor
    # hand its own to the outer), or an array would arrive in the wrong object.
    # The outer object's first array is pickled (its buffer collected) before the nested put.
    q = make_queue()
    inner = np.full(1000, 7, dtype=np.int64)
    before = np.full(2000, 5, dtype=np.int64)
    after = np.full(3000, 9, dtype=np.int64)
    q.put((before, PutsWhilePickled(q, inner, after)))
    first, second = q.get(timeout=10), q.get(timeout=10)
    assert first.shape == (1000,) and (first == 7).all()
    assert isinstance(second, tuple) and second[0].shape == (2000,) and (second[0] == 5).all()
    assert second[1][0].shape == (3000,) and (second[1][0] == 9).all()
    assert q.qsize() == 0


def test_an_object_that_cannot_be_pickled_counts_nothing(make_queue):
    q = make_queue()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: None)
    with pytest.raises(TypeError):
        q.put(threading.Lock())
    assert q.qsize() == 0 and q.empty()
    q.put("after")
    assert q.get(timeout=10) == "after" and q.qsize() == 0


def test_a_message_that_is_not_a_queue_message_is_an_error_not_a_crash(make_queue):
    q = make_queue()
    for foreign in (b"", b"\x80", b"\x7fgarbage", b"\x80\x05K\x01", b"\x02" + b"\xff" * 40):
        q._channel.send(foreign)
        with pytest.raises(Exception) as raised:  # what pickle or the framing says
            q.get(timeout=10)
        assert not isinstance(raised.value, (queue.Empty, SystemError))
    q.put(("still", "works"))
    assert q.get(timeout=10) == ("still", "works")


def test_puts_keep_their_order_behind_the_spill_buffer(make_queue):
    # A ring of 4 KiB fills after a few objects; later small ones must wait behind the spilled
    # ones even when the ring has room again.
    q = make_queue(capacity=1 << 12)
    sent = [bytes([n % 256]) * 900 if n % 3 == 0 else n for n in range(200)]
    for item in sent:
        q.put(item)
    assert [q.get(timeout=30) for _ in sent] == sent


def test_calls_with_arguments_go_to_the_python_methods(make_queue):
    q = make_queue(None, 2)
    q.put(1, True, None)
    q.put(obj=2)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(TypeError):
        q.put(3, timeout="soon")
    with pytest.raises(TypeError):
        q.put()
    assert q.get(True) == 1 and q.get(block=True, timeout=5) == 2
    with pytest.raises(queue.Empty):
        q.get(timeout=0)
    with pytest.raises(TypeError):
        q.get(True, 1, 2)
    with pytest.raises(ValueError):
        q.get(timeout=float("nan"))


def test_a_subclass_that_overrides_put_and_get_is_used():
    class Logged(ipcxx.Queue):
        def put(self, obj, block=True, timeout=None):
            super().put(("logged", obj), block, timeout)

        def get(self, block=True, timeout=None):
            return super().get(block, timeout)[1]

    q = Logged()
    try:
        q.put(5)
        assert q._channel.receive(10) == pickle.dumps(("logged", 5), 5)
        q.put(6)
        assert q.get() == 6
    finally:
        q.close()
        q.unlink()


def test_a_dropped_anonymous_queue_is_removed_at_once(make_name):
    # The native base holds no reference back to the queue: no cycle, so dropping the last
    # reference removes its name without waiting for the collector.
    gc.disable()
    try:
        q = ipcxx.Queue()
        name = q.name
        q.put("x")
        probe = weakref.ref(q)
        del q
        assert probe() is None
        assert not os.path.exists("/dev/shm" + name)
    finally:
        gc.enable()


def test_a_queue_in_a_cycle_is_collected(make_name):
    q = ipcxx.Queue()
    name = q.name
    q.self_reference = q
    probe = weakref.ref(q)
    del q
    gc.collect()
    assert probe() is None and not os.path.exists("/dev/shm" + name)


def test_a_get_interrupted_by_a_signal_handler_loses_nothing(make_queue):
    # The native get() waits without the GIL in slices; a handler that raises ends the wait,
    # and the object put afterwards is still there for the next get().
    q = make_queue()
    reader, writer = os.pipe()

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.read(reader, 1)  # the parent is about to wait
                os.kill(os.getppid(), signal.SIGUSR1)
            finally:
                os._exit(0)
        # The signal may land before get() waits (then it ends the block there): inside it.
        with pytest.raises(KeyboardInterrupt):
            os.write(writer, b"g")
            q.get()
        os.waitpid(pid, 0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        os.close(reader)
        os.close(writer)
    q.put({"after": "signal"})
    assert q.get() == {"after": "signal"} and q.qsize() == 0


def test_a_fork_child_puts_through_its_own_spill_buffer(make_queue):
    # After fork the child's native put() must look at the child's (empty) spill buffer, not
    # the parent's (which holds objects only the parent will flush).
    q = make_queue(capacity=1 << 12)
    big = [b"p" * 1500 for _ in range(6)]  # more than the ring holds: the rest spills
    for item in big:
        q.put(item)
    assert q._pending, "the parent's spill buffer should hold objects"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if not q._pending else 2
            q.put("from the child")
            q.close()
            q.join_thread()
        finally:
            os._exit(code)
    got = [q.get(timeout=30) for _ in range(len(big) + 1)]
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert sorted(map(repr, got)) == sorted(map(repr, [*big, "from the child"]))
    assert [g for g in got if g != "from the child"] == big


def test_close_from_another_thread_during_a_native_get(make_queue):
    q = make_queue()
    started = threading.Event()
    outcome: list[BaseException | object] = []

    def consumer():
        started.set()
        try:
            outcome.append(q.get())
        except BaseException as error:  # what get() raises when the ring is closed under it
            outcome.append(error)

    thread = threading.Thread(target=consumer)
    thread.start()
    started.wait()
    q._channel.close()  # what close() does once the spill buffer is empty
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], ValueError)


def test_many_threads_put_and_get_one_queue_exactly_once(make_queue):
    # On a free-threaded build the native half runs in 16 threads at once (the attached state
    # is read without a lock; the out-of-band buffer lists are per thread).
    q = make_queue(capacity=1 << 16)  # small: puts spill and take the Python path too
    per_thread, threads = 2000, 8
    received: list[list[object]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(2 * threads)

    def producer(index):
        barrier.wait()
        for n in range(per_thread):
            q.put((index, n, np.full(3, n)) if n % 50 == 0 else (index, n))

    def consumer(index):
        barrier.wait()
        for _ in range(per_thread):
            received[index].append(q.get())

    workers = [threading.Thread(target=producer, args=(i,)) for i in range(threads)]
    workers += [threading.Thread(target=consumer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not any(worker.is_alive() for worker in workers)
    seen = sorted((item[0], item[1]) for part in received for item in part)
    assert seen == sorted((i, n) for i in range(threads) for n in range(per_thread))
    for part in received:
        last: dict[int, int] = {}
        for item in part:  # per producer, each consumer sees increasing numbers
            assert item[1] > last.get(item[0], -1)
            last[item[0]] = item[1]
            if len(item) == 3:
                assert (item[2] == item[1]).all()
    assert q.qsize() == 0


def test_the_nowait_calls_of_an_unbounded_queue(make_queue):
    # put(obj, block) and get(block) run natively too: a poll that finds nothing is
    # queue.Empty (not TimeoutError), and `block` is only tested for its truth, as in
    # multiprocessing (an object whose truth cannot be told raises what it raises).
    class NoTruth:
        def __bool__(self):
            raise ZeroDivisionError("no truth")

    q = make_queue()
    for poll in (q.get_nowait, lambda: q.get(False), lambda: q.get(0)):
        with pytest.raises(queue.Empty) as raised:
            poll()
        assert type(raised.value) is queue.Empty
    q.put_nowait("a")
    q.put("b", False)
    q.put("c", True)
    with pytest.raises(ZeroDivisionError):
        q.put("d", NoTruth())
    with pytest.raises(ZeroDivisionError):
        q.get(NoTruth())
    assert [q.get_nowait(), q.get(False), q.get(True)] == ["a", "b", "c"]
    assert q.qsize() == 0
    with pytest.raises(queue.Empty):
        q.get_nowait()


# put_many / get_many (an extension, named as faster-fifo's): natively for an unbounded queue.


def test_put_many_and_get_many_keep_order_across_every_kind_of_message(make_queue):
    q = make_queue(capacity=1 << 16)  # small: runs fill the ring and spill
    big = bytes(range(256)) * 200  # 51 KiB: longer than the ring's largest message
    objs = []
    for n in range(300):
        objs.append(n if n % 7 else (n, np.full(5, n)) if n % 2 else (n, big))
    q.put_many(iter(objs))  # any iterable
    assert q.qsize() == len(objs)
    got = []
    while len(got) < len(objs):
        got += q.get_many(timeout=30, max_messages_to_get=50)
    assert len(got) == len(objs)
    for sent, received in zip(objs, got, strict=True):
        if isinstance(sent, int):
            assert received == sent
        else:
            assert received[0] == sent[0]
            assert (received[1] == sent[1]).all() if sent[0] % 2 else received[1] == big
    assert q.qsize() == 0
    with pytest.raises(queue.Empty):
        q.get_many(False)
    with pytest.raises(queue.Empty):
        q.get_many(timeout=0.01)


def test_put_many_stops_at_an_object_that_cannot_be_pickled(make_queue):
    q = make_queue()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put_many([1, 2, 3, lambda: None, 5])
    assert q.qsize() == 3
    assert q.get_many(False) == [1, 2, 3]
    with pytest.raises(TypeError):
        q.put_many(5)
    assert q.qsize() == 0


def test_get_many_gives_the_objects_taken_before_a_failure(make_queue):
    q = make_queue()
    q.put_many(["a", "b"])
    q._channel.send(b"\x80\x05garbage")
    q.put("after")
    with pytest.raises(Exception) as raised:
        q.get_many(False)
    assert raised.value.taken == ["a", "b"]
    assert q.get_many(False) == ["after"]


def test_get_many_arguments(make_queue):
    q = make_queue()
    q.put_many(range(10))
    assert q.get_many(max_messages_to_get=3) == [0, 1, 2]
    assert q.get_many(True, None, 2) == [3, 4]
    with pytest.raises(ValueError):
        q.get_many(max_messages_to_get=0)
    with pytest.raises(TypeError):
        q.get_many(max_messages_to_get="3")
    assert q.get_many(False, max_messages_to_get=1) == [5]
    assert q.get_many() == [6, 7, 8, 9]


def test_put_many_of_bounded_and_joinable_queues(make_queue):
    bounded = make_queue(None, 3)
    with pytest.raises(queue.Full):
        bounded.put_many(range(5), timeout=0.01)
    assert bounded.qsize() == 3 and bounded.full()
    assert bounded.get_many() == [0, 1, 2]
    joinable = make_queue(ipcxx.JoinableQueue)
    joinable.put_many(range(100))
    assert joinable.get_many() == list(range(100))
    for _ in range(100):
        joinable.task_done()
    assert joinable.join(10)


def test_put_many_in_a_child_get_many_in_the_parent_exactly_once(make_queue):
    q = make_queue(capacity=1 << 16)
    total = 20_000
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for start in range(0, total, 500):
                q.put_many([(start + n, "x" * (n % 40)) for n in range(500)])
            q.close()
            q.join_thread()
            code = 0
        finally:
            os._exit(code)
    got = []
    while len(got) < total:
        got += q.get_many(timeout=60)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert [item[0] for item in got] == list(range(total))
    assert all(item[1] == "x" * (item[0] % 500 % 40) for item in got)


def test_get_many_ends_with_the_stream(make_queue):
    q = make_queue(end_of_stream=True)
    q.declare_producer()
    q.put_many(["x", "y"])
    q.close()
    reader = ipcxx.Queue.open(q.name, end_of_stream=True)
    try:
        assert reader.get_many(timeout=10) == ["x", "y"]
        with pytest.raises(ipcxx.EndOfStream):
            reader.get_many(timeout=10)
    finally:
        reader.close()


@pytest.mark.parametrize("cls", ["Queue", "JoinableQueue"])
def test_argument_errors_name_the_public_method_as_multiprocessing_does(make_queue, cls):
    """put/get are native and hand what they do not take to Python methods: a wrong call must
    still read "Queue.put() missing ..." (multiprocessing's text), not the helper's name."""
    ours = make_queue(getattr(ipcxx, cls))
    theirs = getattr(multiprocessing.get_context("fork"), cls)()
    try:
        calls = [
            lambda q: q.put(),
            lambda q: q.get(True, 1, 2),
            lambda q: q.put(1, bogus=2),
            lambda q: q.get(block=True, x=2),
            lambda q: q.put_nowait(),
        ]
        for call in calls:
            with pytest.raises(TypeError) as expected:
                call(theirs)
            with pytest.raises(TypeError) as got:
                call(ours)
            assert str(got.value) == str(expected.value)
    finally:
        theirs.close()
        theirs.join_thread()

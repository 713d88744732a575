"""An unbounded ipcxx.Queue never blocks put(): a full ring spills into the producer's buffer,
which a feeder thread flushes; join_thread waits for it, cancel_join_thread drops it, and the
exit flushes unless cancelled (issue 18 item 1, multiprocessing's feeder semantics)."""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import subprocess
import sys
import textwrap

import numpy
import pytest

import ipcxx

SMALL = 50_000


def _produce_everything(queue, done):
    """Puts 50 000 objects of 150+ bytes (12 MB: three times the ring) and two 10 MiB arrays
    with nobody consuming, tells the parent that every put returned, then flushes."""
    big = numpy.arange(10 << 18, dtype=numpy.float32)  # 10 MiB
    for number in range(SMALL):
        queue.put((number, b"s" * 150))
        if number == SMALL // 2:
            queue.put(big)
    queue.put(big[::-1].copy())
    done.send(queue.qsize())
    queue.close()
    queue.join_thread()


def _consume_everything(queue, results):
    got = []
    expected_big = numpy.arange(10 << 18, dtype=numpy.float32)
    for number in range(SMALL):
        item = queue.get(timeout=60)
        assert item == (number, b"s" * 150), item[0]
        if number == SMALL // 2:
            array = queue.get(timeout=60)
            assert array.flags.writeable
            got.append(bool(numpy.array_equal(array, expected_big)))
    array = queue.get(timeout=60)
    got.append(bool(numpy.array_equal(array, expected_big[::-1])))
    results.send(got)


def test_producer_puts_everything_before_any_consumer_and_all_arrive_in_order(make_queue):
    context = multiprocessing.get_context("fork")
    queue = make_queue()
    done_read, done_write = context.Pipe(duplex=False)
    producer = context.Process(target=_produce_everything, args=(queue, done_write))
    producer.start()
    results_read, results_write = context.Pipe(duplex=False)
    consumer = None
    try:
        assert done_read.poll(120), "put() blocked with nobody consuming"
        assert done_read.recv() == SMALL + 2  # qsize counts the spilled objects
        consumer = context.Process(target=_consume_everything, args=(queue, results_write))
        consumer.start()
        assert results_read.poll(120), "the consumer did not get everything"
        assert results_read.recv() == [True, True]
        producer.join(60)
        consumer.join(60)
        assert producer.exitcode == 0 and consumer.exitcode == 0
    finally:
        for process in (producer, consumer):
            if process is not None and process.exitcode is None:
                process.kill()
                process.join()
    prefix = queue.name[1:] + ".L"
    assert not [entry for entry in os.listdir("/dev/shm") if entry.startswith(prefix)]
    assert queue.qsize() == 0


_EXITING_PRODUCER = textwrap.dedent(
    """
    import pickle, sys
    import ipcxx
    queue = pickle.loads(bytes.fromhex(sys.argv[1]))
    for number in range(2000):
        queue.put(number)
    if sys.argv[2] == "cancel":
        queue.cancel_join_thread()
    print("put", flush=True)
    """
)


def _run_producer(queue, mode):
    import pickle

    return subprocess.Popen(
        [sys.executable, "-c", _EXITING_PRODUCER, pickle.dumps(queue).hex(), mode],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_exit_of_a_producer_flushes_its_spill_buffer(make_queue):
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    child = _run_producer(queue, "flush")
    try:
        assert child.stdout.readline() == "put\n"
        # The child is exiting but waits for its feeder: everything arrives.
        assert [queue.get(timeout=30) for _ in range(2000)] == list(range(2000))
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait()


def test_cancel_join_thread_lets_the_producer_exit_without_flushing(make_queue):
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    child = _run_producer(queue, "cancel")
    try:
        assert child.stdout.readline() == "put\n"
        assert child.wait(30) == 0  # nobody consumed, yet it exited
    finally:
        child.kill()
        child.wait()
    got = []
    while True:
        try:
            got.append(queue.get(timeout=0))
        except queue_module.Empty:
            break
    assert got == list(range(len(got)))  # what reached the ring, in order
    assert 0 < len(got) < 2000


def test_join_thread_after_close_waits_for_the_flush(make_queue):
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    reader = ipcxx.Queue.open(queue.name)
    context = multiprocessing.get_context("fork")
    results_read, results_write = context.Pipe(duplex=False)
    from tests import queue_workers

    consumer = context.Process(target=queue_workers.consume, args=(reader, 500, results_write))
    consumer.start()
    try:
        for number in range(500):
            queue.put(number)
        queue.close()
        queue.join_thread()
        assert results_read.poll(60)
        assert results_read.recv() == list(range(500))
    finally:
        consumer.join(30)
        if consumer.exitcode is None:
            consumer.kill()
            consumer.join()
        reader.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
@pytest.mark.parametrize("method", ["fork"])
def test_a_fork_child_does_not_resend_the_parents_spilled_objects(make_queue, method):
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    for number in range(300):
        queue.put(number)  # most of them spilled
    pid = os.fork()
    if pid == 0:
        try:
            queue.put("child")
            queue.close()
            queue.join_thread()
        finally:
            os._exit(0)
    got = [queue.get(timeout=30) for _ in range(301)]
    assert os.waitpid(pid, 0)[1] == 0
    assert sorted(x for x in got if x != "child") == list(range(300))
    assert got.count("child") == 1
    with pytest.raises(queue_module.Empty):
        queue.get(timeout=0)


def test_a_producer_moves_its_spill_buffer_into_the_ring_itself(make_queue, monkeypatch):
    """The feeder needs the GIL for every move, and a producer busy in Python code hands it over
    only every switch interval, so a producer about to spill first moves what fits of the spill
    buffer itself. Here no feeder ever starts: only the producer's own puts move the backlog."""
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    monkeypatch.setattr(queue._spill, "_start", lambda: None)
    for number in range(100):
        queue.put((number, b"p" * 40))  # the ring takes a few dozen; the rest spill
    assert queue._pending, "nothing spilled: the test needs a full ring"
    got = []
    marker = 100
    while True:
        _take_everything(queue, got)
        if not queue._pending:
            break
        assert marker < 1000, "the producer's puts do not move the spill buffer"
        queue.put((marker, b""))  # moves what fits of the spill buffer before itself
        marker += 1
    assert [item[0] for item in got] == list(range(marker)), "lost, repeated or out of order"
    assert queue._spill.thread is None


def _race_spill_movers(queue, count, ready):
    """Two threads put `count` objects each (every fifth a 3 KiB one) into a ring a fraction of
    that size, so both threads and the feeder move the spill buffer at once."""
    import threading

    def put_all(tag):
        for number in range(count):
            queue.put((tag, number, b"x" * (3000 if number % 5 == 0 else 8)))

    threads = [threading.Thread(target=put_all, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    ready.send(True)
    for thread in threads:
        thread.join()
    queue.close()
    queue.join_thread()


def test_producers_and_the_feeder_moving_the_spill_buffer_at_once_deliver_each_object_once_in_order(
    make_queue,
):
    context = multiprocessing.get_context("fork")
    queue = make_queue(ipcxx.Queue, 0, capacity=16384)
    count = 8000
    ready_read, ready_write = context.Pipe(duplex=False)
    producer = context.Process(target=_race_spill_movers, args=(queue, count, ready_write))
    producer.start()
    try:
        assert ready_read.poll(60)
        next_of = {"a": 0, "b": 0}
        for _ in range(2 * count):
            tag, number, payload = queue.get(timeout=60)
            assert number == next_of[tag], (tag, number, next_of[tag])
            assert len(payload) == (3000 if number % 5 == 0 else 8)
            next_of[tag] += 1
        producer.join(60)
        assert producer.exitcode == 0
        with pytest.raises(queue_module.Empty):
            queue.get(timeout=0)
    finally:
        if producer.exitcode is None:
            producer.kill()
            producer.join()


def test_spilled_frames_written_into_reused_buffers_arrive_byte_for_byte(make_queue, monkeypatch):
    """Large spilled frames go into buffers already sent (not zeroed: a fresh megabyte costs a
    page fault per page); what the last frame left in the gaps between parts must not matter."""
    queue = make_queue(ipcxx.Queue, 0, capacity=1 << 18)
    monkeypatch.setattr(queue._spill, "_start", lambda: None)
    rng = numpy.random.default_rng(7)
    sent = [
        (number, rng.integers(0, 255, 40_001, dtype=numpy.uint8), rng.random(5_003))
        for number in range(40)
    ]
    spill = queue._spill
    reused = []
    fresh_buffer = spill.buffer

    def buffer(size):
        reused.append(bool(spill.free.get(size)))
        return fresh_buffer(size)

    monkeypatch.setattr(spill, "buffer", buffer)
    got = []
    for number, obj in enumerate(sent):
        queue.put(obj)  # from the fourth on, the ring is full: a spill behind a backlog
        if number % 2:
            got.append(queue.get(timeout=0))  # frees a place for the next put's drain
    while queue._pending or len(got) < len(sent):
        _take_everything(queue, got)
        queue._spill.drain()
    assert sum(reused) > 10, "spilled frames did not go into reused buffers"
    assert [item[0] for item in got] == list(range(len(sent)))
    for (_, small, floats), (_, small_got, floats_got) in zip(sent, got, strict=True):
        assert small_got.tobytes() == small.tobytes() and floats_got.tobytes() == floats.tobytes()


def _take_everything(queue, got):
    """Gets what the ring holds now, then lets the producer's next drain move the backlog."""
    while True:
        try:
            got.append(queue.get(timeout=0))
        except queue_module.Empty:
            return


def test_an_exception_right_after_a_drain_sent_its_batch_does_not_send_it_twice(
    make_queue, monkeypatch
):
    """A producer's drain runs on the producer's thread, so on the main thread a signal
    handler's exception (KeyboardInterrupt) can be raised at the first instruction after
    send_many() returned: the sent messages must not stay in the spill buffer to go again. A
    profile hook raises at the first instruction after the call that sent, as a SIGINT arriving
    during the copy would."""
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    monkeypatch.setattr(queue._spill, "_start", lambda: None)  # only the producer moves
    for number in range(100):
        queue.put((number, b"p" * 40))
    assert queue._pending, "nothing spilled: the test needs a full ring"
    got = []
    _take_everything(queue, got)

    def interrupt(frame, event, arg):
        # The first return from a C call of the spill buffer's code after which the (emptied)
        # ring holds something: the call that sent.
        if (
            event == "c_return"
            and frame.f_code.co_filename.endswith("_spill.py")
            and queue._channel._wait_readable(0)
        ):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            queue.put((1000, b""))  # its drain is interrupted: this one may or may not be put
    finally:
        sys.setprofile(None)
    marker = 1001
    while queue._pending:
        _take_everything(queue, got)
        queue.put((marker, b""))
        marker += 1
    _take_everything(queue, got)
    numbers = [item[0] for item in got if item[0] != 1000]
    assert numbers == list(range(100)) + list(range(1001, marker)), "sent twice or lost"


def test_a_put_from_a_gc_callback_while_the_feeder_lists_the_spill_buffer_loses_nothing(
    make_queue, capfd
):
    """A collection can start at any allocation, also while the feeder (or a drain) lists the
    messages it is about to send, and a gc callback or __del__ that puts appends to the spill
    buffer then: the move must not fail with "deque mutated during iteration" (the feeder
    would report it and drop the oldest message). The put is made to happen right there: the
    spill buffer is a deque whose reads from the feeder thread put first (when and on which
    thread a real collection starts differs between builds)."""
    import collections
    import threading

    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    count = 500
    state = {"busy": False, "puts": 0, "on": True}

    def put_from_the_feeder():
        if (
            state["on"]
            and not state["busy"]
            and threading.current_thread().name == "QueueFeederThread"
        ):
            state["busy"] = True
            try:
                queue.put(("gc", state["puts"]))  # what a gc callback would do here
                state["puts"] += 1
            finally:
                state["busy"] = False

    class PuttingDeque(collections.deque):
        def __getitem__(self, index):
            put_from_the_feeder()
            return super().__getitem__(index)

        def __iter__(self):
            iterator = super().__iter__()
            put_from_the_feeder()  # after the iterator exists, as a collection mid-listing
            return iterator

    pending = PuttingDeque()
    queue._spill.pending = queue._pending = pending
    queue._set_pending(pending)
    for number in range(count):
        queue.put(("main", number, b"m" * 40))
    got = []
    mains = 0
    while mains < count:  # a dropped message: queue.Empty after the timeout
        got.append(queue.get(timeout=10))
        mains += got[-1][0] == "main"
    state["on"] = False
    while len(got) < count + state["puts"]:
        got.append(queue.get(timeout=10))
    assert state["puts"] > 0, "the feeder never listed the spill buffer: the test proves nothing"
    assert [item[1] for item in got if item[0] == "main"] == list(range(count))
    assert [item[1] for item in got if item[0] == "gc"] == list(range(state["puts"]))
    assert "Traceback" not in capfd.readouterr().err


def test_an_exception_right_after_a_drain_took_the_send_lock_does_not_keep_it(
    make_queue, monkeypatch
):
    """A signal handler's exception raised on the main thread right after a drain acquired
    `Spill.sending` must not leave it held: the feeder would wait for it forever."""
    queue = make_queue(ipcxx.Queue, 0, capacity=4096)
    monkeypatch.setattr(queue._spill, "_start", lambda: None)
    for number in range(100):
        queue.put((number, b"p" * 40))
    assert queue._pending, "nothing spilled: the test needs a full ring"

    def interrupt(frame, event, arg):
        # The first return from a C call of the spill buffer's code once the lock is held.
        if (
            event == "c_return"
            and frame.f_code.co_filename.endswith("_spill.py")
            and queue._spill.sending.locked()
        ):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            queue.put((1000, b""))
    finally:
        sys.setprofile(None)
    assert not queue._spill.sending.locked(), "the send lock stays held: the feeder would hang"

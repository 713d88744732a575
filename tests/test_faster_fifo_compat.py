"""ipcxx.compat.faster_fifo.Queue behaves as faster_fifo.Queue (issue 18, item 2): objects across
real processes, get_many's limits, timeouts, Full and Empty, close/is_closed, custom
loads/dumps, children of every start method, and nothing left in /dev/shm."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from queue import Empty, Full

import pytest

from ipcxx.compat import faster_fifo
from ipcxx.compat._fifo_shared import WAITERS
from ipcxx.compat.faster_fifo import Queue, QueueError
from tests import faster_fifo_workers

START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]


def shm_entries(queue: Queue) -> set[str]:
    """The /dev/shm entries of the queue's four objects that exist."""
    base = queue._shared.name[1:]
    wanted = {base, f"{base}.meta", f"{base}.lock", f"sem.{base}.space"}
    return wanted & set(os.listdir("/dev/shm"))


@pytest.fixture
def make_fifo() -> Iterator[Callable[..., Queue]]:
    """make_fifo(...) creates a Queue whose names are removed at teardown, even on failure."""
    made: list[Queue] = []

    def factory(*args: object, **kwargs: object) -> Queue:
        queue = Queue(*args, **kwargs)  # type: ignore[arg-type]
        made.append(queue)
        return queue

    yield factory
    for queue in made:
        queue._finalizer()


def fork_child(body: Callable[[], None]) -> int:
    """Runs body() in a forked child that exits 0 when it returns, 1 when it raises."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            body()
            status = 0
        finally:
            os._exit(status)
    return pid


def exit_status(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_objects_cross_processes_in_order_with_put_get_put_many_get_many(make_fifo):
    requests, replies = make_fifo(), make_fifo()
    child = fork_child(lambda: faster_fifo_workers.echo_doubled(requests, replies, 1000))
    try:
        requests.put(0)
        requests.put_many(list(range(1, 500)))
        for number in range(500, 1000):
            if number % 2:
                requests.put_nowait(number)
            else:
                requests.put(number, timeout=5)
        got: list[int] = []
        while len(got) < 1000:
            got += replies.get_many(timeout=30, max_messages_to_get=64)
        assert got == [2 * number for number in range(1000)]
    finally:
        assert exit_status(child) == 0
    assert requests.qsize() == replies.qsize() == 0
    assert requests.data_size() == replies.data_size() == 0


def test_get_many_stops_at_max_messages_to_get_and_after_max_bytes_to_get(make_fifo):
    queue = make_fifo()
    queue.put_many([b"x" * 100] * 10)
    one = len(pickle.dumps(b"x" * 100)) + 8  # faster-fifo's measure: the size frame counts
    assert queue.data_size() == 10 * one
    assert len(queue.get_many(max_messages_to_get=3)) == 3
    # faster-fifo reads while fewer than max_bytes_to_get bytes were read: the message that
    # crosses the limit is taken, then it stops.
    assert len(queue.get_many(max_messages_to_get=100, max_bytes_to_get=2 * one + 1)) == 3
    queue.max_bytes_to_read = one  # the attribute is the default of max_bytes_to_get
    assert len(queue.get_many()) == 1
    assert queue.qsize() == 3
    queue.max_bytes_to_read = queue.max_size_bytes
    assert queue.get_many_nowait() == [b"x" * 100] * 3


def test_get_raises_empty_after_its_timeout_and_at_once_without_blocking(make_fifo):
    queue = make_fifo()
    start = time.monotonic()
    with pytest.raises(Empty):
        queue.get(timeout=0.2)
    assert time.monotonic() - start >= 0.19
    start = time.monotonic()
    for call in (queue.get_nowait, queue.get_many_nowait, lambda: queue.get(block=False)):
        with pytest.raises(Empty):
            call()
    with pytest.raises(Empty):
        queue.get_many(timeout=0)
    assert time.monotonic() - start < 5  # none waited out the 10 s default (a loaded CI is slow)


def test_default_timeouts_and_sizes_are_faster_fifos():
    assert faster_fifo.DEFAULT_TIMEOUT == 10.0
    assert faster_fifo.DEFAULT_CIRCULAR_BUFFER_SIZE == 1000 * 1000
    assert faster_fifo.Empty is Empty and faster_fifo.Full is Full
    # (max_size_bytes, maxsize, loads, dumps)
    assert Queue.__init__.__defaults__ == (1000 * 1000, int(1e9), None, None)
    assert Queue.get.__defaults__ == (True, 10.0)
    assert Queue.put.__defaults__ == (True, 10.0)


def test_put_raises_full_on_a_full_queue_and_a_waiting_put_gets_the_room_freed(make_fifo):
    queue = make_fifo(200)
    message = b"m" * 20
    size = len(pickle.dumps(message)) + 8
    for _ in range(200 // size):
        queue.put_nowait(message)
    assert queue.full() == (queue.data_size() + 9 > 200)
    with pytest.raises(Full):
        queue.put_nowait(message)
    start = time.monotonic()
    with pytest.raises(Full):
        queue.put(message, timeout=0.2)
    assert time.monotonic() - start >= 0.19
    assert queue.qsize() == 200 // size

    def take_one_once_a_producer_waits() -> None:
        deadline = time.monotonic() + 30
        while queue._shared.words[WAITERS] == 0:  # the parent's put below is asleep
            assert time.monotonic() < deadline
        assert queue.get(timeout=5) == message

    child = fork_child(take_one_once_a_producer_waits)
    try:
        queue.put(message, timeout=30)  # sleeps until the child took one
    finally:
        assert exit_status(child) == 0
    assert queue.qsize() == 200 // size


def test_put_many_is_all_or_nothing(make_fifo):
    queue = make_fifo(1000)
    size = len(pickle.dumps(b"p" * 100)) + 8
    queue.put_many([b"p" * 100] * (1000 // size - 1))
    with pytest.raises(Full):
        queue.put_many_nowait([b"p" * 100] * 2)
    assert queue.qsize() == 1000 // size - 1
    queue.put_many_nowait([b"p" * 100])
    assert queue.qsize() == 1000 // size
    queue.put_many([])  # nothing to put: fits
    assert queue.qsize() == 1000 // size


def test_a_message_that_can_never_fit_raises_full_at_once_naming_the_size(make_fifo):
    queue = make_fifo(1000)
    start = time.monotonic()
    with pytest.raises(Full, match="max_size_bytes=1000"):
        queue.put(b"x" * 1000)  # with its pickle and frame it needs more than 1000 bytes
    with pytest.raises(Full, match="max_size_bytes=1000"):
        queue.put_many([b"x" * 400] * 3)
    assert time.monotonic() - start < 5  # not after the 10 s default timeout
    assert queue.qsize() == 0
    overhead = len(pickle.dumps(b"x" * 900)) - 900
    queue.put(b"x" * (1000 - 8 - overhead))  # exactly fits
    assert queue.data_size() == 1000 and queue.full()


def test_maxsize_counts_messages(make_fifo):
    queue = make_fifo(maxsize=3)
    assert not queue.full()
    queue.put_many([1, 2, 3])
    assert queue.full() and queue.qsize() == 3
    with pytest.raises(Full):
        queue.put_nowait(4)
    assert queue.get() == 1
    assert not queue.full()


def test_close_is_seen_by_other_processes_and_puts_and_gets_still_work(make_fifo):
    queue = make_fifo()
    assert not queue.is_closed() and queue.closed.value is False
    receive, send = multiprocessing.Pipe(duplex=False)
    queue.put("before")
    queue.close()
    child = fork_child(lambda: faster_fifo_workers.report_state(queue, send))
    send.close()
    try:
        closed, size, data, _ = receive.recv()
    finally:
        assert exit_status(child) == 0
    assert closed and size == 1 and data == len(pickle.dumps("before")) + 8
    assert queue.is_closed() and queue.closed.value is True
    queue.put("after")  # faster-fifo's close() is a flag: the queue still works
    assert queue.get_many() == ["before", "after"]
    queue.closed.value = False
    assert not queue.is_closed()


def test_custom_loads_and_dumps_and_loads_receives_a_memoryview(make_fifo):
    queue = make_fifo(loads=faster_fifo_workers.int_loads, dumps=faster_fifo_workers.int_dumps)
    queue.put_many([1, 2])
    assert queue.data_size() == 2 * (4 + 8)
    assert queue.get() == ("memoryview", 1)
    assert queue.get_many() == [("memoryview", 2)]
    # The class-level serializers: used when none is given, and replaceable by a subclass.
    assert Queue.dumps(queue, 5) == pickle.dumps(5)
    assert Queue.loads(queue, memoryview(pickle.dumps(5))) == 5


def test_put_many_refuses_other_than_list_or_tuple_with_queue_error(make_fifo):
    queue = make_fifo()
    with pytest.raises(QueueError, match="list or tuple"):
        queue.put_many(iter([1]))
    assert queue.last_error is not None and "list or tuple" in queue.last_error
    with pytest.raises(TypeError):
        Queue(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Queue(0)


@pytest.mark.parametrize("method", START_METHODS)
def test_children_of_every_start_method_use_the_queue_passed_by_name(make_fifo, method):
    context = multiprocessing.get_context(method)
    requests, replies = make_fifo(), make_fifo()
    tagged = faster_fifo_workers.Tagged()
    tagged.tag = "instance"
    try:
        child = context.Process(
            target=faster_fifo_workers.echo_doubled, args=(requests, replies, 100)
        )
        child.start()
        try:
            requests.put_many(list(range(100)))
            got: list[int] = []
            while len(got) < 100:
                got += replies.get_many(timeout=30)
            assert got == [2 * number for number in range(100)]
        finally:
            child.join(60)
        assert child.exitcode == 0
        receive, send = context.Pipe(duplex=False)
        tagged.put("x")
        child = context.Process(target=faster_fifo_workers.report_state, args=(tagged, send))
        child.start()
        send.close()
        assert receive.recv() == (False, 1, tagged.data_size(), "Tagged")
        child.join(60)
        assert child.exitcode == 0
        copy = pickle.loads(pickle.dumps(tagged))
        assert type(copy) is faster_fifo_workers.Tagged and copy.tag == "instance"
    finally:
        tagged._finalizer()


def test_a_queue_can_be_a_pool_task_argument(make_fifo):
    queue = make_fifo()
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        counts = pool.starmap(faster_fifo_workers.put_range, [(queue, 0, 50), (queue, 50, 50)])
    assert counts == [50, 50]
    got: list[int] = []
    while len(got) < 100:
        got += queue.get_many(timeout=30)
    assert sorted(got) == list(range(100))


CREATE_AND_END = """
import os, signal, sys
from multiprocessing import resource_tracker
from ipcxx.compat.faster_fifo import Queue

queue = Queue(10000)
queue.put("kept")
base = queue._shared.name[1:]
resource_tracker.ensure_running()
print(base, resource_tracker._resource_tracker._pid, flush=True)
sys.stdin.readline()
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_nothing_is_left_in_dev_shm_when_the_creator_exits_or_is_killed(spawn, ending):
    child = spawn(textwrap.dedent(CREATE_AND_END), ending)
    base, tracker = child.read_line().split()
    names = {base, f"{base}.meta", f"{base}.lock", f"sem.{base}.space"}
    try:
        assert names <= set(os.listdir("/dev/shm"))
        # The tracker removes what a killed creator left when the last process sharing it is
        # gone, then exits: wait for its exit through a pidfd (it is not our child).
        watcher = os.pidfd_open(int(tracker))
        child.send_line("")
        child.process.wait(timeout=30)
        assert select.select([watcher], [], [], 30)[0], "the resource tracker did not exit"
        os.close(watcher)
        assert not names & set(os.listdir("/dev/shm"))
    finally:
        import posix_ipc

        for name in names:  # removed even when the test fails
            try:
                if name.startswith("sem."):
                    posix_ipc.unlink_semaphore("/" + name[4:])
                else:
                    posix_ipc.unlink_shared_memory("/" + name)
            except posix_ipc.ExistentialError:
                pass


def test_a_collected_queue_removes_its_names_and_a_fork_childs_copy_does_not():
    queue = Queue()
    remove = queue._finalizer
    try:
        names = shm_entries(queue)
        assert len(names) == 4
        child = fork_child(remove)  # the child's copy: not the creator
        assert exit_status(child) == 0
        assert shm_entries(queue) == names
        del queue
        assert not names & set(os.listdir("/dev/shm"))
    finally:
        remove()


def test_threads_share_one_queue_object(make_fifo):
    import threading

    queue = make_fifo(2000)
    got: list[int] = []

    def consume() -> None:
        while len(got) < 4000:
            try:
                got.extend(queue.get_many(timeout=0.05))
            except Empty:
                pass

    threads = [
        threading.Thread(target=faster_fifo_workers.put_range, args=(queue, first, 1000))
        for first in range(0, 4000, 1000)
    ] + [threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(got) == list(range(4000))
    assert queue.qsize() == 0 and queue.data_size() == 0


def test_kill_minus_nine_of_a_producer_blocked_on_a_full_queue_leaves_the_queue_usable(
    make_fifo,
):
    queue = make_fifo(300)
    while True:
        try:
            queue.put_nowait(b"f" * 10)
        except Full:
            break
    child = os.fork()
    if child == 0:
        try:
            queue.put(b"f" * 10, timeout=60)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while queue._shared.words[WAITERS] == 0:  # the child is asleep waiting for room
        assert time.monotonic() < deadline
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    size = queue.qsize()
    queue.get()
    queue.put(b"f" * 10, timeout=5)
    assert queue.qsize() == size


def test_a_process_killed_holding_the_accounting_lock_does_not_block_the_others(make_fifo):
    queue = make_fifo()
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            queue._shared.lock.acquire()
            os.write(ready_write, b"r")
            signal.pause()
        finally:
            os._exit(0)
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"r"
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready_read)
    queue.put("after the death", timeout=5)
    assert queue.get(timeout=5) == "after the death"
    assert queue.qsize() == 0

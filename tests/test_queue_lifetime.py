"""Queues pickle by name (Process, Pool and ProcessPoolExecutor task arguments under every start
method), anonymous ones leave nothing in /dev/shm once every process using them exited or was
killed (multiprocessing's resource tracker), named ones stay until unlinked (issue 18 item 3)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import select
import signal
import subprocess
import sys
import textwrap

import pytest

import ipcxx
from tests import queue_workers
from tests.queue_workers import START_METHODS


def _leftovers(name: str) -> list[str]:
    base = name[1:]
    return [
        entry
        for entry in os.listdir("/dev/shm")
        if entry == base or entry.startswith(base + ".") or entry.startswith("sem." + base)
    ]


def test_a_pickled_queue_is_the_same_queue(make_queue):
    queue = make_queue(ipcxx.JoinableQueue, 5)
    copy = pickle.loads(pickle.dumps(queue))
    try:
        assert type(copy) is ipcxx.JoinableQueue and copy.name == queue.name
        copy.put("through the copy")
        assert queue.get(timeout=10) == "through the copy"
        assert copy.qsize() == 0
        queue.task_done()
        assert copy.join(timeout=10)
    finally:
        copy.close()


@pytest.mark.parametrize("method", START_METHODS)
def test_pool_and_executor_task_arguments(make_queue, method):
    queue = make_queue()
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        pids = pool.starmap(queue_workers.put_one, [(queue, n) for n in range(6)])
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        pids += list(executor.map(queue_workers.put_one, [queue] * 3, range(6, 9)))
    assert sorted(queue.get(timeout=30) for _ in range(9)) == list(range(9))
    assert os.getpid() not in pids


_TREE = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from multiprocessing import resource_tracker
    import ipcxx
    from tests import queue_workers

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        queue = ipcxx.Queue(capacity=1 << 16)
        queue.put(b"b" * (1 << 20))  # a side segment nobody takes
        queue.put("ring")
        children = [context.Process(target=queue_workers.echo_pid, args=(queue,)) for _ in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join()
        print(queue.name, resource_tracker._resource_tracker._pid, flush=True)
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _wait_exit(pid: int, timeout: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_an_anonymous_queue_leaves_nothing_when_its_processes_are_gone(method, ending):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", _TREE, method, ending],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        name, tracker = child.stdout.readline().split()
        child.wait(60)
    finally:
        child.kill()
        child.wait()
    assert _wait_exit(int(tracker), 60), "the resource tracker did not finish"
    assert _leftovers(name) == []
    assert name.startswith("/ipcxx_q_")


def test_an_anonymous_queue_is_removed_when_its_creator_collects_it():
    queue = ipcxx.Queue()
    name = queue.name
    queue.put(1)
    assert _leftovers(name)
    del queue
    import gc

    gc.collect()
    assert _leftovers(name) == []


_KILLED_USERS = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from multiprocessing import resource_tracker
    import ipcxx
    from tests import queue_workers

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        queue = ipcxx.Queue(capacity=1 << 16)
        ready_read, ready_write = context.Pipe(duplex=False)
        children = [
            context.Process(target=queue_workers.produce_forever, args=(queue, 1, ready_write)),
            context.Process(target=queue_workers.consume_forever, args=(queue, ready_write)),
        ]
        for child in children:
            child.start()
        assert ready_read.poll(60) and ready_read.poll(60)
        ready_read.recv(); ready_read.recv()
        print(queue.name, resource_tracker._resource_tracker._pid,
              *[child.pid for child in children], flush=True)
        signal.pause()
    """
)


@pytest.mark.parametrize("method", START_METHODS)
def test_kill_9_of_every_user_of_an_anonymous_queue_leaves_nothing(method):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_USERS, method],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    pids: list[int] = []
    try:
        name, tracker, *others = child.stdout.readline().split()
        pids = [int(pid) for pid in others]
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.kill()
        child.wait()
    for pid in pids:
        assert _wait_exit(pid, 30)
    assert _wait_exit(int(tracker), 60), "the resource tracker did not finish"
    assert _leftovers(name) == []


def test_a_named_queue_outlives_its_processes_until_unlinked(make_name):
    name = make_name()
    queue = ipcxx.Queue(name=name)
    try:
        queue.put("kept")
        queue.close()
        del queue
        reopened = ipcxx.Queue.open(name)
        assert reopened.get(timeout=10) == "kept"
        reopened.unlink()
        assert _leftovers(name) == []
        reopened.close()
    finally:
        ipcxx.unlink_queue(name)

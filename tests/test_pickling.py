"""ipcxx.Channel and ipcxx.RobustLock pickle by name and reopen in the receiving process, under
every multiprocessing start method (issue 17, item 2)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle

import pytest

import ipcxx
from tests import pickling_workers

START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]


@pytest.fixture
def channel(make_name):
    made = ipcxx.Channel(make_name(), create=True, capacity=1 << 16)
    yield made
    made.close()


@pytest.fixture
def lock(make_name):
    made = ipcxx.RobustLock(make_name(), create=True)
    yield made
    made.close()


def test_a_pickled_channel_reopens_the_same_ring(channel):
    copy = pickle.loads(pickle.dumps(channel))
    try:
        assert type(copy) is ipcxx.Channel
        assert copy is not channel
        assert copy.name == channel.name
        assert copy.capacity == channel.capacity
        channel.send(b"through the original")
        assert copy.receive(timeout=5) == b"through the original"
        copy.send(b"through the copy")
        assert channel.receive(timeout=5) == b"through the copy"
    finally:
        copy.close()


def test_a_pickled_channel_keeps_a_fixed_spin_and_the_adaptive_default(channel):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(channel, protocol))
        assert copy.spin is None
        copy.close()
    channel.spin = 0.0002
    copy = pickle.loads(pickle.dumps(channel))
    assert copy.spin == pytest.approx(0.0002)
    copy.close()


def test_a_pickled_lock_is_the_same_lock_and_not_held_by_the_copy(lock):
    copy = pickle.loads(pickle.dumps(lock))
    try:
        assert copy.name == lock.name
        assert lock.acquire(timeout=0)
        assert copy.locked()
        # Ownership is per thread, not carried by pickling: the copy does not hold it.
        with pytest.raises(RuntimeError):
            copy.release()
        lock.release()
        assert copy.acquire(timeout=0)
        assert lock.locked()
        copy.release()
    finally:
        copy.close()


def test_subclasses_pickle_as_themselves(make_name):
    class Tagged(ipcxx.Channel):
        pass

    # A local class cannot be found by name; a module-level subclass can.
    global _ModuleLevelChannel
    _ModuleLevelChannel = type("_ModuleLevelChannel", (ipcxx.Channel,), {"__module__": __name__})
    made = _ModuleLevelChannel(make_name(), create=True, capacity=1 << 12)
    try:
        copy = pickle.loads(pickle.dumps(made))
        assert type(copy) is _ModuleLevelChannel
        copy.close()
        with pytest.raises((AttributeError, pickle.PicklingError)):
            pickle.dumps(Tagged(made.name))
    finally:
        made.close()


class _Creating(ipcxx.Channel):
    """A subclass whose __init__ creates and takes other arguments."""

    def __init__(self, tag: str, name: str) -> None:
        super().__init__(name, create=True, capacity=8192)
        self.tag = tag


def test_unpickling_a_subclass_opens_without_its_init_and_keeps_its_attributes(make_name):
    name = make_name()
    made = _Creating("hello", name)
    try:
        made.send(b"queued")
        copy = pickle.loads(pickle.dumps(made))
        assert type(copy) is _Creating and copy.tag == "hello"
        assert copy.receive(timeout=5) == b"queued"
        copy.close()
        data = pickle.dumps(made)
        made.unlink()
        with pytest.raises(FileNotFoundError):  # never created by the subclass's __init__
            pickle.loads(data)
    finally:
        made.close()


def test_closed_objects_and_views_do_not_pickle(channel, lock, make_name):
    closed_channel = ipcxx.Channel(channel.name)
    closed_channel.close()
    with pytest.raises(ValueError, match="closed Channel"):
        pickle.dumps(closed_channel)
    closed_lock = ipcxx.RobustLock(lock.name)
    closed_lock.close()
    with pytest.raises(ValueError, match="closed RobustLock"):
        pickle.dumps(closed_lock)
    with channel.reserve(4) as view:
        with pytest.raises(TypeError):
            pickle.dumps(view)
        view[:] = b"done"
    assert channel.receive(timeout=5) == b"done"


def test_unpickling_after_unlink_raises_file_not_found(make_name):
    made = ipcxx.Channel(make_name(), create=True, capacity=1 << 12)
    data = pickle.dumps(made)
    made.unlink()
    made.close()
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)


def _reports(channel: ipcxx.Channel, count: int) -> list[tuple[int, str, bool]]:
    reports = []
    for _ in range(count):
        pid, spin, acquired = channel.receive(timeout=60).decode().split()
        reports.append((int(pid), spin, acquired == "True"))
    return reports


@pytest.mark.parametrize("method", START_METHODS)
def test_process_arguments_under_every_start_method(channel, lock, method):
    context = multiprocessing.get_context(method)
    channel.spin = 0.0001
    # The children send one after the other (the lock orders them): without this, the first
    # one's close could end the stream before the second declared itself (docs/channel.md,
    # "End of stream").
    channel.declare_producer()
    children = [
        context.Process(target=pickling_workers.report, args=(channel, lock)) for _ in range(2)
    ]
    for child in children:
        child.start()
    try:
        reports = _reports(channel, 2)
    finally:
        for child in children:
            child.join(60)
    assert sorted(pid for pid, _, _ in reports) == sorted(child.pid for child in children)
    assert all(pid != os.getpid() for pid, _, _ in reports)
    assert all(spin == "0.0001" and acquired for _, spin, acquired in reports)
    assert [child.exitcode for child in children] == [0, 0]
    assert not lock.locked()


@pytest.mark.parametrize("method", START_METHODS)
def test_pool_initargs_and_task_arguments(channel, method):
    context = multiprocessing.get_context(method)
    with context.Pool(2, initializer=pickling_workers.initialise, initargs=(channel,)) as pool:
        pids = pool.map(pickling_workers.send_through_initialised, range(8))
        pids += pool.starmap(
            pickling_workers.send_through_argument, [(channel, n) for n in range(8, 12)]
        )
    received = sorted(int.from_bytes(channel.receive(timeout=30), "little") for _ in range(12))
    assert received == list(range(12))
    assert os.getpid() not in pids


@pytest.mark.parametrize("method", START_METHODS)
def test_process_pool_executor_initializer_and_tasks(channel, method):
    context = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=context, initializer=pickling_workers.initialise, initargs=(channel,)
    ) as executor:
        pids = list(executor.map(pickling_workers.send_through_initialised, range(5)))
        pids.append(executor.submit(pickling_workers.send_through_argument, channel, 5).result())
    received = sorted(int.from_bytes(channel.receive(timeout=30), "little") for _ in range(6))
    assert received == list(range(6))
    assert os.getpid() not in pids

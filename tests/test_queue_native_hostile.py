"""ipcxx.Queue's native half (python/src/extensions/queue_core.cpp) against hostile use: its
private methods called with wrong arguments, objects made without __init__, __init__ called
again, reentrant pickling. Each must end in a Python exception or a correct result, never in a
crash or in a queue whose halves disagree."""

from __future__ import annotations

import functools
import os
import pickle
import queue
import subprocess
import sys
import textwrap

import pytest

import ipcxx
import posix_ipc
from ipcxx._ipcxx import _QueueCore
from ipcxx.queues import _shared


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter: a crash there fails the test, not the suite."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_attach_refuses_what_is_not_a_channel():
    # The Channel check looked the module state up from the argument's type: for an int (or
    # any type not of the module) that state is null, and the check dereferenced it.
    child = run_child(
        """
        import pickle
        from ipcxx._ipcxx import _QueueCore
        rest = (pickle.dumps, pickle.loads, "/x", None, None, LookupError)
        for channel in (1, None, "ring", object(), _QueueCore()):
            try:
                _QueueCore()._attach(channel, [], *rest)
            except TypeError as error:
                assert "Channel" in str(error), error
            else:
                raise AssertionError("accepted")
        print("refused")
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["refused"]


def test_a_queue_attach_with_a_foreign_channel_argument_raises(make_queue):
    q = make_queue()
    with pytest.raises(TypeError, match="Channel"):
        q._attach(1, q._pending, pickle.dumps, pickle.loads, "/x", None, None, queue.Empty)
    items = _shared.Shared.semaphore_names(q.name)[0]
    with pytest.raises(RuntimeError, match="twice"):  # a Channel, but it is attached already
        q._attach(q._channel, [], pickle.dumps, pickle.loads, items, None, None, queue.Empty)
    q.put(("still", 1))
    assert q.get() == ("still", 1)


def test_the_bare_native_base_raises_for_every_method():
    core = _QueueCore()
    with pytest.raises(AttributeError):
        core.put(1)
    with pytest.raises(AttributeError):
        core.get()
    with pytest.raises(TypeError):
        core._attach()
    assert core._set_pending([]) is None and core._core_close() is None


def test_a_queue_made_without_init_raises_for_put_and_get():
    q = ipcxx.Queue.__new__(ipcxx.Queue)
    with pytest.raises(AttributeError):
        q.put(1)
    with pytest.raises(AttributeError):
        q.get()
    with pytest.raises(AttributeError):
        q.get(timeout=0)


@pytest.mark.parametrize("cls", [ipcxx.Queue, ipcxx.JoinableQueue, ipcxx.SimpleQueue])
def test_init_called_again_is_refused_before_it_changes_anything(make_queue, cls):
    # Before: the second __init__ made a new queue (an anonymous one nobody removes), pointed
    # the Python half at it and then failed in _attach(), so put() went to the first ring
    # while name and qsize() were the second's.
    q = make_queue(cls)
    name = q.name
    with pytest.raises(RuntimeError, match="__init__"):
        q.__init__()
    assert q.name == name
    q.put("x")
    if cls is not ipcxx.SimpleQueue:
        assert q.qsize() == 1
    other = pickle.loads(pickle.dumps(q))  # another handle, opened by name
    try:
        assert other.get() == "x"
    finally:
        other.close()


class Nested:
    """Puts a shallower Nested to `target` from inside its own pickling."""

    target = None

    def __init__(self, depth):
        self.depth = depth

    def __reduce__(self):
        if self.depth:
            Nested.target.put(Nested(self.depth - 1))
        return (Nested, (self.depth,))


def test_a_reduce_that_puts_recursively_keeps_the_order_and_counts(make_queue):
    q = Nested.target = make_queue()
    try:
        q.put(Nested(5))
        assert [q.get().depth for _ in range(6)] == [0, 1, 2, 3, 4, 5]
        assert q.qsize() == 0
    finally:
        Nested.target = None


class Closes:
    target = None

    def __reduce__(self):
        Closes.target.close()
        return (int, (5,))


def test_a_reduce_that_closes_the_queue_counts_nothing(make_queue):
    q = Closes.target = make_queue()
    try:
        with pytest.raises(ValueError, match="closed"):
            q.put(Closes())
        assert q._items.value == 0
    finally:
        Closes.target = None


class Uses:
    """Uses `target` from inside its own unpickling (in the native get)."""

    target = None

    def __init__(self, action):
        self.action = action

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.action == "put":
            Uses.target.put("from setstate")
        elif self.action == "get":
            self.got = Uses.target.get()


def test_a_setstate_that_uses_the_queue_during_a_native_get(make_queue):
    q = Uses.target = make_queue()
    try:
        q.put(Uses("put"))
        assert q.get().action == "put" and q.get() == "from setstate"
        q.put(Uses("get"))
        q.put("second")
        assert q.get().got == "second" and q.qsize() == 0
    finally:
        Uses.target = None


@pytest.mark.parametrize("cls", [ipcxx.Queue, ipcxx.JoinableQueue])
def test_the_unbound_put_and_get_pickle_as_before(make_queue, cls):
    # A task such as pool.map(functools.partial(Queue.put, q), ...) pickles the method. As a
    # Python function it pickled by name; as the native base's method it pickled by its type's
    # name, "ipcxx._QueueCore", which the ipcxx package does not have (PicklingError).
    q = make_queue(cls)
    assert pickle.loads(pickle.dumps(cls.put)) is cls.put
    assert pickle.loads(pickle.dumps(cls.get)) is cls.get
    put = pickle.loads(pickle.dumps(functools.partial(cls.put, q)))
    get = pickle.loads(pickle.dumps(functools.partial(cls.get, q)))
    try:
        put(("by", "partial"))
        assert get() == ("by", "partial")
    finally:
        put.args[0].close()
        get.args[0].close()


def test_an_empty_foreign_message_is_refused_not_the_last_object_again(make_queue):
    # The Python receive (get with a timeout, SimpleQueue.get) unpickled its reused buffer
    # without looking at the size: an empty message gave the previous object a second time;
    # the native get() raised IndexError.
    q = make_queue()
    simple = make_queue(ipcxx.SimpleQueue)
    custom = make_queue(dumps=pickle.dumps, loads=pickle.loads)
    takes = [(q, q.get), (q, lambda: q.get(timeout=10)), (simple, simple.get)]
    takes.append((custom, custom.get))
    for target, take in takes:
        target.put({"only": "once"})
        assert take() == {"only": "once"}
        target._channel.send(b"")
        with pytest.raises(ValueError, match="not a queue message"):
            take()
        target.put("next")
        assert take() == "next"


def test_a_foreign_side_segment_name_is_refused_and_nothing_is_removed(make_queue, make_name):
    # A message naming a side segment that is not this queue's (any writer of the ring can
    # send one) must not make the consumer open or remove that segment.
    victim_name = make_name()
    victim = posix_ipc.SharedMemory(victim_name, posix_ipc.O_CREX, size=4096)
    try:
        q = make_queue()
        others = [victim_name, q.name + ".L", q.name + ".L1.2x", q.name + ".Lx.1", "/" + q.name]
        for name in others:
            q._channel.send(b"\x03" + name.encode())
            with pytest.raises(ValueError, match="side segment"):
                q.get(timeout=10)
        assert os.path.exists("/dev/shm" + victim_name)
        q.put(("still", 1))
        assert q.get(timeout=10) == ("still", 1)
    finally:
        victim.close_fd()
        victim.unlink()


def test_a_truncated_pickle_never_reads_the_previous_message(make_queue):
    # The Python receive copies into a reused scratch buffer: a foreign message that is only
    # the start of a pickle must fail, not unpickle the rest of the previous object's bytes.
    q = make_queue()
    whole = pickle.dumps({"previous": "object"}, 5)
    for get in (q.get, lambda: q.get(timeout=10), lambda: q.get(True, 10)):
        q.put({"previous": "object"})
        assert get() == {"previous": "object"}
        q._channel.send(whole[:5])
        with pytest.raises((pickle.UnpicklingError, EOFError, ValueError)):
            get()

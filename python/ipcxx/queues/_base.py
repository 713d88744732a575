"""What every ipcxx queue shares: creating or opening its kernel objects, turning objects into
ring messages and back, pickling the queue itself by name, and the reset after fork()."""

from __future__ import annotations

import os
import pickle
import weakref
from collections.abc import Callable
from multiprocessing import util
from queue import Empty
from typing import Any, Generic, TypeVar

import posix_ipc

from .._ipcxx import _QueueCore
from . import _segments, _shared
from ._framing import CUSTOM, PICKLE, SIDE, Frame, decode
from ._spill import Spill

T = TypeVar("T")

# The ring of a queue made without `capacity`: 4 MiB, so a 1 MiB numpy array fits in the ring
# (the largest message is capacity / 2 - 16 bytes) while a 64 MiB /dev/shm holds a dozen queues.
DEFAULT_CAPACITY = 4 << 20

_dumps = pickle.dumps
# Messages up to this size are received into a reusable buffer; longer ones are read in place.
_SCRATCH = 16384
_loads = pickle.loads
_SIDE_BYTE = bytes([SIDE])
_CUSTOM_BYTE = bytes([CUSTOM])

# Queues of this process, reset in a fork child (their spill buffer belongs to the parent).
_live: weakref.WeakSet[QueueBase[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for queue in list(_live):
        try:
            queue._after_fork()
        except Exception:  # a hook must not fail the fork; the queue reports on its next use
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)


class _SideName(str):
    """A received message that names a side segment (read after the ring record is freed)."""


def _reopen(cls: type[QueueBase[Any]], name: str, tracked: bool, settings: dict[str, Any]) -> Any:
    queue = cls.__new__(cls)
    queue._setup(_shared.Shared.open(name, cls._joinable, tracked), settings)
    return queue


class QueueBase(_QueueCore, Generic[T]):
    """The common part of Queue, SimpleQueue and JoinableQueue (not public). Its native base
    runs Queue's put(obj) and get() (python/src/extensions/queue_core.cpp); the methods below
    whose names it calls (_put_slow, _put_pickled, _put_counted, _get_slow, _decode_taken) own
    every other case."""

    _joinable = False
    _spills = True  # Queue: a full ring never blocks put(); SimpleQueue: put() waits

    def __init__(
        self,
        maxsize: int = 0,
        *,
        name: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        mode: int = 0o600,
        end_of_stream: bool = False,
        dumps: Callable[[Any], bytes] | None = None,
        loads: Callable[[memoryview], Any] | None = None,
    ) -> None:
        if hasattr(self, "_shared"):
            # Checked before anything is made: the native half is attached once (its put() and
            # get() read it without a lock), so a second queue behind this object would split
            # it between two rings (as Channel.__init__ refuses).
            raise RuntimeError(f"{type(self).__name__}.__init__ called twice")
        if (dumps is None) != (loads is None):
            raise ValueError("dumps and loads go together: pass both or neither")
        if maxsize < 0:
            maxsize = 0  # multiprocessing: maxsize <= 0 is unbounded
        shared = _shared.Shared.create(name, maxsize, self._joinable, capacity, mode)
        settings = {"end_of_stream": end_of_stream, "dumps": dumps, "loads": loads}
        self._setup(shared, settings)
        if shared.tracked:
            # The creator removes an anonymous queue's name when it collects it or exits; the
            # resource tracker removes it when every process dies first (docs/queue.md,
            # "Lifetime"). Side segments whose names are still in the ring stay for the
            # processes that have the queue open: their consumer or the tracker removes them.
            self._unlinker: util.Finalize | None = util.Finalize(
                self, _shared.unlink, (shared.name, True, False), exitpriority=-10
            )

    def _setup(self, shared: _shared.Shared, settings: dict[str, Any]) -> None:
        self._shared = shared
        self._name = shared.name
        self._settings = settings
        self._end_of_stream: bool = settings["end_of_stream"]
        self._custom_dumps: Callable[[Any], bytes] | None = settings["dumps"]
        self._custom_loads: Callable[[memoryview], Any] | None = settings["loads"]
        self._channel = shared.channel
        self._max = shared.channel.max_message_size
        self._items = shared.items
        self._slots = shared.slots
        self._tasks = shared.tasks
        self._closed = False
        if not hasattr(self, "_unlinker"):
            self._unlinker = None
        self._spill = Spill(shared.channel)
        self._pending = self._spill.pending
        self._scratches: list[bytearray] = []
        self._closer: util.Finalize | None = None
        self._pid = os.getpid()
        if not self._end_of_stream:
            # Like a pipe end that every holder keeps open: the stream never ends while any
            # handle lives, so programs that never close behave as with multiprocessing.
            self._channel.declare_producer()
        if self._custom_dumps is None:
            items, slots, tasks = _shared.Shared.semaphore_names(shared.name)
            try:
                self._attach(
                    self._channel,
                    self._pending,
                    _dumps,
                    _loads,
                    items,
                    slots if shared.slots is not None else None,
                    tasks if shared.tasks is not None else None,
                    Empty,
                )
            except OSError:  # a semaphore removed since Shared opened it: the Python path
                pass
        _live.add(self)

    def _after_fork(self) -> None:
        self._spill = Spill(self._channel)
        self._pending = self._spill.pending
        self._set_pending(self._pending)
        self._closer = None
        if not self._closed and not self._end_of_stream:
            self._channel.declare_producer()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._closed:
            raise ValueError(f"cannot pickle a closed {type(self).__name__}")
        return (_reopen, (type(self), self._name, self._shared.tracked, self._settings))

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<ipcxx.{type(self).__name__} {self._name!r}{state}>"

    @property
    def name(self) -> str:
        """The queue's name: the ring's, the semaphores' and side segments' prefix."""
        return self._name

    @property
    def capacity(self) -> int:
        """The ring's size in bytes (objects larger than half of it go to side segments)."""
        return self._channel.capacity

    def declare_producer(self) -> None:
        """end_of_stream=True queues: counts this handle as a producer now, before its first
        put(), so that the stream cannot end in between (docs/queue.md, "End of stream")."""
        self._channel.declare_producer()

    # -- objects to messages ------------------------------------------------------------------

    def _frame(self, obj: Any) -> tuple[bytes, list[pickle.PickleBuffer] | None]:
        dumps = self._custom_dumps
        if dumps is None:
            buffers: list[pickle.PickleBuffer] = []
            return _dumps(obj, 5, buffer_callback=buffers.append), buffers
        return _CUSTOM_BYTE + bytes(dumps(obj)), None

    def _send(self, data: bytes, buffers: list[pickle.PickleBuffer] | None, block: bool) -> None:
        """Puts one framed object into the ring (or a side segment and its name into the ring);
        when the ring is full, waits (`block`) or spills."""
        frame: Frame | bytes = Frame(data, buffers) if buffers else data
        size = frame.size if isinstance(frame, Frame) else len(frame)
        channel = self._channel
        pending = self._pending
        if size > self._max:
            frame = (
                _SIDE_BYTE
                + _segments.write(
                    self._name, frame, self._shared.tracked, self._shared.side_mode
                ).encode()
            )
            size = len(frame)
        if pending and not block:
            self._spill.drain()  # the feeder may wait for the GIL this thread holds
        if isinstance(frame, Frame):
            if block:
                with channel.reserve(size) as view:
                    frame.write(view)
                return
            if not pending:
                try:
                    with channel.reserve(size, 0) as view:
                        frame.write(view)
                    return
                except TimeoutError:
                    pass
            frame = frame.to_bytes(self._spill.buffer(frame.size))
        if block:
            channel.send(frame)
            return
        if not pending:
            try:
                channel.send(frame, 0)
                return
            except TimeoutError:
                pass
        if self._closer is None:
            if self._end_of_stream:
                channel.declare_producer()  # the stream must not end while this buffer holds
            # At exit or collection, the feeder ends after flushing (multiprocessing's order).
            self._closer = util.Finalize(self, self._spill.stop, (False,), exitpriority=10)
        self._spill.push(frame)

    # -- messages to objects ------------------------------------------------------------------

    def _receive(self, timeout: float | None) -> Any:
        """Takes the next object (TimeoutError, EndOfStream) and accounts for it. A message that
        fits a scratch buffer (most do) is copied into it and unpickled from there: one call
        into the ring and no allocation. A longer one is unpickled from the ring itself (peek),
        its out-of-band buffers copied out once."""
        if self._custom_loads is not None:
            return self._receive_bytes(timeout)
        scratches = self._scratches
        try:
            scratch = scratches.pop()  # one per thread that is inside this call
        except IndexError:
            scratch = bytearray(_SCRATCH)
        try:
            size = self._channel.receive_into(scratch, timeout)
        except ValueError:
            scratches.append(scratch)
            if self._channel.closed:
                raise
            return self._receive_in_place(timeout)  # longer than the scratch: still queued
        except BaseException:
            scratches.append(scratch)
            raise
        try:
            # Only this message's bytes: a truncated or empty (foreign) one must not read on
            # into the previous message's bytes left in the scratch buffer.
            with memoryview(scratch) as whole, whole[:size] as view:
                obj = _loads(view) if size and view[0] == PICKLE else self._decode_message(view)
        finally:
            scratches.append(scratch)
            try:
                self._items.acquire(0)
            except posix_ipc.BusyError:  # a message not put by a queue, or a count a death left
                pass
            if self._slots is not None:
                self._slots.release()
        if type(obj) is _SideName:
            return self._take_side(obj)
        return obj

    def _put_pickled(self, data: bytes, buffers: list[pickle.PickleBuffer] | None) -> None:
        """Counts and puts an object already pickled (not counted yet): the rest of _put_slow,
        and of a native put(obj) whose pickle has out-of-band buffers or is longer than the
        ring's largest message."""
        self._items.release()
        if self._tasks is not None:
            self._tasks.release()
        self._put_counted(data, buffers)

    def _put_counted(self, data: bytes, buffers: list[pickle.PickleBuffer] | None = None) -> None:
        """The rest of a native put(obj) whose message is counted: into the ring or, when it has
        no room, the spill buffer; uncounted if that fails."""
        try:
            self._send(data, buffers, False)
        except BaseException:
            self._uncount_put()
            raise

    def _decode_taken(self, message: bytes) -> Any:
        """The object in a message the native get() took (counted) that is not a plain pickle."""
        with memoryview(message) as view:
            obj = self._decode_message(view)
        if type(obj) is _SideName:
            return self._take_side(obj)
        return obj

    def _decode_message(self, view: memoryview) -> Any:
        if not view:  # only a foreign sender writes one (q._channel.send(b""))
            raise ValueError("not a queue message (empty)")
        if view[0] == SIDE:
            return _SideName(bytes(view[1:]).decode())
        return decode(view, self._custom_loads, True)

    def _receive_in_place(self, timeout: float | None) -> Any:
        holder = self._channel.peek(timeout)
        try:
            with holder as view:
                obj = _loads(view) if view[0] == PICKLE else self._decode_message(view)
        finally:
            self._taken()
        if type(obj) is _SideName:
            return self._take_side(obj)
        return obj

    def _receive_bytes(self, timeout: float | None) -> Any:
        """With a user's loads: it gets a memoryview of a bytes object of its own (it may keep
        it), never of shared or reused memory."""
        message = self._channel.receive(timeout)
        try:
            with memoryview(message) as view:
                obj = self._decode_message(view)
        finally:
            self._taken()
        if type(obj) is _SideName:
            return self._take_side(obj)
        return obj

    def _uncount_put(self) -> None:
        """Takes back the counts of a put that raised before its message was in the ring or in
        the spill buffer (a full /dev/shm for a side segment, a closed channel, a signal)."""
        try:
            self._items.acquire(0)
        except posix_ipc.BusyError:  # a consumer's uncount raced ahead: nothing to take back
            pass
        tasks = self._tasks
        if tasks is not None:
            try:
                tasks.acquire(0)
            except posix_ipc.BusyError:
                pass
        if self._slots is not None:
            self._slots.release()

    def _taken(self) -> None:
        try:
            self._items.acquire(0)
        except posix_ipc.BusyError:  # a message not put by a queue (or a count left by a death)
            pass
        if self._slots is not None:
            self._slots.release()

    def _take_side(self, name: str) -> Any:
        # A name written into the ring by anyone but this queue's producers is refused before
        # anything is opened: the consumer would otherwise remove a segment of its choosing.
        if not _segments.own_name(self._name).fullmatch(name[1:]):
            raise ValueError(f"not a queue message (a side segment {name!r} of another queue)")
        view, mapped = _segments.take(name, self._shared.tracked)
        try:
            # The objects view the segment's pages (no copy; privately mapped: a write copies).
            return decode(view, self._custom_loads, False)
        finally:
            view.release()
            del mapped  # stays mapped while an object made from it lives

    # -- lifetime -----------------------------------------------------------------------------

    def unlink(self) -> None:
        """Removes the queue's name, semaphores and side segments now (processes that have it
        open keep using it; nobody can open it by name any more)."""
        if self._unlinker is not None:
            self._unlinker.cancel()
            self._unlinker = None
        _shared.unlink(self._name, self._shared.tracked)

"""faster-fifo's public names on an ipcxx.Channel: code written for `faster_fifo.Queue` runs
unchanged after `from ipcxx.compat.faster_fifo import Queue` (docs/guide.md, "Migrating from
faster-fifo", lists where behaviour differs and why).

Mirrors faster-fifo 1.5.2: `Queue(max_size_bytes=1000 * 1000, maxsize=int(1e9), loads=None,
dumps=None)`; put/get time out after DEFAULT_TIMEOUT (10 s); `queue.Full` and `queue.Empty`;
`QueueError` (also kept in `last_error`) for misuse. Its limits are faster-fifo's own: a message
costs its serialized size plus 8 bytes against `max_size_bytes`, and one place against
`maxsize`, checked and counted under a crash-robust lock shared by the processes, so `qsize()`,
`data_size()`, `full()` and `Full` come at the same points as with faster-fifo.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from queue import Empty, Full
from typing import Any

import posix_ipc

from .._ipcxx import Channel, EndOfStream, OwnerDiedError
from ._fifo_pickling import default_dumps, default_loads
from ._fifo_shared import BYTES, CLOSED, COUNT, FRAME, WAITERS, Shared

__all__ = [
    "DEFAULT_CIRCULAR_BUFFER_SIZE",
    "DEFAULT_TIMEOUT",
    "INITIAL_RECV_BUFFER_SIZE",
    "Empty",
    "Full",
    "Queue",
    "QueueError",
    "TLSBuffer",
]

DEFAULT_TIMEOUT = float(10)
DEFAULT_CIRCULAR_BUFFER_SIZE = 1000 * 1000  # 1 Mb
INITIAL_RECV_BUFFER_SIZE = 5000

# receive_many() takes at most this many messages at once (the binding allocates room for
# max_count deliveries per call; get_many may return fewer than asked, as faster-fifo's does).
_BATCH = 256


class QueueError(Exception):
    """Misuse that faster-fifo reports by this exception (and in `Queue.last_error`)."""


class TLSBuffer(threading.local):
    """faster-fifo's per-thread receive buffer, kept for code that touches it; ipcxx receives
    each message into its own bytes object, so its size never limits get_many()."""

    def __init__(self, v: Any = None) -> None:
        self.val = v

    def __getstate__(self) -> int:
        return 0 if self.val is None else len(self.val)

    def __setstate__(self, message_buffer_size: int) -> None:
        self.val = None if message_buffer_size == 0 else (ctypes.c_ubyte * message_buffer_size)()


class _ClosedFlag:
    """`Queue.closed`: faster-fifo's shared `RawValue(c_bool)`, read and written by `.value`."""

    __slots__ = ("_queue",)

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    @property
    def value(self) -> bool:
        return bool(self._queue._shared.words[CLOSED])

    @value.setter
    def value(self, closed: bool) -> None:
        self._queue._shared.words[CLOSED] = 1 if closed else 0


def _remove_if_creator(shared: Shared, creator: int) -> None:
    """The creator's Queue object was collected (or its process exits): remove the names. A fork
    child inherits the object but not the ownership."""
    if os.getpid() == creator:
        shared.remove()


# Attributes that belong to one process's object, never pickled.
_LOCAL = ("_shared", "_finalizer", "message_buffer")


class Queue:
    """faster_fifo.Queue on an ipcxx.Channel: a FIFO of picklable objects between processes."""

    _default_loads: bool
    _default_dumps: bool

    def __init__(
        self,
        max_size_bytes: int = DEFAULT_CIRCULAR_BUFFER_SIZE,
        maxsize: int = int(1e9),
        loads: Callable[[memoryview], Any] | None = None,
        dumps: Callable[[Any], Any] | None = None,
    ) -> None:
        max_size_bytes = _positive("max_size_bytes", max_size_bytes)
        maxsize = _positive("maxsize", maxsize)
        self.max_size_bytes = max_size_bytes
        self.maxsize = maxsize
        # By default get_many() reads the whole queue if necessary.
        self.max_bytes_to_read = max_size_bytes
        self._refresh_serializers()
        if loads is not None:
            self.loads = loads  # type: ignore[method-assign,assignment]
        if dumps is not None:
            self.dumps = dumps  # type: ignore[method-assign,assignment]
        self.message_buffer = TLSBuffer(None)
        self.last_error: str | None = None
        self._shared = Shared.create(max_size_bytes, maxsize)
        self._shared.channel.declare_producer()  # see _receive: no end of stream
        self._finalizer = weakref.finalize(self, _remove_if_creator, self._shared, os.getpid())

    # Pickled by name: the receiving process opens the same queue (any start method, and as a
    # Pool task argument too). The creator's process keeps the ownership (the names' removal).
    def __getstate__(self) -> dict[str, Any]:
        state = {key: value for key, value in self.__dict__.items() if key not in _LOCAL}
        state["_name"] = self._shared.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        name = state.pop("_name")
        self.__dict__.update(state)
        self._refresh_serializers()
        self.message_buffer = TLSBuffer(None)
        self._shared = Shared.open(name)
        self._shared.channel.declare_producer()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in ("loads", "dumps"):
            self._refresh_serializers()

    def _refresh_serializers(self) -> None:
        """Notes whether loads/dumps are the defaults, which the hot paths call directly."""
        cls, own = type(self), self.__dict__
        own["_default_loads"] = "loads" not in own and cls.loads is Queue.loads
        own["_default_dumps"] = "dumps" not in own and cls.dumps is Queue.dumps

    def _error(self, message: str) -> None:
        self.last_error = message
        raise QueueError(message)

    # Class-level serializers, replaceable per instance (the constructor's loads/dumps) or by a
    # subclass. loads receives a memoryview, as faster-fifo's does.
    def loads(self, msg_bytes: memoryview) -> Any:
        return default_loads(msg_bytes)

    def dumps(self, obj: Any) -> bytes:
        return bytes(default_dumps(obj))

    def close(self) -> None:
        """Marks the queue closed for every process (is_closed()); puts and gets still work."""
        self._shared.words[CLOSED] = 1

    def is_closed(self) -> bool:
        """Whether some process called close()."""
        return bool(self._shared.words[CLOSED])

    @property
    def closed(self) -> _ClosedFlag:
        """faster-fifo's shared flag object: `.value` is is_closed(), and can be set."""
        return _ClosedFlag(self)

    def put_many(
        self, xs: Sequence[Any], block: bool = True, timeout: float | None = DEFAULT_TIMEOUT
    ) -> None:
        """Puts every object of the list or tuple `xs`, all or none: waits (at most `timeout`
        seconds; None: no limit) until they fit, else raises queue.Full."""
        if not isinstance(xs, (list, tuple)):
            self._error(f"put_many() expects a list or tuple, got {type(xs)}")
        if self._default_dumps:
            data = [default_dumps(x) for x in xs]
        else:
            dumps = self.dumps
            data = [dumps(x) for x in xs]
        need = 0
        for item in data:
            need += (len(item) if type(item) is bytes else memoryview(item).nbytes) + FRAME
        self._put(data, need, block, timeout)

    def put(self, x: Any, block: bool = True, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Puts one object; raises queue.Full when it does not fit within `timeout` seconds."""
        data = default_dumps(x) if self._default_dumps else self.dumps(x)
        need = (len(data) if type(data) is bytes else memoryview(data).nbytes) + FRAME
        # The common case inline (one lock round); waits and refusals in _put.
        shared = self._shared
        words, lock = shared.words, shared.lock
        try:
            lock.acquire()
        except OwnerDiedError:
            lock.make_consistent()
        try:
            fits = words[BYTES] + need <= shared.max_size_bytes and words[COUNT] < shared.maxsize
            if fits:
                words[BYTES] += need
                words[COUNT] += 1
        finally:
            lock.release()
        if not fits:
            self._put([data], need, block, timeout)
            return
        try:
            shared.channel.send(data, timeout=timeout if block else 0)
        except BaseException as error:
            self._release(1, need)  # nothing is counted that was not sent
            if isinstance(error, TimeoutError):
                raise Full() from None
            raise

    def put_many_nowait(self, xs: Sequence[Any]) -> None:
        self.put_many(xs, block=False)

    def put_nowait(self, x: Any) -> None:
        self.put(x, block=False)

    def _put(self, data: list[Any], need: int, block: bool, timeout: float | None) -> None:
        shared = self._shared
        words = shared.words
        count = len(data)
        limit, places = shared.max_size_bytes, shared.maxsize
        if need > limit or count > places:
            # faster-fifo waits out the timeout first; these can never fit, so say so at once.
            raise Full(
                f"{count} message(s) of {need} bytes (with faster-fifo's 8 bytes each) can "
                f"never fit a queue of max_size_bytes={limit}, maxsize={places}"
            )
        deadline = None
        while True:
            shared.acquire()
            try:
                fits = words[BYTES] + need <= limit and words[COUNT] + count <= places
                if fits:
                    words[BYTES] += need
                    words[COUNT] += count
                elif block:
                    words[WAITERS] += 1
            finally:
                shared.lock.release()
            if fits:
                break
            if not block:
                raise Full()
            if timeout is not None and deadline is None:
                deadline = time.monotonic() + timeout
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or not _wait(shared, remaining):
                shared.acquire()
                try:
                    if words[WAITERS]:  # else a consumer counted this waiter off already
                        words[WAITERS] -= 1
                finally:
                    shared.lock.release()
                raise Full()
        if not block:
            send_timeout: float | None = 0
        elif deadline is None:
            send_timeout = timeout
        else:
            send_timeout = max(0.0, deadline - time.monotonic())
        try:
            if count == 1:
                shared.channel.send(data[0], timeout=send_timeout)
                return
            sent = 0
            try:
                sent = shared.channel.send_many(data, timeout=send_timeout)
            except TimeoutError as error:
                sent = getattr(error, "sent", 0)
            if sent == count:
                return
            # The ring itself was full for the whole timeout (only with messages of a few bytes:
            # see ring_capacity): the rest was not sent.
            unsent = data[sent:]
        except TimeoutError:
            unsent = data
        except BaseException:
            self._release(count, need)  # nothing is counted that was not sent
            raise
        self._release(len(unsent), sum(memoryview(item).nbytes + FRAME for item in unsent))
        raise Full()

    def _release(self, count: int, size: int) -> None:
        """Counts `count` messages of `size` bytes (frames included) out of the queue and wakes
        the producers waiting for room."""
        shared = self._shared
        words = shared.words
        shared.acquire()
        try:
            words[COUNT] -= count
            words[BYTES] -= size
            waiters = words[WAITERS]
            if waiters:
                words[WAITERS] = 0
        finally:
            shared.lock.release()
        for _ in range(waiters):
            shared.space.release()

    def get_many(
        self,
        block: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_messages_to_get: int = int(1e9),
        max_bytes_to_get: int | None = None,
    ) -> list[Any]:
        """At least one object and at most `max_messages_to_get`, taken while fewer than
        `max_bytes_to_get` bytes (default: the attribute max_bytes_to_read; frames counted)
        were read; waits at most `timeout` seconds for the first, else raises queue.Empty."""
        if max_messages_to_get < 1:
            self._error(f"Expected to read at least 1 message, asked for {max_messages_to_get}")
        limit = self.max_bytes_to_read if max_bytes_to_get is None else max_bytes_to_get
        channel = self._shared.channel
        wait = timeout if block else 0
        if limit >= self.max_size_bytes:
            count = max_messages_to_get if max_messages_to_get < _BATCH else _BATCH
            try:
                messages = channel.receive_many(count, timeout=wait)
            except TimeoutError:
                raise Empty() from None
            except EndOfStream:
                messages = self._receive_after_end(channel.receive_many, count, wait)
        else:
            messages = [self._receive_one(channel, wait)]
            read = len(messages[0]) + FRAME
            while len(messages) < max_messages_to_get and read < limit:
                try:
                    message = channel.receive(timeout=0)
                except (TimeoutError, EndOfStream):
                    break
                messages.append(message)
                read += len(message) + FRAME
        size = FRAME * len(messages)
        for message in messages:
            size += len(message)
        self._release(len(messages), size)
        if self._default_loads:
            return [default_loads(message) for message in messages]
        loads = self.loads
        return [loads(memoryview(message)) for message in messages]

    def _receive_one(self, channel: Channel, timeout: float | None) -> bytes:
        try:
            return channel.receive(timeout=timeout)
        except TimeoutError:
            raise Empty() from None
        except EndOfStream:
            return self._receive_after_end(channel.receive, None, timeout)  # type: ignore[no-any-return]

    def _receive_after_end(self, call: Any, count: int | None, timeout: float | None) -> Any:
        """The Channel reported its end of stream: every object that ever put is gone (this one
        never put: a fork child). A queue has no end: count this object as a producer (so the
        stream cannot end while it lives) and wait again."""
        self._shared.channel.declare_producer()
        try:
            return call(timeout=timeout) if count is None else call(count, timeout=timeout)
        except TimeoutError:
            raise Empty() from None

    def get_many_nowait(self, max_messages_to_get: int = int(1e9)) -> list[Any]:
        return self.get_many(block=False, max_messages_to_get=max_messages_to_get)

    def get(self, block: bool = True, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """One object; waits at most `timeout` seconds (None: no limit), else raises queue.Empty."""
        shared = self._shared
        message = self._receive_one(shared.channel, timeout if block else 0)
        # _release inline: the common case of no producer waiting for room.
        words, lock = shared.words, shared.lock
        try:
            lock.acquire()
        except OwnerDiedError:
            lock.make_consistent()
        try:
            words[COUNT] -= 1
            words[BYTES] -= len(message) + FRAME
            waiters = words[WAITERS]
            if waiters:
                words[WAITERS] = 0
        finally:
            lock.release()
        for _ in range(waiters):
            shared.space.release()
        if self._default_loads:
            return default_loads(message)
        return self.loads(memoryview(message))

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def reallocate_msg_buffer(self, new_size: int) -> None:
        """Kept for code that calls it: resizes message_buffer, which nothing here reads."""
        self.message_buffer.val = (ctypes.c_ubyte * max(INITIAL_RECV_BUFFER_SIZE, new_size))()

    def qsize(self) -> int:
        """Messages in the queue (put and not yet taken)."""
        return int(self._shared.words[COUNT])

    def data_size(self) -> int:
        """Bytes in the queue by faster-fifo's measure: serialized sizes plus 8 bytes each."""
        return int(self._shared.words[BYTES])

    def empty(self) -> bool:
        """True when the queue holds no message (a hint: another process may put or get)."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when not even a 1-byte message (9 bytes with its frame) would fit."""
        words = self._shared.words
        shared = self._shared
        return bool(
            words[BYTES] + FRAME + 1 > shared.max_size_bytes or words[COUNT] + 1 > shared.maxsize
        )

    def join_thread(self) -> None:
        """Does nothing: there is no feeder thread (as in faster-fifo)."""

    def cancel_join_thread(self) -> None:
        """Does nothing: there is no feeder thread (as in faster-fifo)."""


def _wait(shared: Shared, timeout: float | None) -> bool:
    """Sleeps until a consumer makes room (False when `timeout` seconds passed first)."""
    try:
        shared.space.acquire(timeout)
    except posix_ipc.BusyError:
        return False
    return True


def _positive(what: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    return value

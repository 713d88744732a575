"""ipcxx.Queue: multiprocessing.Queue's API and semantics on an ipcxx.Channel."""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Iterable, Iterator
from queue import Empty, Full
from typing import TYPE_CHECKING, Any

import posix_ipc

from .._ipcxx import EndOfStream, _QueueCore
from .._timeouts import NO_LIMIT, refuse_non_number
from ._base import QueueBase, T


class Queue(QueueBase[T]):
    """A process-shared FIFO of Python objects, drop-in for multiprocessing.Queue.

    `Queue(maxsize=0, *, name=None, capacity=4 MiB, mode=0o600, end_of_stream=False, dumps=None,
    loads=None)`. `maxsize` counts objects (0: unbounded; put() never blocks, a full ring spills
    into this process's buffer, flushed by a feeder thread). Without `name` the queue is
    anonymous: removed when its creator collects it or exits, or by the resource tracker when
    every process using it died; with `name` it is created (FileExistsError if it exists) and
    lives until unlink(); `Queue.open(name)` opens an existing one. The queue pickles by name,
    so it is an argument of Process, Pool and ProcessPoolExecutor tasks under every start
    method. docs/queue.md has the details and the differences from multiprocessing."""

    def __init__(
        self,
        maxsize: int = 0,
        *,
        name: str | None = None,
        capacity: int = 4 << 20,
        mode: int = 0o600,
        end_of_stream: bool = False,
        dumps: Any = None,
        loads: Any = None,
    ) -> None:
        super().__init__(
            maxsize,
            name=name,
            capacity=capacity,
            mode=mode,
            end_of_stream=end_of_stream,
            dumps=dumps,
            loads=loads,
        )

    @classmethod
    def open(cls, name: str, **settings: Any) -> Queue[Any]:
        """Opens the existing queue `name` (FileNotFoundError if there is none). `settings`:
        end_of_stream, dumps, loads, as the creator passed them."""
        from ._shared import Shared

        queue: Queue[Any] = cls.__new__(cls)
        merged = {"end_of_stream": False, "dumps": None, "loads": None, **settings}
        queue._setup(Shared.open(name, cls._joinable, False), merged)
        return queue

    if TYPE_CHECKING:

        def put(self, obj: T, block: bool = True, timeout: float | None = None) -> None:
            """Puts `obj` at the end (see _put_slow)."""

        def get(self, block: bool = True, timeout: float | None = None) -> T:
            """Removes and returns the first object (see _get_slow)."""

        def put_many(
            self, objs: Iterable[T], block: bool = True, timeout: float | None = None
        ) -> None:
            """Puts each object of `objs` in order (see _put_many_slow)."""

        def get_many(
            self,
            block: bool = True,
            timeout: float | None = None,
            max_messages_to_get: int = 1_000_000_000,
        ) -> list[T]:
            """The first object as get() waits for it, then those already there (see
            _get_many_slow)."""

    else:
        # These run natively (the base class) in the common cases; the rest goes to the
        # methods below.
        put = _QueueCore.put
        get = _QueueCore.get
        put_many = _QueueCore._put_many
        get_many = _QueueCore._get_many

    def _put_slow(self, obj: T, block: bool = True, timeout: float | None = None) -> None:
        """Puts `obj` at the end. Only a bounded queue with `maxsize` objects in it waits (at
        most `timeout` seconds if `block`; queue.Full when no place freed); a full ring never
        blocks: the object waits in this process's buffer. ValueError once closed."""
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        wait = None if block and timeout is None else _wait_seconds(block, timeout)
        slots = self._slots
        if slots is not None:
            _acquire_place(slots, wait)
        try:
            data, buffers = self._frame(obj)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        self._put_pickled(data, buffers)

    def _get_slow(self, block: bool = True, timeout: float | None = None) -> T:
        """Removes and returns the first object, waiting for one (at most `timeout` seconds if
        `block`); queue.Empty when none came. With end_of_stream=True, raises
        ipcxx.EndOfStream (an EOFError) once every producer closed or died and all is taken."""
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        wait = None if block and timeout is None else _wait_seconds(block, timeout)
        try:
            return self._receive(wait)  # type: ignore[no-any-return]
        except TimeoutError:
            pass
        raise Empty

    def _put_many_slow(
        self, objs: Iterable[T], block: bool = True, timeout: float | None = None
    ) -> None:
        """Puts each object of `objs` in order, as put(obj, block, timeout) would one by one (an
        extension, named as faster-fifo's; multiprocessing has none): an unbounded queue never
        waits, a bounded one waits for each place (`timeout` for each). If one fails (pickling,
        queue.Full), the objects before it are put and the rest are not."""
        for obj in objs:
            self._put_slow(obj, block, timeout)

    def _get_many_slow(
        self,
        block: bool = True,
        timeout: float | None = None,
        max_messages_to_get: int = 1_000_000_000,
    ) -> list[T]:
        """Waits like get(block, timeout) for the first object (queue.Empty, EndOfStream), then
        also takes those already there, up to `max_messages_to_get` in all, in order (an
        extension, named as faster-fifo's). If unpickling one fails, its exception carries the
        objects taken before it in `taken`."""
        if max_messages_to_get < 1:
            raise ValueError("max_messages_to_get must be at least 1")
        taken = [self._get_slow(block, timeout)]
        while len(taken) < max_messages_to_get:
            try:
                taken.append(self._get_slow(False))
            except (Empty, EndOfStream):
                break
            except Exception as error:
                error.taken = taken  # type: ignore[attr-defined]
                raise
        return taken

    # The native put/get hand the calls they do not take (a wrong argument among them) to the
    # methods above: an argument error names the public method, as multiprocessing's does.
    _put_slow.__qualname__ = "Queue.put"
    _get_slow.__qualname__ = "Queue.get"
    _put_many_slow.__qualname__ = "Queue.put_many"
    _get_many_slow.__qualname__ = "Queue.get_many"

    @staticmethod
    def _renamed(function: Callable[..., Any], qualname: str) -> Callable[..., Any]:
        """`function` under another qualified name (what its argument errors say), for a
        subclass whose multiprocessing counterpart overrides the public method."""
        copy = types.FunctionType(
            function.__code__, function.__globals__, function.__name__, function.__defaults__
        )
        copy.__kwdefaults__ = function.__kwdefaults__
        copy.__doc__ = function.__doc__
        copy.__qualname__ = qualname
        return copy

    async def get_async(self, timeout: float | None = None) -> T:
        """Like get(timeout=timeout), awaited, without blocking the event loop: waits for an
        object in ipcxx.aio's pool (which takes nothing) and takes it inside the awaiting task,
        so a cancelled get_async never takes an object. queue.Empty when the timeout expires;
        EndOfStream at the end of an end_of_stream=True queue."""
        from ._async import get_async

        return await get_async(self, timeout)  # type: ignore[no-any-return]

    async def put_async(self, obj: T, timeout: float | None = None) -> None:
        """Like put(obj, timeout=timeout), awaited: only a bounded queue waits (for a free place,
        in ipcxx.aio's pool); a cancelled put_async has put nothing. queue.Full when the timeout
        expires."""
        from ._async import put_async

        await put_async(self, obj, timeout)

    def put_nowait(self, obj: T) -> None:
        """put(obj, False)."""
        return self.put(obj, False)

    def get_nowait(self) -> T:
        """get(False)."""
        return self.get(False)

    def qsize(self) -> int:
        """Objects put (by any process) and not yet taken, including those still in a producer's
        spill buffer. Approximate while others put and get, as in multiprocessing."""
        return self._items.value

    def empty(self) -> bool:
        """Whether the ring has nothing to take (as multiprocessing's looks at its pipe): objects
        still in a producer's spill buffer do not count, nor a count left by a dead producer,
        so `while not q.empty(): q.get()` ends."""
        return self._items.value == 0 or not self._channel._wait_readable(0)

    def full(self) -> bool:
        """Whether a bounded queue holds `maxsize` objects (always False when unbounded)."""
        return self._slots is not None and self._slots.value == 0

    def close(self) -> None:
        """No more put() or get() from this object. Objects still in the spill buffer are
        flushed by the feeder thread, which then closes the ring (with end_of_stream=True this
        finishes this producer). Other processes' handles are not affected."""
        if self._closed:
            return
        self._closed = True
        self._core_close()
        if not self._spill.stop(True):
            self._channel.close()

    def join_thread(self) -> None:
        """Waits until the feeder thread has put every spilled object into the ring (after
        close(); with no consumer and a full ring this waits for one, as multiprocessing's)."""
        assert self._closed, f"Queue {self!r} not closed"
        self._spill.join()

    def cancel_join_thread(self) -> None:
        """The process's exit will not wait for the feeder: spilled objects not yet in the ring
        are lost then."""
        self._spill.cancel()

    def __iter__(self) -> Iterator[T]:
        """Objects until the end of the stream (end_of_stream=True queues)."""
        while True:
            try:
                yield self.get()
            except EndOfStream:
                return

    def _wait_until(self, predicate: Any, timeout: float | None) -> bool:
        """Polls `predicate` (for JoinableQueue.join) with a growing pause, up to `timeout`."""
        wait = _wait_seconds(True, timeout)
        deadline = None if wait is None else time.monotonic() + wait
        pause = 0.0001
        while not predicate():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
        return True


def _wait_seconds(block: bool, timeout: float | None) -> float | None:
    """What put, get and join wait: 0 without `block` (the timeout is ignored, as in
    multiprocessing), None (no limit) for None or a huge or infinite timeout, 0 for a negative
    one (multiprocessing polls once). What is not a number is refused with TypeError and NaN
    with ValueError, by put, get and join alike and whether or not they would have to wait
    (the Channel's rules and messages)."""
    if not block:
        return 0
    if timeout is None:
        return None
    refuse_non_number(timeout)
    try:
        seconds = float(timeout)
    except OverflowError:  # an int beyond any float: no limit, or a poll if negative
        return None if timeout > 0 else 0
    if seconds != seconds:  # NaN: a deadline compared with it would never come
        raise ValueError("timeout must be None or a non-negative number")
    # A semaphore refuses a timeout beyond its deadline's range: wait without limit instead.
    if seconds >= NO_LIMIT:
        return None
    return max(seconds, 0.0)


def _acquire_place(slots: posix_ipc.Semaphore, wait: float | None) -> None:
    """Takes a place of a bounded queue, waiting at most `wait` seconds (None: for ever);
    queue.Full when none freed. A signal whose handler returns does not end the wait (PEP 475,
    as multiprocessing's put): the wait goes on for the rest of the time."""
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            slots.acquire(wait)
            return
        except posix_ipc.BusyError:
            raise Full from None
        except posix_ipc.SignalError:
            if deadline is not None:
                wait = max(deadline - time.monotonic(), 0)

"""ipcxx.SimpleQueue: multiprocessing.SimpleQueue (put waits for ring space; no feeder)."""

from __future__ import annotations

from typing import Any

from .._ipcxx import EndOfStream
from ._base import DEFAULT_CAPACITY, QueueBase, T


class SimpleQueue(QueueBase[T]):
    """A process-shared FIFO with multiprocessing.SimpleQueue's API: put() waits while the ring
    is full (like a write to a full pipe), get() waits for an object. Same options and lifetime
    as ipcxx.Queue except `maxsize`."""

    _spills = False

    def __init__(
        self,
        *,
        name: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        mode: int = 0o600,
        end_of_stream: bool = False,
        dumps: Any = None,
        loads: Any = None,
    ) -> None:
        super().__init__(
            0,
            name=name,
            capacity=capacity,
            mode=mode,
            end_of_stream=end_of_stream,
            dumps=dumps,
            loads=loads,
        )

    # multiprocessing.SimpleQueue's put and get take no block or timeout: narrower than the
    # native base's (which only Queue uses), deliberately.
    def put(self, obj: T) -> None:  # type: ignore[override]
        """Puts `obj`, waiting while the ring is full. OSError once closed."""
        if self._closed:
            _raise_closed()
        data, buffers = self._frame(obj)
        self._items.release()
        try:
            self._send(data, buffers, True)
        except BaseException:
            self._uncount_put()  # nothing was put: the count says so again
            raise

    def get(self) -> T:  # type: ignore[override]
        """Removes and returns the first object, waiting for one (EndOfStream at the end of an
        end_of_stream=True queue). OSError once closed."""
        if self._closed:
            _raise_closed()
        return self._receive(None)  # type: ignore[no-any-return]

    def empty(self) -> bool:
        """Whether the ring has nothing to take (a count left by a dead producer aside).
        OSError once closed."""
        if self._closed:
            _raise_closed()
        return self._items.value == 0 or not self._channel._wait_readable(0)

    def close(self) -> None:
        """No more put() or get() from this object."""
        if not self._closed:
            self._closed = True
            self._channel.close()

    def __iter__(self) -> Any:
        while True:
            try:
                yield self.get()
            except EndOfStream:
                return


def _raise_closed() -> None:
    # multiprocessing.SimpleQueue's put/get/empty after close() use its closed pipe ends, which
    # raise this (3.11 to 3.13), unlike Queue's ValueError: a drop-in raises the same.
    raise OSError("handle is closed")

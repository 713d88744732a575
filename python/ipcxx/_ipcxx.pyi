"""Type stubs of ipcxx._ipcxx, the native part of the ipcxx package."""

import sys
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias, TypedDict, final

from typing_extensions import Buffer, disjoint_base

# A buffer argument. numpy's stubs give arrays __buffer__ only from Python 3.12 on (PEP 688), so
# before 3.12 a type checker does not see a numpy array as a Buffer although it exports one:
# accept numpy's array interface too (an object that has it without exporting a buffer is
# refused at run time with TypeError, as any non-buffer is).
if sys.version_info >= (3, 12):
    _Buffer: TypeAlias = Buffer
else:
    class _ArrayInterface(Protocol):
        @property
        def __array_interface__(self) -> dict[str, Any]: ...
        @property
        def __array_struct__(self) -> object: ...

    _Buffer: TypeAlias = Buffer | _ArrayInterface

class OwnerDiedError(RuntimeError):
    """The previous holder died holding the lock; the raising acquire() holds it now."""

class NotRecoverableError(RuntimeError):
    """The lock was released after an owner death without make_consistent(): unusable."""

@disjoint_base
class RobustLock:
    """A lock shared by processes by name, robust to a holder's crash."""

    def __init__(
        self,
        name: str | bytes | None,
        *,
        create: bool = False,
        mode: int = 0o600,
        exclusive: bool = False,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def not_recoverable(self) -> bool: ...
    def acquire(self, timeout: float | None = None) -> bool: ...
    def release(self) -> None: ...
    def make_consistent(self) -> None: ...
    def locked(self) -> bool: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...
    def __enter__(self) -> RobustLock: ...
    async def acquire_async(self, timeout: float | None = None) -> bool: ...
    async def __aenter__(self) -> RobustLock: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

def unlink_robust_lock(name: str | bytes, /) -> None: ...

class ChannelError(ValueError):
    """The segment is not a channel of this layout version, or a record is corrupted."""

class EndOfStream(EOFError):
    """Every producer of the Channel finished or died, and nothing is left to receive."""

@final
class ChannelView(Buffer):
    """A message in a Channel's ring, from reserve() or peek(); use it in a with statement."""

    @property
    def size(self) -> int: ...
    @property
    def finished(self) -> bool: ...
    if sys.version_info >= (3, 12):  # PEP 688: the class has it from 3.12 on
        def __buffer__(self, flags: int, /) -> memoryview: ...
        def __release_buffer__(self, buffer: memoryview, /) -> None: ...

    def __enter__(self) -> memoryview: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@disjoint_base
class Channel:
    """Messages between processes through a ring in POSIX shared memory."""

    def __init__(
        self,
        name: str | bytes | None = None,
        *,
        create: bool = False,
        capacity: int = 1048576,
        mode: int = 0o600,
        exclusive: bool = False,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def spin(self) -> float | None: ...
    @spin.setter
    def spin(self, value: float | None) -> None: ...
    @property
    def spin_current(self) -> float: ...
    @property
    def lost(self) -> int: ...
    @property
    def abandoned(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def finished(self) -> bool: ...
    def declare_producer(self) -> None: ...
    def finish(self) -> None: ...
    def __iter__(self) -> Channel: ...
    def __next__(self) -> bytes: ...
    def send(self, data: _Buffer, /, timeout: float | None = None) -> None: ...
    def receive(self, timeout: float | None = None) -> bytes: ...
    def receive_into(self, buffer: _Buffer, /, timeout: float | None = None) -> int: ...
    # An exception raised while sending carries `sent: int`, how many buffers went out before it.
    def send_many(self, buffers: Iterable[_Buffer], /, timeout: float | None = None) -> int: ...
    # Waits only while it has taken nothing: an exception means no message was taken.
    def receive_many(self, max_count: int, /, timeout: float | None = None) -> list[bytes]: ...
    def receive_many_into(
        self, buffers: Iterable[_Buffer], /, timeout: float | None = None
    ) -> list[int]: ...
    def reserve(self, size: int, /, timeout: float | None = None) -> ChannelView: ...
    def peek(self, timeout: float | None = None) -> ChannelView: ...
    async def receive_async(self, timeout: float | None = None) -> bytes: ...
    async def receive_many_async(
        self, max_count: int, timeout: float | None = None
    ) -> list[bytes]: ...
    async def send_async(self, data: _Buffer, timeout: float | None = None) -> None: ...
    def __aiter__(self) -> Channel: ...
    async def __anext__(self) -> bytes: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...
    def __enter__(self) -> Channel: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

def unlink_channel(name: str | bytes, /) -> None: ...

class _ChannelParticipant(TypedDict):
    slot: int
    pid: int
    alive: bool
    producer: bool

class _ChannelDetails(TypedDict):
    version: int
    capacity: int
    max_message_size: int
    head: int
    rhead: int
    tail: int
    used_bytes: int
    queued_bytes: int
    messages: int
    writing: int
    writing_dead: int
    reading: int
    reading_dead: int
    counts_complete: bool
    lost: int
    abandoned: int
    declarations: int
    producers_counted: int
    stream: Literal["no_producer_yet", "open", "draining", "ended"]
    participants: list[_ChannelParticipant]
    producer_lock_pid: int | None
    producer_lock_alive: bool | None
    consumer_lock_pid: int | None
    consumer_lock_alive: bool | None

class _LockDetails(TypedDict):
    version: int
    locked: bool
    holder_tid: int | None
    holder_pid: int | None
    holder_alive: bool | None
    holder_visible: bool
    waiters: bool
    consistency: Literal["consistent", "owner_died", "not_recoverable"]
    acquisitions: int

class _SegmentInspection(TypedDict):
    kind: Literal["channel", "lock"] | None
    problem: str | None
    size: int
    channel: _ChannelDetails | None
    lock: _LockDetails | None

def inspect_segment(name_or_fd: str | bytes | int, /) -> _SegmentInspection: ...

@disjoint_base
class _QueueCore:
    """The native half of ipcxx.Queue (not public)."""

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...
    def _put_many(
        self, objs: Iterable[Any], block: bool = True, timeout: float | None = None
    ) -> None: ...
    def _get_many(
        self,
        block: bool = True,
        timeout: float | None = None,
        max_messages_to_get: int = 1000000000,
    ) -> list[Any]: ...
    def _attach(
        self,
        channel: Channel,
        pending: Any,
        dumps: Any,
        loads: Any,
        items: str,
        slots: str | None,
        tasks: str | None,
        empty: type[BaseException],
        /,
    ) -> None: ...
    def _set_pending(self, pending: Any, /) -> None: ...
    def _core_close(self) -> None: ...

"""ipcxx: POSIX and System V IPC on a C++20 core; see `python -m ipcxx demo`.

Beyond upstream: RobustLock, a crash-robust lock shared by processes by name (docs/guide.md,
"A crash-robust lock"), and Channel, shared-memory messaging between processes
(docs/channel.md, docs/guide.md "Channel"). Both pickle by name, so they pass to processes of
every multiprocessing start method. Queue, SimpleQueue and JoinableQueue are drop-ins for
multiprocessing's queues on a Channel (docs/queue.md, docs/guide.md "Migrating from
multiprocessing.Queue"); ipcxx.compat.faster_fifo.Queue runs code written for
faster_fifo.Queue unchanged (docs/guide.md, "Migrating from faster-fifo").
"""

from typing import TYPE_CHECKING, Any

from ._ipcxx import Channel as Channel
from ._ipcxx import ChannelError as ChannelError
from ._ipcxx import ChannelView as ChannelView
from ._ipcxx import EndOfStream as EndOfStream
from ._ipcxx import NotRecoverableError as NotRecoverableError
from ._ipcxx import OwnerDiedError as OwnerDiedError
from ._ipcxx import RobustLock as RobustLock
from ._ipcxx import unlink_channel as unlink_channel
from ._ipcxx import unlink_robust_lock as unlink_robust_lock
from ._pickling import install as _install_pickling
from .aio.channel import install as _install_channel_asyncio
from .aio.lock import install as _install_lock_asyncio

_install_pickling()
_install_channel_asyncio(Channel)
_install_lock_asyncio(RobustLock, OwnerDiedError)
del _install_channel_asyncio, _install_lock_asyncio

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .queues import JoinableQueue as JoinableQueue
    from .queues import Queue as Queue
    from .queues import SimpleQueue as SimpleQueue
    from .queues import unlink_queue as unlink_queue

_QUEUE_NAMES = frozenset({"JoinableQueue", "Queue", "SimpleQueue", "unlink_queue"})


def __getattr__(name: str) -> Any:
    # The queues are imported on first use: they need posix_ipc, and `python -m ipcxx` (the
    # CLI) must work even when the upstream-compatible modules cannot be imported.
    if name in _QUEUE_NAMES:
        from . import queues

        return getattr(queues, name)
    raise AttributeError(f"module 'ipcxx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_QUEUE_NAMES})

"""POSIX IPC module"""

from ipcxx.aio.posix import install as _install_asyncio

# The drop-in posix_ipc API, implemented by ipcxx's C++ core (see docs/compatibility.md).
from ._posix_ipc import (
    MESSAGE_QUEUES_SUPPORTED,
    O_CREAT,
    O_CREX,
    O_EXCL,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    PAGE_SIZE,
    QUEUE_MESSAGE_SIZE_MAX_DEFAULT,
    QUEUE_MESSAGES_MAX_DEFAULT,
    QUEUE_PRIORITY_MAX,
    SEMAPHORE_TIMEOUT_SUPPORTED,
    SEMAPHORE_VALUE_MAX,
    SEMAPHORE_VALUE_SUPPORTED,
    USER_SIGNAL_MAX,
    USER_SIGNAL_MIN,
    BusyError,
    Error,
    ExistentialError,
    MessageQueue,
    PermissionsError,
    Semaphore,
    SharedMemory,
    SignalError,
    unlink_message_queue,
    unlink_semaphore,
    unlink_shared_memory,
)

# The *_async methods (docs/guide.md, "asyncio"); nothing else is added to the module.
_install_asyncio(Semaphore, MessageQueue, BusyError, ExistentialError)
del _install_asyncio

# The upstream version this module reproduces; ipcxx's own version is ipcxx.__version__.
VERSION = "1.3.2"
__version__ = VERSION
__author__ = "Philip Semanchuk"
__license__ = "BSD"
__copyright__ = "Copyright 2008 - 2025 Philip Semanchuk and contributors"

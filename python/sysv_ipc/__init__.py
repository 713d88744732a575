"""SYSV IPC module"""

from ipcxx.aio.sysv import install as _install_asyncio

# The drop-in sysv_ipc API, implemented by ipcxx's C++ core (see docs/compatibility.md).
from ._sysv_ipc import (
    IPC_CREAT,
    IPC_CREX,
    IPC_EXCL,
    IPC_NOWAIT,
    IPC_PRIVATE,
    KEY_MAX,
    KEY_MIN,
    PAGE_SIZE,
    SEM_UNDO,
    SEMAPHORE_TIMEOUT_SUPPORTED,
    SEMAPHORE_VALUE_MAX,
    SHM_HUGETLB,
    SHM_NORESERVE,
    SHM_RDONLY,
    SHM_REMAP,
    SHM_RND,
    BusyError,
    Error,
    ExistentialError,
    InternalError,
    MessageQueue,
    NotAttachedError,
    PermissionsError,
    Semaphore,
    SemaphoreSet,
    SharedMemory,
    attach,
    ftok,
    remove_message_queue,
    remove_semaphore,
    remove_shared_memory,
)

# The *_async methods (docs/guide.md, "asyncio"); nothing else is added to the module.
_install_asyncio(Semaphore, MessageQueue, BusyError, ExistentialError)
del _install_asyncio

# The upstream version this module reproduces; ipcxx's own version is ipcxx.__version__.
VERSION = "1.2.0"
__version__ = VERSION
__author__ = "Philip Semanchuk"
__license__ = "BSD"
__copyright__ = "Copyright 2008 - 2026, Philip Semanchuk and contributors"

"""ipcxx: POSIX and System V IPC on a C++20 core; see `python -m ipcxx demo`."""

# A crash-robust lock shared by processes by name (docs/guide.md, "A crash-robust lock").
from ._ipcxx import NotRecoverableError as NotRecoverableError
from ._ipcxx import OwnerDiedError as OwnerDiedError
from ._ipcxx import RobustLock as RobustLock
from ._ipcxx import unlink_robust_lock as unlink_robust_lock

__version__ = "0.1.0"

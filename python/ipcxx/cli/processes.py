"""Whether a process id is alive, and the user name of a uid."""

from __future__ import annotations

import os
import pwd
from functools import cache


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (in our pid namespace). A pid may since have
    been reused by an unrelated process; the kernel gives no way to tell."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The process exists but belongs to someone else: it is alive.
        return True
    return True


@cache
def user_name(uid: int) -> str | None:
    """The passwd name of uid, or None when it has none (e.g. a container's unmapped uid)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None

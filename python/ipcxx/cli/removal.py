"""Removing one object: a POSIX object's file, or a System V id with sysv_ipc.remove_*."""

from __future__ import annotations

import os

from .model import IpcObject
from .posix_objects import MQUEUE_DIR, SEMAPHORE_PREFIX, SHM_DIR


def posix_path(obj: IpcObject) -> bytes:
    """The file the listing found for a POSIX object (its name's bytes, not re-encoded)."""
    assert obj.name is not None
    base = obj.name[1:]
    if obj.kind == "sem":
        return os.path.join(os.fsencode(SHM_DIR), SEMAPHORE_PREFIX + base)
    return os.path.join(os.fsencode(MQUEUE_DIR if obj.kind == "mq" else SHM_DIR), base)


def remove(obj: IpcObject) -> None:
    """Unlinks a POSIX object's file or removes a System V id; raises OSError or sysv_ipc's
    error on failure.

    POSIX objects are removed by unlinking the very file the listing read, which is what
    sem_unlink, shm_unlink (glibc) and mq_unlink (the kernel's mqueue file system) do: it
    works for every name the directory can hold, also those the functions refuse (`sem.`, the
    semaphore "/"; names near NAME_MAX), and it removes from the /dev/mqueue mount that was
    listed even if that is another IPC namespace's. sysv_ipc is imported here, not at the
    top, so that ls, stat and POSIX removals work even when it fails to import."""
    if obj.is_posix:
        os.unlink(posix_path(obj))
        return
    import sysv_ipc

    remove_id = {
        "sysv-sem": sysv_ipc.remove_semaphore,
        "sysv-shm": sysv_ipc.remove_shared_memory,
        "sysv-msg": sysv_ipc.remove_message_queue,
    }[obj.kind]
    remove_id(obj.id)

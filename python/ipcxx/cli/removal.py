"""Removing one object with posix_ipc.unlink_* or sysv_ipc.remove_*."""

from __future__ import annotations

from .model import IpcObject


def remove(obj: IpcObject) -> None:
    """Unlinks a POSIX name or removes a System V id; raises the module's error on failure.
    The modules are imported here, not at the top, so `ls` and `stat` work even when one of
    them fails to import."""
    if obj.is_posix:
        import posix_ipc

        unlink = {
            "sem": posix_ipc.unlink_semaphore,
            "shm": posix_ipc.unlink_shared_memory,
            "mq": posix_ipc.unlink_message_queue,
        }[obj.kind]
        unlink(obj.name)
        return
    import sysv_ipc

    remove_id = {
        "sysv-sem": sysv_ipc.remove_semaphore,
        "sysv-shm": sysv_ipc.remove_shared_memory,
        "sysv-msg": sysv_ipc.remove_message_queue,
    }[obj.kind]
    remove_id(obj.id)

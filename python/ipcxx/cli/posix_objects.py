"""POSIX semaphores and segments (files of /dev/shm) and message queues (/dev/mqueue)."""

from __future__ import annotations

import os
import platform
import struct
from collections.abc import Iterator

from .ipcxx_objects import KIND_OF, inspect_file
from .model import IpcObject

SHM_DIR = "/dev/shm"
MQUEUE_DIR = "/dev/mqueue"
SEMAPHORE_PREFIX = b"sem."  # glibc keeps semaphore /NAME as /dev/shm/sem.NAME
SEMAPHORE_FILE_SIZE = 32  # sizeof(sem_t) on Linux glibc 64-bit


def _changed_at(info: os.stat_result) -> int:
    # Neither time is a birth time. Both start at creation and only move forward (ctime on
    # chmod/utime, mtime on truncate/send), except that utime can set mtime back, so the
    # older of the two is the nearest to creation the file system records.
    return int(min(info.st_mtime, info.st_ctime))


def _regular_files(folder: str) -> Iterator[tuple[bytes, os.stat_result]]:
    """(file name as bytes, stat) of each regular file in folder; nothing if it is not
    mounted. Bytes, not str: a name may hold any byte but '/' and NUL, and is kept exactly."""
    try:
        entries = list(os.scandir(os.fsencode(folder)))
    except OSError:
        return  # not mounted, not a directory, not readable
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                yield entry.name, entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed while we looked, or unreadable: not ours to list


def semaphore_value(name: bytes, path: bytes, size: int) -> int | None:
    """The value of POSIX semaphore `name`, or None when it cannot be read.

    First choice is posix_ipc's sem_getvalue: it is the documented interface and does not
    depend on glibc's private sem_t layout. It needs read and write permission (sem_open maps
    the file shared and writable), so when that is refused the file itself is read on glibc
    x86_64/aarch64, whose sem_t keeps the value in the low 32 bits of its first 64-bit word.
    A file shorter than a sem_t is never opened as a semaphore: mapping it would SIGBUS.
    Any name the directory can hold is passed as bytes; one that sem_open refuses (`sem.`
    is the semaphore "/", which glibc calls invalid; names near NAME_MAX) is read from the
    file too: no error of the module ends a listing.
    """
    if size < SEMAPHORE_FILE_SIZE:
        return None
    try:
        import posix_ipc
    except ImportError:
        posix_ipc = None
    if posix_ipc is not None:
        try:
            semaphore = posix_ipc.Semaphore(name)
        except posix_ipc.ExistentialError:
            return None
        except Exception:  # noqa: BLE001 - refused for whatever reason: try the file
            pass
        else:
            try:
                return semaphore.value
            finally:
                semaphore.close()
    return _value_from_file(path)


def _value_from_file(path: bytes) -> int | None:
    if platform.machine() not in ("x86_64", "aarch64") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        with open(path, "rb") as file:
            first_word = file.read(8)
    except OSError:
        return None
    if len(first_word) < 8:
        return None
    return struct.unpack("=Q", first_word)[0] & 0xFFFFFFFF


def queue_messages(name: bytes) -> int | None:
    """Messages in POSIX queue `name` (mq_getattr), or None when it cannot be opened. Opening
    read-only consumes nothing; write-only is tried when only writing is permitted. No error
    of the module (a name it refuses included) ends a listing."""
    try:
        import posix_ipc
    except ImportError:
        return None
    for read, write in ((True, False), (False, True)):
        try:
            queue = posix_ipc.MessageQueue(name, read=read, write=write)
        except posix_ipc.ExistentialError:
            return None
        except Exception:  # noqa: BLE001 - refused for whatever reason: try the other mode
            continue
        try:
            return queue.current_messages
        finally:
            queue.close()
    return None


def parse_queue_status(text: str) -> dict[str, int]:
    """Fields of a /dev/mqueue file, `QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0`, by name."""
    fields: dict[str, int] = {}
    for item in text.split():
        label, _, number = item.partition(":")
        try:
            fields[label] = int(number)
        except ValueError:
            continue
    return fields


def _segment(name: bytes, path: bytes, size: int, common: dict) -> IpcObject:
    """A segment, recognised as ipcxx's channel or lock when the core's inspection says so."""
    try:
        found = inspect_file(path) or {}
        problem = found.get("problem")
    except OSError as error:  # not permitted, or gone meanwhile: it may be a channel or lock
        found, problem = {}, f"unreadable ({error.strerror or error})"
    kind = KIND_OF.get(found.get("kind") or "", "shm")
    channel = found.get("channel")
    return IpcObject(
        kind=kind,
        name=name,
        size=size,
        # A plain segment's "not an ipcxx segment" is what shm means: only unreadable is news.
        problem=problem if kind != "shm" or not found else None,
        channel=channel,
        lock=found.get("lock"),
        messages=channel["messages"] if channel else None,
        queued_bytes=channel["queued_bytes"] if channel else None,
        attached=sum(p["alive"] for p in channel["participants"]) if channel else None,
        **common,
    )


def semaphores_and_segments() -> Iterator[IpcObject]:
    """Each file of /dev/shm: `sem.NAME` a semaphore, any other regular file a segment (a
    channel or lock when it is ipcxx's)."""
    for file_name, info in _regular_files(SHM_DIR):
        common = dict(changed_at=_changed_at(info), uid=info.st_uid, mode=info.st_mode & 0o777)
        if file_name.startswith(SEMAPHORE_PREFIX):
            name = b"/" + file_name[len(SEMAPHORE_PREFIX) :]
            path = os.path.join(os.fsencode(SHM_DIR), file_name)
            value = semaphore_value(name, path, info.st_size)
            yield IpcObject(kind="sem", name=name, value=value, **common)
        else:
            path = os.path.join(os.fsencode(SHM_DIR), file_name)
            yield _segment(b"/" + file_name, path, info.st_size, common)


def message_queues() -> Iterator[IpcObject]:
    """Each queue of /dev/mqueue, with QSIZE and NOTIFY_PID from its status file."""
    for file_name, info in _regular_files(MQUEUE_DIR):
        try:
            with open(os.path.join(os.fsencode(MQUEUE_DIR), file_name), "rb") as file:
                status = parse_queue_status(file.read().decode("ascii", "replace"))
        except OSError:
            status = {}
        name = b"/" + file_name
        yield IpcObject(
            kind="mq",
            name=name,
            changed_at=_changed_at(info),
            uid=info.st_uid,
            mode=info.st_mode & 0o777,
            messages=queue_messages(name),
            queued_bytes=status.get("QSIZE"),
            notify_pid=status.get("NOTIFY_PID") or None,
        )


def mqueue_mounted() -> bool:
    """Whether a mqueue file system is mounted on /dev/mqueue. Without it POSIX queues still
    work (mq_open needs no mount) but no directory lists them."""
    try:
        with open("/proc/self/mounts", "rb") as file:
            mounts = file.read().splitlines()
    except OSError:
        return os.path.ismount(MQUEUE_DIR)  # no /proc: the next best guess
    target = os.fsencode(MQUEUE_DIR)
    return any(line.split()[1:3] == [target, b"mqueue"] for line in mounts)


MQUEUE_NOTE = (
    f"note: {MQUEUE_DIR} is not mounted: POSIX message queues exist without it, but cannot be"
    f" listed.\n      Mount it with: mount -t mqueue none {MQUEUE_DIR}"
)


def posix_objects() -> Iterator[IpcObject]:
    """Every POSIX semaphore, segment and message queue visible to this process."""
    yield from semaphores_and_segments()
    yield from message_queues()

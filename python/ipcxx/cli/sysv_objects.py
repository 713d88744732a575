"""System V semaphore sets, segments and message queues, read from /proc/sysvipc."""

from __future__ import annotations

from collections.abc import Iterator

from .model import IpcObject

SYSVIPC_DIR = "/proc/sysvipc"


def read_table(text: str) -> list[dict[str, int]]:
    """Rows of a /proc/sysvipc table by the column names of its header line. Columns move
    between kernel versions (rss and swap were added to shm), so no position is assumed.
    `perms` is printed in octal and read so; every other column is decimal."""
    lines = text.splitlines()
    if not lines:
        return []
    columns = lines[0].split()
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < len(columns):
            continue
        row = {}
        for column, field in zip(columns, fields, strict=False):
            row[column] = int(field, 8) if column == "perms" else int(field)
        rows.append(row)
    return rows


def _rows(table: str) -> list[dict[str, int]]:
    try:
        with open(f"{SYSVIPC_DIR}/{table}") as file:
            return read_table(file.read())
    except OSError:
        return []  # no System V IPC in this kernel, or /proc not mounted


def _common(row: dict[str, int], id_column: str) -> dict:
    return dict(
        key=row["key"],
        id=row[id_column],
        uid=row["uid"],
        creator_uid=row.get("cuid"),
        # perms also carries SHM_DEST/SHM_LOCKED above the permission bits.
        mode=row["perms"] & 0o777,
        changed_at=row["ctime"],
    )


def semaphore_values(key: int, id: int) -> list[int] | None:
    """The values of set `id` (semctl GETALL through sysv_ipc.SemaphoreSet), or None when they
    cannot be read: key IPC_PRIVATE (such a set cannot be opened by key, and sysv_ipc opens
    by key only), no read permission, sysv_ipc missing, or the key now names another set."""
    if key == 0:
        return None
    try:
        import sysv_ipc

        semaphores = sysv_ipc.SemaphoreSet(key)
        if semaphores.id != id:
            return None  # removed and the key reused since /proc was read
        return list(semaphores.values)
    except Exception:  # noqa: BLE001 - unreadable for whatever reason: shown as unknown
        return None


def semaphore_sets() -> Iterator[IpcObject]:
    """Each System V semaphore set with its values. The kernel records no creator pid for
    these, and the last pid is per semaphore (GETPID), so no pid is shown."""
    for row in _rows("sem"):
        yield IpcObject(
            kind="sysv-sem",
            semaphores=row.get("nsems"),
            values=semaphore_values(row["key"], row["semid"]),
            **_common(row, "semid"),
        )


def segments() -> Iterator[IpcObject]:
    """Each System V shared memory segment, with its creator and last pids."""
    for row in _rows("shm"):
        yield IpcObject(
            kind="sysv-shm",
            size=row.get("size"),
            attached=row.get("nattch"),
            creator_pid=row.get("cpid") or None,
            last_pid=row.get("lpid") or None,
            **_common(row, "shmid"),
        )


def message_queues() -> Iterator[IpcObject]:
    """Each System V message queue; the kernel records its last sender and receiver only."""
    for row in _rows("msg"):
        yield IpcObject(
            kind="sysv-msg",
            messages=row.get("qnum"),
            queued_bytes=row.get("cbytes"),
            last_send_pid=row.get("lspid") or None,
            last_receive_pid=row.get("lrpid") or None,
            **_common(row, "msqid"),
        )


def sysv_objects() -> Iterator[IpcObject]:
    """Every System V object of this process's IPC namespace."""
    yield from semaphore_sets()
    yield from segments()
    yield from message_queues()

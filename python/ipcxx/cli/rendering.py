"""The human forms of objects: the `ls` table and the `stat` listing."""

from __future__ import annotations

import time
from collections.abc import Callable

from .human import format_age, format_size
from .model import IpcObject
from .names import shown
from .processes import user_name

COLUMNS = (
    "KIND",
    "NAME/KEY",
    "ID",
    "OWNER",
    "MODE",
    "SIZE",
    "VALUE",
    "MSGS",
    "NATT",
    "CREATOR",
    "LAST",
    "AGE",
    "STATUS",
)
_RIGHT_ALIGNED = {"ID", "SIZE", "VALUE", "MSGS", "NATT", "AGE"}


def _pid(pid: int | None, alive: Callable[[int], bool]) -> str:
    if pid is None:
        return "-"
    return str(pid) if alive(pid) else f"{pid}(dead)"


def _count(number: int | None) -> str:
    return "-" if number is None else str(number)


SHOWN_VALUES = 4  # a set's values in the table; stat and --json show all of them


def _values(values: list[int] | None) -> str:
    if values is None:
        return "?"
    shown = ",".join(str(value) for value in values[:SHOWN_VALUES])
    return shown + (",..." if len(values) > SHOWN_VALUES else "")


def _maybe(number: int | None, applies: bool) -> str:
    if number is None:
        return "?" if applies else "-"
    return str(number)


def owner(obj: IpcObject) -> str:
    """'name(uid)' or just the uid when it has no user name (escaped: a directory service
    can serve any bytes)."""
    name = user_name(obj.uid)
    return f"{shown(name.encode('utf-8', 'surrogateescape'))}({obj.uid})" if name else str(obj.uid)


def _last(obj: IpcObject, alive: Callable[[int], bool]) -> str:
    if obj.kind == "sysv-msg":
        # The kernel keeps a last sender and a last receiver; show both, send first.
        return f"{_pid(obj.last_send_pid, alive)}/{_pid(obj.last_receive_pid, alive)}"
    return _pid(obj.last_pid, alive)


STREAM_WORDS = {
    "no_producer_yet": "no producer yet",
    "open": "open",
    "draining": "draining",
    "ended": "ended",
}


def channel_status(channel: dict) -> str:
    """'open, 12% full, 1 dead, lost 2': the stream, how full the ring is, dead participants
    and the loss counters when not zero."""
    parts = [STREAM_WORDS.get(channel["stream"], channel["stream"])]
    parts.append(f"{channel['used_bytes'] * 100 // channel['capacity']}% full")
    dead = sum(not participant["alive"] for participant in channel["participants"])
    if dead:
        parts.append(f"{dead} dead")
    for counter in ("lost", "abandoned"):
        if channel[counter]:
            parts.append(f"{counter} {channel[counter]}")
    return ", ".join(parts)


def lock_status(lock: dict) -> str:
    """'free', 'held by 1234', 'held by 1234 thread 1240', 'held by thread 77 (not visible
    here)', 'owner 1234 died', 'held by 1234, owner died', 'not recoverable'; ', waiters'
    when threads sleep on it."""
    if lock["consistency"] == "not_recoverable":
        return "not recoverable"
    if not lock["locked"]:
        return "free"
    tid, pid = lock["holder_tid"], lock["holder_pid"]
    if lock["holder_alive"]:
        text = f"held by {pid}" + (f" thread {tid}" if tid != pid else "")
        if lock["consistency"] == "owner_died":
            text += ", owner died"
    elif lock["holder_alive"] is None:
        text = f"held by thread {tid} (not visible here)"
    else:
        text = f"owner {tid} died" if tid else "owner died"
    return text + (", waiters" if lock["waiters"] else "")


def status(obj: IpcObject) -> str:
    """The STATUS cell: a channel's or lock's state, why it shows none, or '-'."""
    if obj.channel:
        return channel_status(obj.channel)
    if obj.lock:
        return lock_status(obj.lock)
    return obj.problem or "-"


def table_row(obj: IpcObject, now: float, alive: Callable[[int], bool]) -> list[str]:
    """One object's cells, in COLUMNS order."""
    key = obj.label if obj.is_posix else f"{obj.key_hex} ({obj.key})"
    if obj.kind == "sysv-sem":
        size = f"{obj.semaphores} sem" + ("" if obj.semaphores == 1 else "s")
    else:
        size = "-" if obj.size is None else format_size(obj.size)
    return [
        obj.kind,
        key or "-",
        _count(obj.id),
        owner(obj),
        f"{obj.mode:04o}",
        size,
        _values(obj.values) if obj.kind == "sysv-sem" else _maybe(obj.value, obj.kind == "sem"),
        _maybe(obj.messages, obj.kind in ("mq", "sysv-msg", "channel")),
        _maybe(obj.attached, obj.kind == "channel"),
        _pid(obj.creator_pid, alive),
        _last(obj, alive),
        format_age(obj.age_seconds(now)),
        status(obj),
    ]


def table(objects: list[IpcObject], now: float, alive: Callable[[int], bool]) -> str:
    """Aligned columns: numbers right-aligned, text left-aligned; '-' where a field does not
    apply, '?' where it applies but could not be read."""
    rows = [list(COLUMNS)] + [table_row(obj, now, alive) for obj in objects]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in _RIGHT_ALIGNED else cell.ljust(width)
            for column, cell, width in zip(COLUMNS, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _participant(participant: dict) -> str:
    # The layout marks producers (declared, never finished); consumers leave no mark.
    role = "producer" if participant["producer"] else "not producing (a consumer, or idle)"
    state = "alive" if participant["alive"] else "dead"
    return f"pid {participant['pid']} {state}, {role} (slot {participant['slot']})"


def _details(prefix: str, details: dict) -> list[tuple[str, object]]:
    """A channel's or lock's fields as ('channel.capacity', value) pairs: their JSON paths."""
    pairs: list[tuple[str, object]] = []
    for key, value in details.items():
        if key == "participants":
            alive = sum(participant["alive"] for participant in value)
            pairs.append((f"{prefix}.{key}", f"{len(value)} ({alive} alive)"))
            pairs.extend((f"  [{index}]", _participant(item)) for index, item in enumerate(value))
        elif key in ("capacity", "used_bytes", "queued_bytes"):
            pairs.append((f"{prefix}.{key}", f"{value} ({format_size(value)})"))
        else:
            pairs.append((f"{prefix}.{key}", value))
    return pairs


def stat_lines(record: dict) -> str:
    """`stat` output: one 'key: value' line per JSON key that applies to the object (a channel's
    or lock's details as 'channel.KEY' lines, with a summary first)."""
    pairs: list[tuple[str, object]] = []
    for key, value in record.items():
        if key in ("channel", "lock") and value is not None:
            summary = channel_status(value) if key == "channel" else lock_status(value)
            pairs.append(("status", summary))
            pairs.extend(_details(key, value))
        else:
            pairs.append((key, value))
    width = max(len(key) for key, _ in pairs)
    # The one field each kind has that may be unreadable (permissions): say so, not omit it.
    may_be_unknown = {"sem": "value", "mq": "messages", "sysv-sem": "values"}.get(record["kind"])
    lines = []
    for key, value in pairs:
        if value is None and key != may_be_unknown:
            continue
        if key in ("name", "user") and value is not None:
            value = shown(value.encode("utf-8", "surrogateescape"))
        elif key == "size" and value is not None:
            value = f"{value} ({format_size(value)})"
        elif key == "values" and value is not None:
            value = " ".join(str(number) for number in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif key == "changed_at":
            value = f"{value} ({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(value))})"
        elif key == "age_seconds":
            value = f"{value} ({format_age(value)})"
        elif value is None:
            value = "unknown"
        lines.append(f"{key.ljust(width)}  {value}")
    return "\n".join(lines)

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
        _maybe(obj.messages, obj.kind in ("mq", "sysv-msg")),
        _count(obj.attached),
        _pid(obj.creator_pid, alive),
        _last(obj, alive),
        format_age(obj.age_seconds(now)),
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


def stat_lines(record: dict) -> str:
    """`stat` output: one 'key: value' line per JSON key that applies to the object."""
    width = max(len(key) for key in record)
    # The one field each kind has that may be unreadable (permissions): say so, not omit it.
    may_be_unknown = {"sem": "value", "mq": "messages", "sysv-sem": "values"}.get(record["kind"])
    lines = []
    for key, value in record.items():
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

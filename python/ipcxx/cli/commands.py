"""The ls, stat and rm subcommands: their arguments, and what each one runs."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time

from .human import parse_age
from .model import JSON_KEYS, KINDS, IpcObject
from .posix_objects import MQUEUE_NOTE, mqueue_mounted, posix_objects
from .processes import pid_alive
from .removal import remove
from .rendering import stat_lines, table
from .selection import SelectionError, by_kind, creator_dead, older_than, printable, resolve
from .sysv_objects import sysv_objects

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

NAME_OR_ID_HELP = (
    "'/name' or 'name': a POSIX semaphore, segment (channel, lock) or queue (all are searched); "
    "an integer (decimal or 0x hex): a System V id; 'key:0x1234': a System V key. "
    "One that matches several objects is refused unless --kind picks one."
)
EXIT_HELP = textwrap.fill(
    "exit status: 0 success; 1 an object was not found or a removal failed; "
    "2 usage error (bad argument, ambiguous NAME_OR_ID, rm without a selection)",
    78,
)
JSON_HELP = "JSON keys (every object has all of them, null where not applicable):\n" + "\n".join(
    textwrap.fill(meaning, 78, initial_indent=f"  {key:<19} ", subsequent_indent=" " * 22)
    for key, meaning in JSON_KEYS.items()
)


def _sort_key(obj: IpcObject) -> tuple:
    return (KINDS.index(obj.kind), obj.name or b"", obj.key or 0, obj.id or 0)


def all_objects(kinds: list[str] | None) -> list[IpcObject]:
    """Every visible object of the given kinds, sorted by kind, then name or key and id."""
    return sorted(by_kind([*posix_objects(), *sysv_objects()], kinds), key=_sort_key)


def _note_unlisted_queues(kinds: list[str] | None) -> None:
    """Says on stderr that POSIX queues cannot be listed, when they are asked for and
    /dev/mqueue is not mounted (then `ls` would silently show none)."""
    if (not kinds or "mq" in kinds) and not mqueue_mounted():
        print(MQUEUE_NOTE, file=sys.stderr)


def _records(objects: list[IpcObject], now: float) -> list[dict]:
    return [obj.to_json(now, pid_alive) for obj in objects]


def _report_ambiguity(error: SelectionError, now: float) -> None:
    print(f"error: {error}", file=sys.stderr)
    if error.candidates:
        print(table(error.candidates, now, pid_alive), file=sys.stderr)


def _exit_status(error: SelectionError) -> int:
    return EXIT_FAILED if error.not_found else EXIT_USAGE


def run_ls(arguments: argparse.Namespace) -> int:
    """Prints every object (of --kind) as a table, or as a JSON list with --json. The table's
    header is printed also when nothing is listed, as `ipcs` does."""
    now = time.time()
    objects = all_objects(arguments.kind)
    _note_unlisted_queues(arguments.kind)
    if arguments.json:
        print(json.dumps(_records(objects, now), indent=2))
    else:
        print(table(objects, now, pid_alive))
    return EXIT_OK


def run_stat(arguments: argparse.Namespace) -> int:
    """Prints every field of the one object NAME_OR_ID names."""
    now = time.time()
    try:
        obj = resolve(arguments.name_or_id, all_objects(arguments.kind))
    except SelectionError as error:
        _report_ambiguity(error, now)
        if error.not_found:
            _note_unlisted_queues(arguments.kind)
        return _exit_status(error)
    record = obj.to_json(now, pid_alive)
    print(json.dumps(record, indent=2) if arguments.json else stat_lines(record))
    return EXIT_OK


def _selected(arguments: argparse.Namespace, now: float) -> tuple[list[IpcObject], int]:
    """The objects rm is to remove, and the exit status so far (NAME_OR_ID errors)."""
    candidates = all_objects(arguments.kind)
    status = EXIT_OK
    # --older-than looks at every object, and a name may be a queue: say if queues are unseen.
    missing = arguments.older_than is not None
    if arguments.names:
        chosen = []
        for text in arguments.names:
            try:
                obj = resolve(text, candidates)
            except SelectionError as error:
                _report_ambiguity(error, now)
                status = max(status, _exit_status(error))
                missing = missing or error.not_found
                continue
            if obj not in chosen:
                chosen.append(obj)
        candidates = chosen
    if arguments.older_than is not None:
        candidates = [obj for obj in candidates if older_than(arguments.older_than, now)(obj)]
    if arguments.creator_dead:
        posix = [obj for obj in candidates if obj.is_posix]
        if posix:
            print(
                f"note: --creator-dead skips {len(posix)} POSIX object(s): the kernel records"
                " no creator process for POSIX objects",
                file=sys.stderr,
            )
        candidates = [obj for obj in candidates if creator_dead(pid_alive)(obj)]
    if missing:
        _note_unlisted_queues(arguments.kind)
    return candidates, status


def _reason(error: Exception) -> str:
    # OSError's str() repeats the raw file name; the label has already said which object.
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return printable(str(error))


def run_rm(arguments: argparse.Namespace) -> int:
    """Removes the named objects, or those the filters select; --dry-run only lists them."""
    if not arguments.names and arguments.older_than is None and not arguments.creator_dead:
        print(
            "error: rm needs NAME_OR_ID arguments or a filter (--older-than, --creator-dead);"
            " it never removes everything",
            file=sys.stderr,
        )
        return EXIT_USAGE
    now = time.time()
    chosen, status = _selected(arguments, now)
    if status == EXIT_USAGE:
        return status  # an ambiguous name: remove nothing rather than part of the request
    for obj in chosen:
        if arguments.dry_run:
            print(f"would remove {obj.kind} {obj.label}")
            continue
        try:
            remove(obj)
        except Exception as error:  # noqa: BLE001 - one failed removal never ends the run
            print(f"failed to remove {obj.kind} {obj.label}: {_reason(error)}", file=sys.stderr)
            status = EXIT_FAILED
        else:
            print(f"removed {obj.kind} {obj.label}")
    if not chosen:
        print("nothing matched", file=sys.stderr)
    return status


def _paragraph(text: str) -> str:
    # The help keeps our line breaks (for the JSON key list), so wrap prose ourselves.
    return textwrap.fill(text, 78)


def _age(text: str) -> int:
    try:
        return parse_age(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds ls, stat and rm to the subcommands of `python -m ipcxx`."""
    formatter = argparse.RawDescriptionHelpFormatter
    kind = dict(
        action="append",
        choices=KINDS,
        help="only objects of this kind (repeatable): POSIX sem, shm, mq; ipcxx's channel "
        "and lock (segments made by ipcxx.Channel and ipcxx.RobustLock; shm lists the other "
        "segments); System V sysv-sem, sysv-shm, sysv-msg",
    )
    ls = commands.add_parser(
        "ls",
        help="list POSIX and System V IPC objects",
        description=_paragraph(
            "List every POSIX semaphore, segment and message queue and every System V "
            "semaphore set, segment and message queue visible to this process. Segments made "
            "by ipcxx.Channel and ipcxx.RobustLock are shown as kinds channel and lock, read "
            "without joining, locking or writing them (STATUS: a channel's stream, fill, dead "
            "participants and losses; a lock's holder and whether it is alive)."
        ),
        epilog=JSON_HELP,
        formatter_class=formatter,
    )
    ls.add_argument("--json", action="store_true", help="print a JSON list (keys below)")
    ls.add_argument("--kind", **kind)
    ls.set_defaults(run=run_ls)

    stat = commands.add_parser(
        "stat",
        help="show every field of one IPC object",
        description=_paragraph("Show one object. NAME_OR_ID: " + NAME_OR_ID_HELP),
        epilog=EXIT_HELP + "\n\n" + JSON_HELP,
        formatter_class=formatter,
    )
    stat.add_argument("name_or_id", metavar="NAME_OR_ID")
    stat.add_argument("--json", action="store_true", help="print one JSON object (keys below)")
    stat.add_argument("--kind", **kind)
    stat.set_defaults(run=run_stat)

    rm = commands.add_parser(
        "rm",
        help="remove IPC objects by name or id, or by filter",
        description=_paragraph(
            "Remove the named objects, or every object the filters select; filters "
            "and --kind combine (all must hold), also with names. Without a name or a filter "
            "nothing is removed. NAME_OR_ID: " + NAME_OR_ID_HELP
        ),
        epilog=EXIT_HELP,
        formatter_class=formatter,
    )
    rm.add_argument("names", nargs="*", metavar="NAME_OR_ID")
    rm.add_argument("--dry-run", action="store_true", help="print what would be removed")
    rm.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="objects at least this old, e.g. 30s, 10m, 2h, 7d, 1h30m (age counts from "
        "ctime for System V, from the older of mtime and ctime for POSIX files)",
    )
    rm.add_argument(
        "--creator-dead",
        action="store_true",
        help="System V segments whose creator process is gone. Not applicable to POSIX "
        "objects, System V semaphore sets and queues (no creator pid is recorded): "
        "they are never selected by it",
    )
    rm.add_argument("--kind", **kind)
    rm.set_defaults(run=run_rm)

"""Which objects a command means: NAME_OR_ID arguments, --kind, --older-than, --creator-dead."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import IpcObject
from .names import raw_name, shown, unescape_name

_INTEGER = re.compile(r"^(0x[0-9a-f]+|\d+)$", re.IGNORECASE)


class SelectionError(Exception):
    """A NAME_OR_ID that matches nothing (not_found), or is malformed or ambiguous (a usage
    error; candidates then lists the objects it matched)."""

    def __init__(
        self, message: str, candidates: list[IpcObject] | None = None, not_found: bool = False
    ) -> None:
        super().__init__(message)
        self.candidates = candidates or []
        self.not_found = not_found


@dataclass(frozen=True)
class Reference:
    """A parsed NAME_OR_ID: a POSIX name, a System V id, or a System V key. A POSIX name has
    up to two readings, in the order they are tried: the escaped form `ls` prints, then the
    argument taken literally (names.py)."""

    text: str
    names: tuple[bytes, ...] = ()
    id: int | None = None
    key: int | None = None

    def matching(self, objects: Iterable[IpcObject]) -> list[IpcObject]:
        """The objects this reference names: for a POSIX name, those of its first reading
        that matches any. Raises SelectionError when both readings match objects (say `rv\\x41`
        and `rvA`): guessing could remove the wrong one."""
        objects = list(objects)
        if not self.names:
            return [obj for obj in objects if self.matches(obj)]
        readings = [[obj for obj in objects if obj.name == name] for name in self.names]
        matched = [found for found in readings if found]
        if len(matched) > 1:
            both = matched[0] + matched[1]
            raise SelectionError(
                f"{printable(self.text)}: names {shown(matched[0][0].name)} read as an escaped"
                f" name and {shown(matched[1][0].name)} read literally; type the one you mean"
                " as ls shows it",
                both,
            )
        return matched[0] if matched else []

    def matches(self, obj: IpcObject) -> bool:
        """True if obj is what this System V reference names."""
        if self.id is not None:
            return not obj.is_posix and obj.id == self.id
        # Keys compare as unsigned 32-bit: /proc prints them signed, people write them in hex.
        return not obj.is_posix and obj.key is not None and (obj.key ^ self.key) & 0xFFFFFFFF == 0


def _integer(text: str) -> int:
    # Not int(text, 0): that refuses a leading zero ("010"), which people do type for ids.
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    value = int(digits[2:], 16) if digits.lower().startswith("0x") else int(digits, 10)
    return -value if negative else value


def printable(text: str) -> str:
    """A command-line argument as it is printed back: the name it means in the escaped form
    (so an escaped name reads as typed), and any byte it holds escaped."""
    escaped = unescape_name(text)
    return shown(_argument_bytes(text) if escaped is None else escaped)


def _argument_bytes(text: str) -> bytes:
    try:
        return raw_name(text)
    except UnicodeEncodeError:  # not from a command line: a surrogate os.fsencode refuses
        return text.encode("utf-8", "surrogatepass")


def _posix_names(text: str) -> tuple[bytes, ...]:
    """The readings of a POSIX name argument, each with one leading slash: the escaped form,
    then the literal bytes; an empty or slash-holding reading is dropped ('/' alone is the
    semaphore glibc keeps as `sem.`)."""
    readings = []
    for name in (unescape_name(text), _argument_bytes(text)):
        if name is None:
            continue
        name = name if name.startswith(b"/") else b"/" + name
        if b"/" not in name[1:] and b"\0" not in name and name not in readings:
            readings.append(name)
    return tuple(readings)


def parse_reference(text: str) -> Reference:
    """'/name' or 'name' -> POSIX name (escaped as `ls` prints it, or literal); '42' or '0x2a'
    -> System V id; 'key:0x1234' (or 'key:4660') -> System V key. Raises ValueError for an
    empty name, a name with an inner slash, or a bad key."""
    if text.lower().startswith("key:"):
        number = text[4:]
        if not _INTEGER.match(number.lstrip("-")):
            raise ValueError(f"not a key: {printable(text)} (write key:0x1234 or key:4660)")
        return Reference(text, key=_integer(number))
    if _INTEGER.match(text):
        return Reference(text, id=_integer(text))
    names = _posix_names(text)
    if not text or not names:
        raise ValueError(f"not a POSIX name: {printable(text)}")
    return Reference(text, names=names)


def resolve(text: str, objects: list[IpcObject]) -> IpcObject:
    """The one object NAME_OR_ID `text` names among objects (already filtered by --kind).
    Raises SelectionError if none or several match (a name used by a semaphore and a queue,
    an id shared by a segment and a semaphore set, or IPC_PRIVATE key 0)."""
    try:
        reference = parse_reference(text)
    except ValueError as error:
        raise SelectionError(str(error)) from None
    found = reference.matching(objects)
    if not found:
        raise SelectionError(f"{printable(text)}: no such IPC object", not_found=True)
    if len(found) > 1:
        raise SelectionError(
            f"{printable(text)}: matches {len(found)} objects; choose with --kind", found
        )
    return found[0]


def by_kind(objects: Iterable[IpcObject], kinds: list[str] | None) -> list[IpcObject]:
    """Objects of the given kinds (all when kinds is empty or None)."""
    return [obj for obj in objects if not kinds or obj.kind in kinds]


def older_than(seconds: int, now: float) -> Callable[[IpcObject], bool]:
    """A filter: the object's age is at least `seconds`."""
    return lambda obj: obj.age_seconds(now) >= seconds


def creator_dead(alive: Callable[[int], bool]) -> Callable[[IpcObject], bool]:
    """A filter: the kernel recorded a creator pid and that process is gone. Only System V
    segments have one; POSIX objects, System V semaphore sets and queues never match."""
    return lambda obj: obj.creator_pid is not None and not alive(obj.creator_pid)

"""POSIX names as bytes: their printable escaped form (like `ls -b`) and back, losslessly."""

from __future__ import annotations

import codecs
import os
import re
import sys

# C escapes of the controls a terminal would act on, and the backslash itself (so that the
# form is unambiguous). Every other control, and the space, becomes \xNN: an escaped name
# holds no whitespace, so a row of `ls` splits into its columns even when names are hostile.
_SHORT_ESCAPES = {
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
}
_UNESCAPES = {escaped[1]: char.encode() for char, escaped in _SHORT_ESCAPES.items()}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)


def _hex_bytes(data: bytes) -> str:
    return "".join(f"\\x{byte:02x}" for byte in data)


def escape_name(name: bytes, *, ascii_only: bool = False) -> str:
    """`name` as text that is safe to print and that unescape_name() turns back into exactly
    these bytes: printable characters of valid UTF-8 as they are (only ASCII ones when
    ascii_only), `\\\\` for a backslash, `\\n \\t \\r \\a \\b \\v \\f \\e` for those controls, and
    `\\xNN` for every other byte: the space, other C0 controls, DEL, each byte of a C1 control
    or an invisible or unassigned character (bidi overrides, zero-width marks, line separators),
    and each byte that is not part of valid UTF-8 (escapes that bash's $'...' knows too)."""
    out = []
    position = 0
    while position < len(name):
        try:
            text = name[position:].decode("utf-8")
            valid, position = text, len(name)
        except UnicodeDecodeError as error:
            valid = name[position : position + error.start].decode("utf-8")
            bad = name[position + error.start : position + error.end]
            position += error.end
        else:
            bad = b""
        for char in valid:
            if char in _SHORT_ESCAPES:
                out.append(_SHORT_ESCAPES[char])
            elif char.isprintable() and char != " " and (char.isascii() or not ascii_only):
                out.append(char)
            else:
                out.append(_hex_bytes(char.encode("utf-8")))
        out.append(_hex_bytes(bad))
    return "".join(out)


def unescape_name(text: str) -> bytes | None:
    """The bytes whose escape_name() form is `text`, or None when `text` holds a backslash
    sequence that escape_name() never writes (then it cannot be an escaped name). Characters
    outside escapes are taken as UTF-8; a lone surrogate (an undecodable byte of the command
    line) stands for that byte."""
    try:
        return _unescape(text)
    except UnicodeEncodeError:
        return None  # a surrogate that is not an escaped byte: not from a command line


def _unescape(text: str) -> bytes | None:
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode("utf-8", "surrogateescape")
        sequence = match.group(1)
        if len(sequence) == 3:
            out.append(int(sequence[1:], 16))
        elif sequence in _UNESCAPES:
            out += _UNESCAPES[sequence]
        else:
            return None
        position = match.end()
    rest = text[position:]
    if "\\" in rest:
        return None  # a trailing lone backslash
    out += rest.encode("utf-8", "surrogateescape")
    return bytes(out)


def raw_name(text: str) -> bytes:
    """The bytes of a command-line argument taken literally (as the shell passed them)."""
    return os.fsencode(text)


def name_text(name: bytes) -> str:
    """The name as a str for JSON: UTF-8, each invalid byte as a lone surrogate (U+DC80 +
    byte), the way os.fsdecode() does on Linux; .encode('utf-8', 'surrogateescape') returns
    the exact bytes."""
    return name.decode("utf-8", "surrogateescape")


def _utf8(stream: object) -> bool:
    encoding = getattr(stream, "encoding", None)
    try:
        return encoding is not None and codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def shown(name: bytes) -> str:
    """escape_name() for this process's output: non-ASCII printable characters stay as they
    are only when standard output and standard error both encode UTF-8, so the same object
    reads the same on both streams and nothing printed can fail to encode."""
    return escape_name(name, ascii_only=not (_utf8(sys.stdout) and _utf8(sys.stderr)))

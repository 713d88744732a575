"""The command line on names it did not expect (issue 16, class 4): every name the kernel allows
is listed, printed escaped (never a raw control byte), carried exactly in --json, accepted back
by rm in its escaped form, and one entry rm cannot remove never stops it half way. Each test
makes its objects in a private IPC and mount namespace (fresh /dev/shm and /dev/mqueue) and
runs the CLI there as a subprocess, under a strict UTF-8 stdout and under the C locale."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipcxx.cli.names import escape_name, unescape_name

# (kind, exact name, the escaped form `ls` must print), written out by hand.
HOSTILE = [
    ("sem", b"/", "/"),  # the file `sem.`: sem_open calls the name invalid
    ("sem", b"/" + b"s" * 251, "/" + "s" * 251),  # `sem.` + 251: too long for sem_open
    ("sem", b"/\x1b]0;owned\x07", r"/\e]0;owned\a"),  # sets the terminal's title
    ("shm", b"/row\nshm  forged", r"/row\nshm\x20\x20forged"),  # a second row, forged
    ("shm", b"/clear\x1b[2J", r"/clear\e[2J"),
    ("shm", b"/bell\x07", r"/bell\a"),
    ("shm", b"/cr\rover", r"/cr\rover"),
    ("shm", b"/del\x7f", r"/del\x7f"),
    ("shm", b"/csi\xc2\x9b31m", r"/csi\xc2\x9b31m"),  # C1 control CSI, valid UTF-8
    ("shm", b"/bidi\xe2\x80\xaeevil", r"/bidi\xe2\x80\xaeevil"),  # right-to-left override
    ("shm", b"/bad\xff\xfe", r"/bad\xff\xfe"),  # not UTF-8
    ("shm", b"/tab\tname", r"/tab\tname"),
    ("shm", b"/back\\slash", r"/back\\slash"),
    ("shm", b"/two words", r"/two\x20words"),
    ("shm", b"/" + b"L" * 255, "/" + "L" * 255),  # NAME_MAX
    ("shm", b"/--help", "/--help"),  # not an option when written with its slash
    ("shm", b"/42", "/42"),  # not a System V id when written with its slash
    ("shm", "/caf\u00e9".encode(), "/caf\\xc3\\xa9"),  # printable, but not ASCII: see ASCII_ONLY
    ("mq", b"/q\n\x1b[2J\xff", r"/q\n\e[2J\xff"),
]

# Environments of the CLI: a strict UTF-8 stdout (a surrogate would raise), the C locale
# (Python's UTF-8 mode, surrogateescape: a surrogate would reach the terminal as the raw
# byte), and a plain ASCII stdout (no UTF-8 mode, no locale coercion).
ENVIRONMENTS = {
    "strict-utf8": {"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"},
    "c-locale": {"LC_ALL": "C"},
    "ascii": {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}
UTF8_OUTPUT = {"strict-utf8", "c-locale"}

# Runs inside the namespace; DATA is the JSON the test passes on stdin.
PRELUDE = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    import posix_ipc

    DATA = json.load(sys.stdin)
    CLEAN = {k: v for k, v in os.environ.items()
             if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8",
                                  "PYTHONCOERCECLOCALE"))}

    def cli(*args, env=None):
        result = subprocess.run([sys.executable, "-m", "ipcxx", *args], capture_output=True,
                                env={**CLEAN, **(env or {})}, timeout=60)
        return {"status": result.returncode, "out": result.stdout.hex(),
                "err": result.stderr.hex()}

    def path(kind, name):
        base = bytes.fromhex(name)[1:]
        if kind == "sem":
            return b"/dev/shm/sem." + base
        return (b"/dev/mqueue/" if kind == "mq" else b"/dev/shm/") + base

    def create(kind, name):
        if kind == "mq":
            posix_ipc.MessageQueue(bytes.fromhex(name), posix_ipc.O_CREX).close()
        else:
            with open(path(kind, name), "xb") as file:
                file.write(bytes(32))  # a sem_t's size, so a semaphore is opened, not skipped

    def exists(kind, name):
        return os.path.lexists(path(kind, name))

    def remove_all(objects):
        for kind, name in objects:
            try:
                os.unlink(path(kind, name))
            except FileNotFoundError:
                pass
    """
)


@pytest.fixture(scope="module")
def namespace():
    """namespace(code, data) runs PRELUDE + code in a private IPC and mount namespace with
    `data` as DATA and returns the JSON it prints; the code removes what it made (in a
    finally), and the namespace's /dev/shm and /dev/mqueue vanish with it in any case."""
    from tests.test_cli import namespace_unavailable_reason

    reason = namespace_unavailable_reason()
    if reason:
        pytest.skip(reason)

    def run(code: str, data: object) -> dict:
        script = PRELUDE + textwrap.dedent(code)
        result = subprocess.run(
            ["unshare", "--ipc", "--mount", "sh", "-c",
             'mount -t tmpfs tmpfs /dev/shm && mount -t mqueue none /dev/mqueue && exec "$@"',
             "sh", sys.executable, "-c", script],
            input=json.dumps(data),
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


def hostile_data() -> list[list[str]]:
    return [[kind, name.hex()] for kind, name, _ in HOSTILE]


def expected_escape(name: bytes, shown: str, environment: str) -> str:
    # Printable non-ASCII stays as it is on a UTF-8 output, \xNN bytes otherwise.
    if environment in UTF8_OUTPUT and name == "/caf\u00e9".encode():
        return "/caf\u00e9"
    return shown


def assert_no_raw_control(output: bytes, environment: str) -> str:
    """Decodes the output strictly (ASCII where the stream is ASCII) and checks it holds no
    control character but the newline: no C0, DEL or C1 control, no bidi override."""
    text = output.decode("utf-8" if environment in UTF8_OUTPUT else "ascii")
    bad = [c for c in text if c != "\n" and not c.isprintable()]
    assert not bad, bad
    return text


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_ls_lists_every_hostile_name_escaped_in_its_own_row(namespace, environment):
    outcome = namespace(
        """
        try:
            for kind, name in DATA["objects"]:
                create(kind, name)
            result = cli("ls", env=DATA["env"])
        finally:
            remove_all(DATA["objects"])
        print(json.dumps(result))
        """,
        {"objects": hostile_data(), "env": ENVIRONMENTS[environment]},
    )
    assert outcome["status"] == 0, bytes.fromhex(outcome["err"])
    assert outcome["err"] == ""
    text = assert_no_raw_control(bytes.fromhex(outcome["out"]), environment)
    header, *rows = text.splitlines()
    assert header.split()[:2] == ["KIND", "NAME/KEY"]
    # One row per object: no name forged a row of its own.
    assert len(rows) == len(HOSTILE)
    shown_rows = sorted((row.split()[0], row.split()[1]) for row in rows)
    expected = sorted(
        (kind, expected_escape(name, shown, environment)) for kind, name, shown in HOSTILE
    )
    assert shown_rows == expected
    # The escaped form reads back to the exact bytes.
    for _, name, shown in HOSTILE:
        assert unescape_name(expected_escape(name, shown, environment)) == name


def test_ls_json_carries_every_name_exactly(namespace):
    outcome = namespace(
        """
        try:
            for kind, name in DATA["objects"]:
                create(kind, name)
            result = cli("ls", "--json", env=DATA["env"])
        finally:
            remove_all(DATA["objects"])
        print(json.dumps(result))
        """,
        {"objects": hostile_data(), "env": ENVIRONMENTS["strict-utf8"]},
    )
    assert outcome["status"] == 0, bytes.fromhex(outcome["err"])
    output = bytes.fromhex(outcome["out"])
    assert output.isascii()  # json.dumps escapes every control and non-ASCII character
    records = json.loads(output)
    found = {(record["kind"], bytes.fromhex(record["name_hex"])): record for record in records}
    assert sorted(found) == sorted((kind, name) for kind, name, _ in HOSTILE)
    for (_, name), record in found.items():
        assert record["name"].encode("utf-8", "surrogateescape") == name


def test_stat_and_rm_find_each_object_by_its_escaped_name(namespace):
    outcome = namespace(
        """
        results = []
        try:
            for kind, name in DATA["objects"]:
                create(kind, name)
            for (kind, name), shown in zip(DATA["objects"], DATA["shown"]):
                stat = cli("stat", "--json", "--kind", kind, shown, env=DATA["env"])
                rm = cli("rm", "--kind", kind, shown, env=DATA["env"])
                results.append(dict(stat=stat, rm=rm, gone=not exists(kind, name)))
        finally:
            remove_all(DATA["objects"])
        print(json.dumps(results))
        """,
        {
            "objects": hostile_data(),
            "shown": [shown for _, _, shown in HOSTILE],
            "env": ENVIRONMENTS["strict-utf8"],
        },
    )
    for (kind, name, shown), result in zip(HOSTILE, outcome, strict=True):
        stat, rm = result["stat"], result["rm"]
        assert stat["status"] == 0, (shown, bytes.fromhex(stat["err"]))
        assert json.loads(bytes.fromhex(stat["out"]))["name_hex"] == name.hex()
        assert rm["status"] == 0, (shown, bytes.fromhex(rm["err"]))
        out = assert_no_raw_control(bytes.fromhex(rm["out"]), "strict-utf8")
        assert out == f"removed {kind} {expected_escape(name, shown, 'strict-utf8')}\n"
        assert result["gone"], shown


def test_rm_takes_names_literally_too_and_refuses_when_both_readings_name_objects(namespace):
    # The shell can pass the exact bytes ($'...'); and when a literal argument is also the
    # escaped form of another object, rm refuses rather than guess (a name copied from a plain
    # `ls /dev/shm` could otherwise remove the other object); each is reached by its own
    # escaped form, which is unique.
    newline, backslash_n = b"/a\n", b"/a\\n"
    outcome = namespace(
        """
        objects = DATA["objects"]
        try:
            for kind, name in objects:
                create(kind, name)
            literal = cli("rm", "--kind", "shm", bytes.fromhex(DATA["literal"]), env=DATA["env"])
            after_literal = [exists(kind, name) for kind, name in objects]
            first = cli("rm", "--kind", "shm", "a\\\\n", env=DATA["env"])
            after_first = [exists(kind, name) for kind, name in objects]
            second = cli("rm", "--kind", "shm", "/a\\\\\\\\n", env=DATA["env"])
            after_second = [exists(kind, name) for kind, name in objects]
            third = cli("rm", "--kind", "shm", "a\\\\n", env=DATA["env"])
            after_third = [exists(kind, name) for kind, name in objects]
        finally:
            remove_all(objects)
        print(json.dumps(dict(literal=literal, after_literal=after_literal, first=first,
                              after_first=after_first, second=second,
                              after_second=after_second, third=third,
                              after_third=after_third)))
        """,
        {
            "objects": [
                ["shm", newline.hex()],
                ["shm", backslash_n.hex()],
                ["shm", b"/raw\xff\x1b".hex()],
            ],
            "literal": b"/raw\xff\x1b".hex(),
            "env": ENVIRONMENTS["strict-utf8"],
        },
    )
    assert outcome["literal"]["status"] == 0, bytes.fromhex(outcome["literal"]["err"])
    assert bytes.fromhex(outcome["literal"]["out"]) == b"removed shm /raw\\xff\\e\n"
    assert outcome["after_literal"] == [True, True, False]
    # `a\n` (backslash, n) is the escaped form of "/a" + newline and, literally, the other
    # object's name: refused, nothing removed, both candidates named.
    assert outcome["first"]["status"] == 2
    assert b"read literally" in bytes.fromhex(outcome["first"]["err"])
    assert outcome["after_first"] == [True, True, False]
    # `/a\\n` is the escaped form of the literal backslash-n name (its literal reading names
    # nothing).
    assert bytes.fromhex(outcome["second"]["out"]) == b"removed shm /a\\\\n\n"
    assert outcome["after_second"] == [True, False, False]
    # Now `a\n` names one object only.
    assert bytes.fromhex(outcome["third"]["out"]) == b"removed shm /a\\n\n"
    assert outcome["after_third"] == [False, False, False]


def test_rm_older_than_goes_on_past_an_entry_it_cannot_remove(namespace):
    # The busy entry is a file with a bind mount on it: unlink fails with EBUSY, even for root.
    busy = ("shm", b"/busy\n\xff")
    fresh = ("shm", b"/fresh\x1b")
    outcome = namespace(
        """
        objects, busy, fresh = DATA["objects"], DATA["busy"], DATA["fresh"]
        busy_path = path(*busy)
        try:
            for kind, name in objects + [busy, fresh]:
                create(kind, name)
            subprocess.run(["mount", "--bind", busy_path, busy_path], check=True)
            two_hours_ago = time.time() - 7200
            for kind, name in objects + [busy]:
                os.utime(path(kind, name), (two_hours_ago, two_hours_ago))
            result = cli("rm", "--older-than", "1h", env=DATA["env"])
            left = {name: exists(kind, name) for kind, name in objects + [busy, fresh]}
        finally:
            subprocess.run(["umount", busy_path])
            remove_all(objects + [busy, fresh])
        print(json.dumps(dict(result=result, left=left)))
        """,
        {
            "objects": hostile_data(),
            "busy": [busy[0], busy[1].hex()],
            "fresh": [fresh[0], fresh[1].hex()],
            "env": ENVIRONMENTS["strict-utf8"],
        },
    )
    result = outcome["result"]
    assert result["status"] == 1  # a removal failed
    out = assert_no_raw_control(bytes.fromhex(result["out"]), "strict-utf8")
    err = assert_no_raw_control(bytes.fromhex(result["err"]), "strict-utf8")
    assert err == "failed to remove shm /busy\\n\\xff: Device or resource busy\n"
    assert len(out.splitlines()) == len(HOSTILE)  # every other aged object, one line each
    left = {bytes.fromhex(name): there for name, there in outcome["left"].items()}
    assert left == {**{name: False for _, name, _ in HOSTILE}, busy[1]: True, fresh[1]: True}


# --- the escaping itself ------------------------------------------------------------------


@given(st.binary(max_size=40), st.booleans())
def test_escaping_is_printable_whitespace_free_and_reverses_exactly(name, ascii_only):
    shown = escape_name(name, ascii_only=ascii_only)
    assert shown.isprintable() and not any(c.isspace() for c in shown)
    assert not ascii_only or shown.isascii()
    assert unescape_name(shown) == name


def test_unescaping_refuses_what_escaping_never_writes():
    for text in ("a\\", "a\\q", "a\\x4", "a\\xg0", "a\\u00e9", "a\\ b"):
        assert unescape_name(text) is None, text
    assert unescape_name("a\\x41\\x20\\e\\\\") == b"aA \x1b\\"

"""The inspection command line, `python -m ipcxx ls | stat | rm`, run in real subprocesses
against real objects of every kind. Filter removals run in a private IPC and mount namespace,
where the only objects are the test's own."""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ipcxx
import posix_ipc
import sysv_ipc
from ipcxx.cli.human import format_age, format_size, parse_age
from ipcxx.cli.model import JSON_KEYS
from ipcxx.cli.rendering import COLUMNS


def cli(*args: str) -> subprocess.CompletedProcess:
    """Runs `python -m ipcxx ARGS` with this process's interpreter and PYTHONPATH."""
    return subprocess.run(
        [sys.executable, "-m", "ipcxx", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        timeout=60,
    )


def listed(*args: str) -> list[dict]:
    """`ls --json ARGS`, parsed."""
    result = cli("ls", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def record_of(records: list[dict], kind: str, *, name=None, id=None) -> dict | None:
    """The record of one kind with this name or id, or None."""
    for record in records:
        if record["kind"] == kind and (record["name"] == name if name else record["id"] == id):
            return record
    return None


@pytest.fixture
def unique_name() -> str:
    return f"/ipcxx_cli_{os.getpid()}_{secrets.token_hex(4)}"


@pytest.fixture
def posix_trio(unique_name, track):
    """A semaphore (value 3, mode 0640), a 12345-byte segment and a queue holding two messages
    (5 bytes, mode 0620), all under one name."""
    umask = os.umask(0o022)  # a known umask, which would otherwise clear the queue's 0o020
    try:
        semaphore = track(
            posix_ipc.Semaphore(unique_name, posix_ipc.O_CREX, mode=0o640, initial_value=3)
        )
        segment = track(posix_ipc.SharedMemory(unique_name, posix_ipc.O_CREX, size=12345))
        queue = track(posix_ipc.MessageQueue(unique_name, posix_ipc.O_CREX, mode=0o644))
    finally:
        os.umask(umask)
    os.chmod(f"/dev/mqueue/{unique_name[1:]}", 0o620)  # past the umask, as people do
    queue.send(b"abc")
    queue.send(b"de")
    return semaphore, segment, queue


def exists(unlink, name: str) -> bool:
    """Whether a POSIX object exists, probed by opening it (never by removing it)."""
    opener = {
        posix_ipc.unlink_semaphore: posix_ipc.Semaphore,
        posix_ipc.unlink_shared_memory: posix_ipc.SharedMemory,
        posix_ipc.unlink_message_queue: posix_ipc.MessageQueue,
    }[unlink]
    try:
        obj = opener(name)
    except posix_ipc.ExistentialError:
        return False
    getattr(obj, "close", getattr(obj, "close_fd", lambda: None))()
    return True


def sysv_exists(kind: str, id: int) -> bool:
    """Whether a System V id is still listed in /proc/sysvipc."""
    with open(f"/proc/sysvipc/{kind}") as file:
        return any(int(line.split()[1]) == id for line in file.readlines()[1:])


# --- ls ---------------------------------------------------------------------------------


def test_ls_json_lists_posix_objects_with_kind_mode_value_size_and_message_count(
    posix_trio, unique_name
):
    records = listed()
    semaphore = record_of(records, "sem", name=unique_name)
    segment = record_of(records, "shm", name=unique_name)
    queue = record_of(records, "mq", name=unique_name)
    assert semaphore["mode"] == "0640" and semaphore["value"] == 3
    assert segment["mode"] == "0600" and segment["size"] == 12345
    assert queue["mode"] == "0620" and queue["messages"] == 2 and queue["queued_bytes"] == 5
    for record in (semaphore, segment, queue):
        assert record["uid"] == os.geteuid()
        assert record["creator_pid"] is None and record["creator_alive"] is None
        assert record["key"] is None and record["id"] is None
        assert 0 <= record["age_seconds"] < 600


def test_ls_json_shows_the_process_registered_for_queue_notification(posix_trio, unique_name):
    queue = posix_trio[2]
    queue.receive()
    queue.receive()  # notification is only possible on an empty queue
    queue.request_notification(signal.SIGUSR1)
    try:
        record = record_of(listed("--kind", "mq"), "mq", name=unique_name)
    finally:
        queue.request_notification(None)
    assert record["notify_pid"] == os.getpid() and record["notify_alive"] is True
    assert record["messages"] == 0


def test_ls_works_when_the_extension_modules_fail_to_import(posix_trio, unique_name, tmp_path):
    for module in ("posix_ipc", "sysv_ipc"):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__init__.py").write_text("raise ImportError('broken on purpose')")
    (tmp_path / "ipcxx").symlink_to(Path(ipcxx.__file__).parent)
    result = subprocess.run(
        [sys.executable, "-m", "ipcxx", "ls", "--json", "--kind", "sem", "--kind", "shm"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert record_of(records, "shm", name=unique_name)["size"] == 12345
    # Without posix_ipc the value is read from the file where the sem_t layout is known.
    layout_known = platform.machine() in ("x86_64", "aarch64") and platform.libc_ver()[0] == "glibc"
    assert record_of(records, "sem", name=unique_name)["value"] == (3 if layout_known else None)


def test_ls_json_lists_sysv_objects_with_pids_alive_and_counts(sysv):
    semaphores = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, mode=0o604))
    segment = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=8192, mode=0o640))
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    queue.send(b"hello")
    records = listed("--kind", "sysv-sem", "--kind", "sysv-shm", "--kind", "sysv-msg")
    assert {record["kind"] for record in records} <= {"sysv-sem", "sysv-shm", "sysv-msg"}

    sem = record_of(records, "sysv-sem", id=semaphores.id)
    assert sem["key"] == semaphores.key and sem["mode"] == "0604" and sem["semaphores"] == 1
    assert sem["key_hex"] == f"0x{semaphores.key & 0xFFFFFFFF:08x}"

    shm = record_of(records, "sysv-shm", id=segment.id)
    assert shm["mode"] == "0640" and shm["size"] == 8192 and shm["attached"] == 1
    assert shm["creator_pid"] == os.getpid() and shm["creator_alive"] is True
    assert shm["last_pid"] == os.getpid() and shm["last_alive"] is True

    msg = record_of(records, "sysv-msg", id=queue.id)
    assert msg["messages"] == 1 and msg["queued_bytes"] == 5
    assert msg["last_send_pid"] == os.getpid() and msg["last_send_alive"] is True
    assert msg["last_receive_pid"] is None and msg["creator_pid"] is None


def test_ls_json_shows_creator_dead_for_a_segment_whose_creator_exited(sysv):
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sysv_ipc\n"
            "m = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=4096)\n"
            "print(m.id, os.getpid())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )  # run() returns once the child has exited: its pid is no longer alive
    segment_id, child_pid = map(int, child.stdout.split())
    sysv(sysv_ipc.attach(segment_id))
    shm = record_of(listed("--kind", "sysv-shm"), "sysv-shm", id=segment_id)
    assert shm["creator_pid"] == child_pid and shm["creator_alive"] is False
    assert shm["last_pid"] == os.getpid() and shm["last_alive"] is True  # our attach


def test_every_record_has_every_documented_key_and_help_lists_them(posix_trio):
    records = listed()
    assert records and all(list(record) == list(JSON_KEYS) for record in records)
    help_text = cli("ls", "--help").stdout
    assert all(key in help_text for key in JSON_KEYS)


def test_ls_prints_an_aligned_table_with_human_sizes(posix_trio, unique_name):
    result = cli("ls", "--kind", "shm", "--kind", "sem")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["KIND", "NAME/KEY", "ID", "OWNER"]
    mine = [row for row in rows if unique_name in row]
    assert len(mine) == 2
    assert "12.1KiB" in next(row for row in mine if row.startswith("shm"))
    # Aligned: every row's AGE column ends where the header's does (STATUS follows, "-" here).
    end = header.index("AGE") + len("AGE")
    assert all(row[end - 1] != " " and row[end:] == "  -" for row in mine), mine


# --- stat -------------------------------------------------------------------------------


def test_stat_refuses_a_name_shared_by_three_kinds_and_lists_them(posix_trio, unique_name):
    result = cli("stat", unique_name)
    assert result.returncode == 2
    assert "choose with --kind" in result.stderr
    rows = [line.split()[:2] for line in result.stderr.splitlines()[2:]]
    assert rows == [["sem", unique_name], ["shm", unique_name], ["mq", unique_name]]


def test_stat_with_kind_shows_the_one_object(posix_trio, unique_name):
    result = cli("stat", "--kind", "mq", unique_name.lstrip("/"))
    assert result.returncode == 0, result.stderr
    assert "messages" in result.stdout and "queued_bytes" in result.stdout
    record = json.loads(cli("stat", "--json", "--kind", "sem", unique_name).stdout)
    assert record["kind"] == "sem" and record["value"] == 3


def test_stat_finds_sysv_objects_by_decimal_id_hex_id_and_key(sysv):
    segment = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=4096))
    for reference in (str(segment.id), hex(segment.id), f"key:0x{segment.key & 0xFFFFFFFF:x}"):
        result = cli("stat", "--json", "--kind", "sysv-shm", reference)
        assert result.returncode == 0, (reference, result.stderr)
        assert json.loads(result.stdout)["id"] == segment.id


def test_stat_of_a_missing_object_fails_with_status_1(unique_name):
    result = cli("stat", unique_name)
    assert result.returncode == 1 and "no such IPC object" in result.stderr


# --- rm by name or id -------------------------------------------------------------------


def test_rm_by_name_with_kind_removes_exactly_that_object(posix_trio, unique_name):
    result = cli("rm", "--kind", "shm", unique_name)
    assert result.returncode == 0, result.stderr
    assert f"removed shm {unique_name}" in result.stdout
    assert not exists(posix_ipc.unlink_shared_memory, unique_name)
    assert exists(posix_ipc.unlink_semaphore, unique_name)
    assert exists(posix_ipc.unlink_message_queue, unique_name)


def test_rm_of_an_ambiguous_name_removes_nothing(posix_trio, unique_name):
    result = cli("rm", unique_name)
    assert result.returncode == 2 and "choose with --kind" in result.stderr
    assert exists(posix_ipc.unlink_shared_memory, unique_name)
    assert exists(posix_ipc.unlink_semaphore, unique_name)
    assert exists(posix_ipc.unlink_message_queue, unique_name)


def test_rm_by_sysv_id_removes_exactly_that_object(sysv):
    first = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    second = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    result = cli("rm", "--kind", "sysv-msg", str(first.id))
    assert result.returncode == 0, result.stderr
    assert not sysv_exists("msg", first.id) and sysv_exists("msg", second.id)


def test_rm_dry_run_removes_nothing(posix_trio, unique_name):
    result = cli("rm", "--dry-run", "--kind", "sem", unique_name)
    assert result.returncode == 0, result.stderr
    assert f"would remove sem {unique_name}" in result.stdout
    assert exists(posix_ipc.unlink_semaphore, unique_name)


def test_rm_without_names_or_filters_refuses_with_status_2(posix_trio, unique_name):
    for args in ((), ("--dry-run",)):
        result = cli("rm", *args)
        assert result.returncode == 2 and "never removes everything" in result.stderr
    assert exists(posix_ipc.unlink_semaphore, unique_name)
    assert exists(posix_ipc.unlink_shared_memory, unique_name)


def test_rm_of_a_missing_name_reports_failure_with_status_1(unique_name):
    result = cli("rm", "--kind", "sem", unique_name)
    assert result.returncode == 1 and "no such IPC object" in result.stderr


# --- rm by filter, in a private IPC and mount namespace ---------------------------------

# Runs inside the namespace: fresh /dev/shm and /dev/mqueue, an empty System V table.
NAMESPACE_PRELUDE = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    import posix_ipc, sysv_ipc

    def cli(*args):
        result = subprocess.run([sys.executable, "-m", "ipcxx", *args],
                                capture_output=True, text=True)
        return {"status": result.returncode, "out": result.stdout, "err": result.stderr}

    def inventory():
        records = json.loads(cli("ls", "--json")["out"])
        return sorted(f"{r['kind']} {r['name'] or r['id']}" for r in records)

    def dead_creator_segment():
        code = "import sysv_ipc; print(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX).id)"
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True).stdout)
    """
)


def namespace_unavailable_reason() -> str | None:
    """Why a private IPC + mount namespace cannot be made here, or None if it can."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(
        ["unshare", "--ipc", "--mount", "sh", "-c",
         "mount -t tmpfs tmpfs /dev/shm && mount -t mqueue none /dev/mqueue"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"cannot make a private IPC + mount namespace (needs root): {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def in_namespace():
    """in_namespace(code) runs PRELUDE + code in a private namespace and returns the JSON it
    prints. Everything it creates vanishes with the namespace, whatever the outcome."""
    reason = namespace_unavailable_reason()
    if reason:
        pytest.skip(reason)

    def run(code: str) -> dict:
        script = NAMESPACE_PRELUDE + textwrap.dedent(code)
        result = subprocess.run(
            ["unshare", "--ipc", "--mount", "sh", "-c",
             'mount -t tmpfs tmpfs /dev/shm && mount -t mqueue none /dev/mqueue && exec "$@"',
             "sh", sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


def test_rm_creator_dead_removes_only_segments_whose_creator_exited(in_namespace):
    outcome = in_namespace(
        """
        dead = dead_creator_segment()
        alive = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX).id
        queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX).id
        posix_ipc.SharedMemory("/orphan", posix_ipc.O_CREX, size=1)
        before = inventory()
        dry = cli("rm", "--dry-run", "--creator-dead")
        after_dry = inventory()
        real = cli("rm", "--creator-dead")
        print(json.dumps(dict(dead=dead, alive=alive, queue=queue, before=before, dry=dry,
                              after_dry=after_dry, real=real, after=inventory())))
        """
    )
    dead, alive, queue = outcome["dead"], outcome["alive"], outcome["queue"]
    assert outcome["before"] == sorted(
        [f"sysv-shm {dead}", f"sysv-shm {alive}", f"sysv-msg {queue}", "shm /orphan"]
    )
    assert outcome["dry"]["status"] == 0 and f"id {dead}" in outcome["dry"]["out"]
    assert outcome["after_dry"] == outcome["before"]
    assert outcome["real"]["status"] == 0
    assert "POSIX" in outcome["real"]["err"]  # says --creator-dead does not apply to them
    assert outcome["after"] == sorted([f"sysv-shm {alive}", f"sysv-msg {queue}", "shm /orphan"])


def test_rm_older_than_removes_only_objects_older_than_the_age(in_namespace):
    outcome = in_namespace(
        """
        for name in ("/old", "/new"):
            posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=1)
        posix_ipc.Semaphore("/new", posix_ipc.O_CREX)
        sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX)
        two_hours_ago = time.time() - 7200
        os.utime("/dev/shm/old", (two_hours_ago, two_hours_ago))
        before = inventory()
        result = cli("rm", "--older-than", "1h")
        print(json.dumps(dict(before=before, result=result, after=inventory())))
        """
    )
    assert outcome["result"]["status"] == 0, outcome["result"]["err"]
    assert outcome["result"]["out"].splitlines() == ["removed shm /old"]
    assert outcome["after"] == [entry for entry in outcome["before"] if entry != "shm /old"]


def test_rm_with_only_a_kind_refuses_and_removes_nothing(in_namespace):
    outcome = in_namespace(
        """
        posix_ipc.SharedMemory("/keep", posix_ipc.O_CREX, size=1)
        before = inventory()
        result = cli("rm", "--kind", "shm")
        print(json.dumps(dict(before=before, result=result, after=inventory())))
        """
    )
    assert outcome["result"]["status"] == 2
    assert outcome["before"] == outcome["after"] == ["shm /keep"]


# --- what an administrator expects of such a tool (issue 17) ----------------------------


def test_version_prints_the_package_version():
    for flag in ("--version", "-V"):
        result = cli(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"ipcxx {ipcxx.__version__}\n"


def test_ls_prints_its_header_when_nothing_is_listed(in_namespace):
    outcome = in_namespace(
        """
        print(json.dumps(dict(everything=cli("ls"), one_kind=cli("ls", "--kind", "sysv-msg"),
                              json=cli("ls", "--json"))))
        """
    )
    for result in (outcome["everything"], outcome["one_kind"]):
        assert result["status"] == 0 and result["err"] == ""  # /dev/mqueue is mounted: no note
        assert [line.split() for line in result["out"].splitlines()] == [list(COLUMNS)]
    assert outcome["json"]["status"] == 0 and json.loads(outcome["json"]["out"]) == []


MOUNT_HINT = "mount -t mqueue none /dev/mqueue"


def test_an_unmounted_dev_mqueue_is_noted_with_how_to_mount_it(in_namespace):
    outcome = in_namespace(
        """
        # Unmount every mqueue file system on /dev/mqueue (ours, and any it covers).
        while subprocess.run(["umount", "/dev/mqueue"], capture_output=True).returncode == 0:
            pass
        queue = posix_ipc.MessageQueue("/hidden", posix_ipc.O_CREX)  # needs no mount
        try:
            results = dict(ls=cli("ls"), json=cli("ls", "--json", "--kind", "mq"),
                           segments_only=cli("ls", "--kind", "shm"), stat=cli("stat", "/hidden"),
                           rm=cli("rm", "--dry-run", "--older-than", "0s"))
        finally:
            queue.unlink()
        print(json.dumps(results))
        """
    )
    for command in ("ls", "json"):
        assert outcome[command]["status"] == 0
        assert "/hidden" not in outcome[command]["out"]
        assert "not mounted" in outcome[command]["err"] and MOUNT_HINT in outcome[command]["err"]
    assert json.loads(outcome["json"]["out"]) == []
    assert outcome["segments_only"]["err"] == ""  # queues not asked for: nothing to say
    assert outcome["stat"]["status"] == 1
    assert "no such IPC object" in outcome["stat"]["err"] and MOUNT_HINT in outcome["stat"]["err"]
    assert MOUNT_HINT in outcome["rm"]["err"]


def test_ls_and_stat_show_the_values_of_sysv_semaphore_sets(sysv):
    semaphores = sysv(sysv_ipc.SemaphoreSet(None, sysv_ipc.IPC_CREX, count=6, initial_value=2))
    semaphores.set_value(1, 0)
    semaphores.set_value(5, 7)
    # A set of key IPC_PRIVATE cannot be opened by key, so its values cannot be read.
    private = sysv(sysv_ipc.SemaphoreSet(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, count=2))
    records = listed("--kind", "sysv-sem")
    assert record_of(records, "sysv-sem", id=semaphores.id)["values"] == [2, 0, 2, 2, 2, 7]
    assert record_of(records, "sysv-sem", id=private.id)["values"] is None

    result = cli("ls", "--kind", "sysv-sem")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    # Two cells before VALUE are two words each: the key `0x... (n)` and the size `6 sems`.
    value_column = header.split().index("VALUE") + 2
    cells = {int(row.split()[3]): row.split()[value_column] for row in rows}
    assert cells[semaphores.id] == "2,0,2,2,..."  # the first four; stat and --json show all
    assert cells[private.id] == "?"

    shown = cli("stat", "--kind", "sysv-sem", str(semaphores.id)).stdout
    assert "values 2 0 2 2 2 7".split() in [line.split() for line in shown.splitlines()]


# --- human forms ------------------------------------------------------------------------


def test_ages_and_sizes_read_like_people_write_them():
    assert [format_age(s) for s in (0, 45, 192, 7200, 7500, 4 * 86400)] == [
        "0s", "45s", "3m12s", "2h", "2h5m", "4d",
    ]  # fmt: skip
    assert [format_size(s) for s in (512, 4096, 1572864)] == ["512B", "4.0KiB", "1.5MiB"]
    assert [parse_age(t) for t in ("30s", "10m", "2h", "7d", "1h30m", "90")] == [
        30, 600, 7200, 604800, 5400, 90,
    ]  # fmt: skip
    with pytest.raises(ValueError):
        parse_age("3 weeks")


def test_an_unparsable_age_is_a_usage_error():
    result = cli("rm", "--older-than", "soon")
    assert result.returncode == 2 and "not an age" in result.stderr


def test_a_fresh_object_is_not_older_than_a_minute(posix_trio, unique_name):
    result = cli("rm", "--dry-run", "--kind", "shm", "--older-than", "1m", unique_name)
    assert result.returncode == 0 and "would remove" not in result.stdout

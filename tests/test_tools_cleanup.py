"""The benchmark and the demo touch only what they created: a crashed worker's cleanup and the
demo leave other programs' objects alone, and msgsize_max changes only with the flag."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import posix_ipc
import sysv_ipc

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import run as bench_run  # noqa: E402

# Cases whose factories create one object of each kind, POSIX and System V.
CRASH_CASES = [
    "posix_sem_acquire_release",
    "posix_mq_send_receive_16B",
    "posix_shm_mapped_write_read_1MiB",
    "sysv_sem_acquire_release",
    "sysv_mq_send_receive_16B",
    "sysv_shm_write_read_1MiB",
]

# A bench worker that sets up real cases (their objects named and recorded as the run's),
# says so, waits for the test's go and then dies by SIGKILL without cleaning up.
CRASHING_WORKER = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import cases
made = [cases.CASES[name]() for name in sys.argv[2:]]
print("created", flush=True)
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def owned() -> Iterator[bench_run.OwnedObjects]:
    """A benchmark run's names and keys; whatever of it is left is removed at teardown."""
    objects = bench_run.OwnedObjects()
    yield objects
    objects.close()


@pytest.fixture
def foreign_shm(make_name, track):
    """foreign_shm(name=None) creates a POSIX segment that is not the benchmark's, holding a
    marker; it is unlinked at teardown."""

    def create(name: str | None = None) -> str:
        name = name or make_name()
        memory = track(posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=4096))
        os.pwrite(memory.fd, b"foreign", 0)
        return name

    return create


@pytest.fixture
def foreign_sysv_shm(sysv):
    """foreign_sysv_shm(key=None) creates a System V segment that is not the benchmark's; it
    is removed at teardown. Returns (key, id)."""

    def create(key: int | None = None) -> tuple[int, int]:
        memory = sysv(sysv_ipc.SharedMemory(key, sysv_ipc.IPC_CREX, size=4096))
        memory.write(b"foreign")
        memory.detach()
        return memory.key, memory.id

    return create


def posix_exists(name: str) -> bool:
    return Path("/dev/shm", name.lstrip("/")).exists()


def posix_content(name: str) -> bytes:
    memory = posix_ipc.SharedMemory(name)
    try:
        return os.pread(memory.fd, 7, 0)
    finally:
        memory.close_fd()


def sysv_shm_exists(key: int, ident: int) -> bool:
    return ("shm", key, ident) in bench_run.sysv_objects()


def test_crashed_worker_cleanup_removes_the_runs_objects_and_no_foreign_one(
    owned, foreign_shm, foreign_sysv_shm
):
    # Foreign objects from before the run: another program's, another benchmark run's (same
    # "ipcxx_bench_" start, other pid/token), and a System V key inside this run's key block
    # that the run never recorded.
    other_run = bench_run.OwnedObjects()
    try:
        before = [foreign_shm(), foreign_shm("/" + other_run.prefix + "segment")]
        sysv_before = [foreign_sysv_shm(), foreign_sysv_shm(owned.key_first)]
        worker = subprocess.Popen(
            [sys.executable, "-c", CRASHING_WORKER, str(BENCH), *CRASH_CASES],
            env=owned.environment(dict(os.environ)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None and worker.stdin is not None
            assert worker.stdout.readline().strip() == "created"
            assert len(owned.leftovers()) == len(CRASH_CASES)
            # Objects that appear while the worker runs are not the run's either.
            during = [foreign_shm()]
            sysv_during = [foreign_sysv_shm()]
            worker.stdin.write("go\n")
            worker.stdin.flush()
            assert worker.wait(timeout=60) == -signal.SIGKILL
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

        removed = owned.remove_leftovers()

        assert len(removed) == len(CRASH_CASES)
        assert owned.leftovers() == []
        for name in before + during:
            assert posix_exists(name), name
            assert posix_content(name) == b"foreign"
        for key, ident in sysv_before + sysv_during:
            assert sysv_shm_exists(key, ident), (key, ident)
    finally:
        other_run.close()


def test_measure_after_a_worker_crash_removes_only_what_the_worker_created(
    owned, make_name, tmp_path
):
    """measure(), the path every benchmark sample takes: the worker makes its case objects
    and, as another program on the machine might meanwhile, two foreign objects; then dies."""
    foreign_name = make_name()
    foreign_key_file = tmp_path / "foreign_key"
    worker = CRASHING_WORKER.replace(
        'print("created", flush=True)\nsys.stdin.readline()\n',
        "import posix_ipc, sysv_ipc\n"
        f"posix_ipc.SharedMemory({foreign_name!r}, posix_ipc.O_CREX, size=4096).close_fd()\n"
        "m = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=4096)\n"
        f"open({str(foreign_key_file)!r}, 'w').write(f'{{m.key}} {{m.id}}')\n",
    )
    try:
        value = bench_run.measure(
            [sys.executable, "-c", worker, str(BENCH), *CRASH_CASES], dict(os.environ), owned
        )
        assert value is None  # a failed sample, reported, not raised
        assert owned.leftovers() == []
        assert posix_exists(foreign_name)
        key, ident = map(int, foreign_key_file.read_text().split())
        assert sysv_shm_exists(key, ident)
    finally:
        if foreign_key_file.exists():
            key, ident = map(int, foreign_key_file.read_text().split())
            bench_run.remove_sysv("shm", ident)


def test_core_benchmark_cleanup_removes_only_that_processes_names(track):
    """cpp/bench/core_bench.cpp names objects /ipcxx_bench_<what>_<its pid>; the cleanup after
    it takes exactly those of the pid that ran, not a longer pid or another suffix."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(finished.stdout)
    names = [f"/ipcxx_bench_shm_{pid}", f"/ipcxx_bench_shm_{pid}0", f"/ipcxx_bench_shm_{pid}_x"]
    for name in names:
        track(posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=4096))

    bench_run.remove_core_leftovers(pid)

    assert [posix_exists(name) for name in names] == [False, True, True]


def test_demo_run_leaves_foreign_objects_alone(foreign_shm, foreign_sysv_shm):
    names = [foreign_shm(), foreign_shm("/ipcxx_demo_" + secrets.token_hex(4))]
    segments = [foreign_sysv_shm()]
    result = subprocess.run(
        [sys.executable, "-m", "ipcxx", "demo", "--rounds", "50"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "demo finished: all objects removed" in result.stdout
    for name in names:
        assert posix_content(name) == b"foreign"
    for key, ident in segments:
        assert sysv_shm_exists(key, ident)


def test_demo_does_not_unlink_a_name_it_could_not_create(monkeypatch, make_name, foreign_shm):
    """The demo's own names are taken by someone else: O_CREX fails and the demo removes only
    the objects it did create before that."""
    from ipcxx import demo

    prefix = make_name() + "_"
    monkeypatch.setattr(demo, "_prefix", lambda: prefix)
    taken = foreign_shm(prefix + "memory")
    try:
        with pytest.raises(posix_ipc.ExistentialError):
            demo.run(10)
        assert posix_content(taken) == b"foreign"
        for kind in ("ping", "pong"):  # created by the demo before the clash, then removed
            with pytest.raises(posix_ipc.ExistentialError):
                posix_ipc.Semaphore(prefix + kind)
    finally:
        for kind in ("ping", "pong"):
            try:
                posix_ipc.unlink_semaphore(prefix + kind)
            except posix_ipc.ExistentialError:
                pass


def test_benchmark_run_without_the_flag_leaves_msgsize_max_unchanged(tmp_path):
    try:
        before = bench_run.MSGSIZE_MAX.read_text()
    except OSError:
        pytest.skip("no /proc/sys/fs/mqueue/msgsize_max on this system")
    case = "posix_mq_send_receive_64KiB"
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--case", case, "--ipcxx-only",
         "--no-core", "--no-docs", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert bench_run.MSGSIZE_MAX.read_text() == before
    (report_file,) = tmp_path.glob("*.json")
    entry = json.loads(report_file.read_text())["cases"][case]
    if int(before) < 65536:
        assert "--raise-msgsize-max" in entry["skipped"]
        assert f"{case} skipped" in result.stdout
    else:
        assert entry["ipcxx"]["median"] > 0


def test_message_size_limit_writes_nothing_without_the_flag(tmp_path):
    setting = tmp_path / "msgsize_max"
    setting.write_text("8192\n")
    with bench_run.message_size_limit(65536, may_raise=False, path=setting) as available:
        assert available == 8192
        assert setting.read_text() == "8192\n"
    assert setting.read_text() == "8192\n"
    assert "posix_mq_send_receive_64KiB" in bench_run.skipped_cases(available)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_message_size_limit_with_the_flag_restores_the_setting_after_an_error(tmp_path, error):
    setting = tmp_path / "msgsize_max"
    setting.write_text("8192\n")
    with pytest.raises(error):
        with bench_run.message_size_limit(65536, may_raise=True, path=setting) as available:
            assert available == 65536
            assert setting.read_text() == "65536"
            raise error
    assert int(setting.read_text()) == 8192
    assert bench_run.skipped_cases(65536) == {}

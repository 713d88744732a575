"""Side-by-side benchmark of ipcxx against the upstream posix_ipc 1.3.2 and sysv_ipc 1.2.0.

    python bench/run.py [--quick] [--no-docs] [--raise-msgsize-max]

Upstream is built from its PyPI sdists into bench/.upstream (a --target folder: the module
names clash with ours), each side runs in its own worker process per case, cases are
interleaved and repeated, and a C program (bench/floor.c) gives the raw-syscall floor. The C++
core is compared with the raw calls it wraps through Google Benchmark. Results go to
bench/results/<date>.json and, unless --no-docs, to docs/performance.md with PNG charts.
A benchmark reports; it never asserts.

Some rows compare an ipcxx feature with an alternative instead of upstream (COMPARED_WITH:
ipcxx.Channel against ipcxx's POSIX queue, faster-fifo, iceoryx2, a pipe, a memcpy): their
other side runs against ipcxx too, plus the alternative packages, installed from PyPI wheels
at pinned versions into bench/.alternatives (a row whose package has no wheel for this Python
says so and keeps its ipcxx side).

The run touches only what it created: workers name every POSIX object with the run's own
prefix (pid + random token) and record every System V object they create (kind, key, id), and
cleanup after a crashed worker removes exactly those. System settings are changed only on
request (--raise-msgsize-max) and restored afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import queue_cases  # bench/queue_cases.py: bench/ is this script's folder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPSTREAM = HERE / ".upstream"
BUILD = HERE / ".build"
UPSTREAM_PINS = ("posix_ipc==1.3.2", "sysv_ipc==1.2.0")
SIDES = ("ipcxx", "upstream")
SIDE_ORDER = ("ipcxx", "upstream", "alternative")  # every side a report can hold
ALTERNATIVES = HERE / ".alternatives"
# Each alternative package with its pinned requirements, installed into its own folder.
ALTERNATIVE_PINS: dict[str, tuple[str, ...]] = {
    "faster_fifo": ("faster-fifo==1.5.2",),
    "iceoryx2": ("iceoryx2==0.10.0", "flatbuffers==25.12.19"),
}

# (case, target ratio ipcxx/upstream or None). Order is the order of the table.
CASES: list[tuple[str, float | None]] = [
    ("posix_sem_acquire_release", 0.6),
    ("robust_lock_acquire_release", None),
    ("robust_lock_vs_sysv_undo_acquire_release", None),
    ("posix_sem_acquire0_release", None),
    ("posix_sem_acquire0_busy", 0.5),
    ("posix_sem_acquire_release_busy_thread", 0.01),
    ("posix_mq_send_receive_16B", 0.85),
    ("posix_mq_send_receive_1KiB", None),
    ("posix_mq_send_receive_8KiB", 0.8),
    ("posix_mq_send_receive_64KiB", None),
    # ipcxx extensions against what upstream offers for the same work (receive(), an mmap).
    ("posix_mq_send_receive_into_8KiB", None),
    ("posix_shm_create_map_write_unlink_1MiB", 0.6),
    ("posix_shm_mapped_write_read_1MiB", None),
    ("posix_shm_memoryview_write_read_1MiB", None),
    ("posix_pingpong_semaphores_one_way", 1.0),
    ("posix_pingpong_queues_one_way", 1.0),
    ("sysv_sem_acquire_release", 0.9),
    ("sysv_sem_acquire_timeout0_busy", 0.02),
    ("sysv_sem_block_false_busy", None),
    ("sysv_semset_op_2_vs_2_semops", None),
    ("sysv_mq_send_receive_16B", 0.85),
    ("sysv_mq_send_receive_8KiB", None),
    ("sysv_mq_send_receive_into_8KiB", None),
    ("sysv_shm_write_read_1MiB", 0.95),
    ("sysv_shm_memoryview_write_read_1MiB", None),
    ("posix_sem_contention_1_processes", None),
    ("posix_sem_contention_2_processes", None),
    ("posix_sem_contention_4_processes", None),
    ("posix_sem_contention_8_processes", None),
    # ipcxx.Channel against alternatives (issue 12's table; COMPARED_WITH says what). Targets are
    # time ratios: "≥ 4× faster" is ≤ 0.25, "≥ 0.8× memcpy bandwidth" is ≤ 1.25.
    ("channel_send_receive_16B_vs_posix_mq", 0.15),
    ("channel_2proc_16B_vs_posix_mq", 0.25),
    ("channel_2proc_16B_vs_faster_fifo", 0.2),
    ("channel_2proc_16B_vs_iceoryx2", 0.2),
    ("channel_2proc_16B_vs_pipe", None),
    ("channel_2proc_batch64_vs_posix_mq", 0.05),
    ("channel_2proc_64KiB_batch64_adaptive_vs_fixed_spin", None),
    ("channel_2proc_1MiB_receive_many_vs_receive", None),
    ("channel_2proc_1MiB_receive_many_into_vs_receive", None),
    ("channel_pingpong_one_way_vs_iceoryx2_busy", 1.0),
    ("channel_pingpong_spin0_one_way_vs_posix_mq", 1.0),
    ("channel_reserve_peek_1MiB_vs_memcpy", 1.25),
    # ipcxx::Channel from C++ (cpp/bench/channel_bench.cpp) against the same from Python.
    ("channel_2proc_16B_cpp_vs_python", None),
    ("channel_2proc_16B_cpp_guards_vs_python", None),
]

# Rows whose other side is an alternative, not upstream: (what it is, the ALTERNATIVE_PINS
# package it needs or None). Their ratio is ipcxx / alternative.
COMPARED_WITH: dict[str, tuple[str, str | None]] = {
    "channel_send_receive_16B_vs_posix_mq": (
        "ipcxx posix_ipc.MessageQueue send + receive, one process",
        None,
    ),
    "channel_2proc_16B_vs_posix_mq": ("ipcxx posix_ipc.MessageQueue (10 deep)", None),
    "channel_2proc_16B_vs_faster_fifo": ("faster_fifo.Queue put/get (1 MiB)", "faster_fifo"),
    "channel_2proc_16B_vs_iceoryx2": (
        "iceoryx2 publish-subscribe, send_copy / busy-polled receive",
        "iceoryx2",
    ),
    "channel_2proc_16B_vs_pipe": ("os.pipe() os.write / os.read", None),
    "channel_2proc_batch64_vs_posix_mq": (
        "ipcxx posix_ipc.MessageQueue (10 deep; no batch call)",
        None,
    ),
    "channel_2proc_64KiB_batch64_adaptive_vs_fixed_spin": (
        "ipcxx.Channel, the same with a fixed 50 µs spin",
        None,
    ),
    "channel_2proc_1MiB_receive_many_vs_receive": (
        "ipcxx.Channel, the consumer calling receive()",
        None,
    ),
    "channel_2proc_1MiB_receive_many_into_vs_receive": (
        "ipcxx.Channel, the consumer calling receive()",
        None,
    ),
    "channel_pingpong_one_way_vs_iceoryx2_busy": (
        "iceoryx2 publish-subscribe both ways, busy-polling",
        "iceoryx2",
    ),
    "channel_pingpong_spin0_one_way_vs_posix_mq": (
        "ipcxx posix_ipc.MessageQueue ping-pong (2 queues)",
        None,
    ),
    "channel_reserve_peek_1MiB_vs_memcpy": ("one 1 MiB copy (memoryview slice assignment)", None),
    "channel_2proc_16B_cpp_vs_python": ("ipcxx.Channel send / receive from Python", None),
    "channel_2proc_16B_cpp_guards_vs_python": ("ipcxx.Channel send / receive from Python", None),
}

# ipcxx.Queue against faster-fifo, multiprocessing.Queue, the pickling floor and a memcpy
# (issue 18's table): rows of their own module, bench/queue_cases.py.
CASES += [(name, target) for name, target, _, _ in queue_cases.ROWS]
COMPARED_WITH.update({name: (what, package) for name, _, what, package in queue_cases.ROWS})

# Rows whose ipcxx side is a C++ program of cpp/bench (built by build_cpp_workers()), run as
# `program CASE SECONDS` like floor.c, instead of cases.py.
CPP_WORKER = "ipcxx_channel_bench"
CPP_CASES = {"channel_2proc_16B_cpp_vs_python", "channel_2proc_16B_cpp_guards_vs_python"}


MSGSIZE_MAX = Path("/proc/sys/fs/mqueue/msgsize_max")
# Cases that need a larger system limit than the default; skipped when it is not available.
NEEDS_MSGSIZE = {"posix_mq_send_receive_64KiB": 65536}


@contextlib.contextmanager
def message_size_limit(
    at_least: int, *, may_raise: bool, path: Path = MSGSIZE_MAX
) -> Iterator[int | None]:
    """Yields the msgsize_max the run can use (None when the system does not say). Writes the
    setting only when may_raise (the --raise-msgsize-max flag) and it is below at_least, and
    then always writes the old value back, on Ctrl-C and errors too."""
    try:
        old: int | None = int(path.read_text())
    except (OSError, ValueError):
        old = None
    if old is None or old >= at_least or not may_raise:
        yield old
        return
    try:
        path.write_text(str(at_least))
    except OSError as error:
        print(f"msgsize_max stays {old}: cannot raise it ({error.strerror})")
        yield old
        return
    print(f"msgsize_max raised from {old} to {at_least} for this run (--raise-msgsize-max)")
    try:
        yield at_least
    finally:
        path.write_text(str(old))
        print(f"msgsize_max restored to {old}")


def skipped_cases(msgsize: int | None) -> dict[str, str]:
    """The cases this run cannot do with the msgsize_max it has, and why."""
    if msgsize is None:
        return {}
    return {
        name: f"skipped: needs msgsize_max >= {need}, this system has {msgsize} "
        "(rerun as root with --raise-msgsize-max)"
        for name, need in NEEDS_MSGSIZE.items()
        if msgsize < need
    }


# Environment variables through which workers (cases.py, floor.c) learn what the run owns.
PREFIX_VARIABLE = "IPCXX_BENCH_PREFIX"
RECORD_VARIABLE = "IPCXX_BENCH_RECORD"
KEYS_VARIABLE = "IPCXX_BENCH_KEYS"
KEY_BLOCK = 0x10000
SYSV_KINDS = ("sem", "shm", "msg")
IPC_RMID = 0


class OwnedObjects:
    """The IPC names and System V keys of one benchmark run.

    POSIX objects are named `/<prefix>...`, the prefix holding this process's pid and a random
    token. System V objects take keys from a random block of KEY_BLOCK keys (floor.c uses
    IPC_PRIVATE), and every worker appends "kind key id" to the record file right after each
    creation. remove_leftovers() removes exactly those: a name with this prefix, or a System V
    object whose recorded key and id are both still current. Nothing else on the machine is
    touched, whenever it appeared. (A worker killed between creating a System V object and
    recording it leaves that one behind: a leak, never someone else's object removed.)"""

    def __init__(self) -> None:
        self.prefix = f"ipcxx_bench_{os.getpid()}_{secrets.token_hex(4)}_"
        self.key_first = 0x10000000 + secrets.randbelow(0x6FFF) * KEY_BLOCK
        self._folder = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.record = self._folder / "sysv_objects"
        self.record.touch()

    def __enter__(self) -> OwnedObjects:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Removes what is left, then the record's folder."""
        self.remove_leftovers()
        shutil.rmtree(self._folder, ignore_errors=True)

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """env plus what a worker needs to name, key and record its objects."""
        return dict(
            env,
            **{
                PREFIX_VARIABLE: self.prefix,
                RECORD_VARIABLE: str(self.record),
                KEYS_VARIABLE: f"{self.key_first}:{KEY_BLOCK}",
            },
        )

    def _posix_leftovers(self) -> list[Path]:
        found = []
        for folder, patterns in (
            ("/dev/shm", (self.prefix, "sem." + self.prefix)),
            ("/dev/mqueue", (self.prefix,)),
        ):
            if os.path.isdir(folder):
                found += [
                    Path(folder, entry)
                    for entry in sorted(os.listdir(folder))
                    if entry.startswith(patterns)
                ]
        return found

    def _sysv_leftovers(self) -> list[tuple[str, int, int]]:
        recorded = set()
        with contextlib.suppress(OSError):
            for line in self.record.read_text().splitlines():
                fields = line.split()
                if len(fields) == 3 and fields[0] in SYSV_KINDS:
                    recorded.add((fields[0], int(fields[1]), int(fields[2])))
        current = set()
        for kind, key, ident in sysv_objects():
            if (kind, key, ident) in recorded:
                current.add((kind, key, ident))
        return sorted(current)

    def leftovers(self) -> list[str]:
        """This run's objects that still exist."""
        return [str(path) for path in self._posix_leftovers()] + [
            f"sysv-{kind}:key={key}:id={ident}" for kind, key, ident in self._sysv_leftovers()
        ]

    def remove_leftovers(self) -> list[str]:
        """Removes this run's objects that still exist (a killed or failing worker's); returns
        what it removed."""
        removed = []
        for path in self._posix_leftovers():
            # On Linux, unlinking the file is shm_unlink / sem_unlink / mq_unlink.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(str(path))
        for kind, key, ident in self._sysv_leftovers():
            if remove_sysv(kind, ident):
                removed.append(f"sysv-{kind}:key={key}:id={ident}")
        return removed


def sysv_objects() -> list[tuple[str, int, int]]:
    """(kind, key, id) of every System V object on the machine."""
    found = []
    for kind in SYSV_KINDS:
        table = Path(f"/proc/sysvipc/{kind}")
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                found.append((kind, int(fields[0]), int(fields[1])))
    return found


def remove_sysv(kind: str, ident: int) -> bool:
    """IPC_RMID on one System V object by id; False when it is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if kind == "sem":
        status = libc.semctl(ident, 0, IPC_RMID)
    elif kind == "shm":
        status = libc.shmctl(ident, IPC_RMID, None)
    else:
        status = libc.msgctl(ident, IPC_RMID, None)
    return status == 0


def ensure_upstream() -> None:
    """Builds upstream from source, as the spec's measurements did: the manylinux wheel of
    sysv_ipc 1.2.0 is built without semtimedop (SEMAPHORE_TIMEOUT_SUPPORTED False), so its
    acquire(timeout=0) would wait forever."""
    marker = UPSTREAM / ".pins"
    if marker.exists() and marker.read_text() == " ".join(UPSTREAM_PINS):
        return
    shutil.rmtree(UPSTREAM, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "--target", str(UPSTREAM), *UPSTREAM_PINS],
        check=True,
    )  # fmt: skip
    marker.write_text(" ".join(UPSTREAM_PINS))


def alternative_paths() -> list[Path]:
    return [ALTERNATIVES / package for package in ALTERNATIVE_PINS]


def ensure_alternatives(
    packages: set[str], folder: Path = ALTERNATIVES, pins: dict | None = None
) -> dict[str, str]:
    """Installs each needed alternative package from PyPI wheels (--only-binary: never a local
    build of a Rust or C extension) at its pinned versions into folder/<package>; returns
    {package: why it is unavailable} for those that could not be installed."""
    pins = ALTERNATIVE_PINS if pins is None else pins
    unavailable = {}
    for package in sorted(packages):
        target = folder / package
        marker = target / ".pins"
        wanted = " ".join(pins[package])
        if marker.exists() and marker.read_text() == wanted:
            continue
        shutil.rmtree(target, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--only-binary", ":all:", "--target", str(target), *pins[package]],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tag = f"CPython {platform.python_version()} on {platform.machine()}"
            unavailable[package] = f"{wanted}: no installable wheel for {tag}"
            print(f"alternative unavailable: {unavailable[package]}\n{result.stderr[-800:]}")
            continue
        marker.write_text(wanted)
    return unavailable


def build_floor() -> Path:
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "floor"
    subprocess.run(
        ["cc", "-O2", "-Wall", "-Wextra", "-pthread", "-o", str(binary),
         str(HERE / "floor.c"), "-lrt"],
        check=True,
    )  # fmt: skip
    return binary


def configure_cpp() -> Path | None:
    """Configures the Release build of the C++ core with cpp/bench (BUILD/core); None when
    cmake fails."""
    build = BUILD / "core"
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Release", "-DIPCXX_BUILD_BENCH=ON"],
        capture_output=True, text=True,
    )  # fmt: skip
    if configure.returncode != 0:
        print(f"C++ benchmarks skipped: cmake failed\n{configure.stderr[-1500:]}")
        return None
    return build


def build_cpp_worker() -> Path | None:
    """The C++ Channel worker (cpp/bench/channel_bench.cpp) against the Release core; None when
    it cannot be built (its rows then report the Python side only)."""
    build = configure_cpp()
    if build is None:
        return None
    built = subprocess.run(
        ["cmake", "--build", str(build), "--target", CPP_WORKER], capture_output=True, text=True
    )
    if built.returncode != 0:
        print(f"C++ Channel rows skipped: the build failed\n{built.stdout[-1500:]}")
        return None
    return next(build.rglob(CPP_WORKER))


def measure(command: list[str], env: dict[str, str], owned: OwnedObjects) -> float | None:
    """Runs one worker; whatever way it ends, removes the objects it left (by the run's prefix
    and record, never by "what appeared")."""
    try:
        result = subprocess.run(
            command, env=owned.environment(env), capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        print(f"  timed out: {' '.join(command)}", file=sys.stderr)
        return None
    finally:
        removed = owned.remove_leftovers()
        if removed:
            print(f"  removed what the worker left: {', '.join(removed)}", file=sys.stderr)
    if result.returncode != 0:
        print(f"  failed: {' '.join(command)}\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    return float(json.loads(result.stdout.strip().splitlines()[-1])["ns"])


def side_environment(side: str) -> dict[str, str]:
    """The ipcxx side keeps the caller's PYTHONPATH (an ipcxx installed with --target is
    measured, not whatever the interpreter's site-packages holds); the upstream side sees only
    bench/.upstream, whose module names would otherwise clash with ours; the alternative side
    keeps the caller's PYTHONPATH (ipcxx) and adds bench/.alternatives. IPCXX_BENCH_SIDE tells
    the worker which side it is (cases.py)."""
    env = dict(os.environ, IPCXX_BENCH_SIDE=side)
    if side == "upstream":
        env["PYTHONPATH"] = str(UPSTREAM)
    elif side == "alternative":
        env["PYTHONPATH"] = os.pathsep.join(
            [str(path) for path in alternative_paths()]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    return env


def case_sides(name: str, sides: tuple[str, ...]) -> tuple[str, ...]:
    """The sides a case runs: a COMPARED_WITH row's "upstream" is its alternative."""
    if name not in COMPARED_WITH:
        return sides
    return tuple("alternative" if side == "upstream" else side for side in sides)


def versions(sides: tuple[str, ...] = SIDES, alternatives: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for side in sides:
        code = "import posix_ipc, sysv_ipc; print(posix_ipc.__file__, sysv_ipc.__file__)"
        result = subprocess.run(
            [sys.executable, "-c", code], env=side_environment(side), capture_output=True,
            text=True, cwd=HERE, check=True,
        )  # fmt: skip
        out[side] = result.stdout.strip()
    for package in alternatives:
        code = (
            "import importlib.metadata as m, sys; d = m.distribution(sys.argv[1]); "
            "print(d.metadata['Name'], d.version, d.locate_file(''))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, package], env=side_environment("alternative"),
            capture_output=True, text=True, cwd=HERE,
        )  # fmt: skip
        out[package] = result.stdout.strip() if result.returncode == 0 else "not installed"
    return out


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "glibc": " ".join(platform.libc_ver()),
    }


def summarize(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": len(samples),
    }


def run_python_cases(
    repetitions: int,
    seconds: float,
    floor: Path,
    owned: OwnedObjects,
    *,
    msgsize: int | None,
    cases: list[tuple[str, float | None]] = CASES,
    sides: tuple[str, ...] = SIDES,
    unavailable: dict[str, str] | None = None,
    cpp_worker: Path | None = None,
) -> dict[str, dict]:
    """unavailable: {alternative package: why}; a row that needs one runs its ipcxx side only.
    cpp_worker: the program that runs the ipcxx side of CPP_CASES (None: they are not run)."""
    unavailable = unavailable or {}
    skipped = skipped_cases(msgsize)
    for name in skipped:
        if name in dict(cases):
            print(f"{name} {skipped[name]}")
    missing = {
        name: unavailable[COMPARED_WITH[name][1]]
        for name, _ in cases
        if name in COMPARED_WITH and COMPARED_WITH[name][1] in unavailable
    }
    raw: dict[str, dict[str, list[float]]] = {
        name: {side: [] for side in (*case_sides(name, sides), "floor")} for name, _ in cases
    }
    for repetition in range(repetitions):
        print(f"repetition {repetition + 1}/{repetitions}", flush=True)
        for name, _ in cases:
            if name in skipped:
                continue
            here = [s for s in case_sides(name, sides) if s != "alternative" or name not in missing]
            order = here if repetition % 2 == 0 else list(reversed(here))
            for side in order:
                if name in CPP_CASES and side == "ipcxx":
                    if cpp_worker is None:
                        continue
                    command = [str(cpp_worker), name, str(seconds)]
                else:
                    command = [sys.executable, str(HERE / "cases.py"), name, str(seconds)]
                value = measure(command, side_environment(side), owned)
                if value is not None:
                    raw[name][side].append(value)
            value = measure([str(floor), name, str(seconds)], side_environment("ipcxx"), owned)
            if value is not None:
                raw[name]["floor"].append(value)
    results = {}
    for name, target in cases:
        entry: dict = {"target": target}
        if name in COMPARED_WITH:
            entry["compared_with"] = COMPARED_WITH[name][0]
        if name in skipped:
            entry["skipped"] = skipped[name]
        if name in missing:
            entry["unavailable"] = missing[name]
        for side, samples in raw[name].items():
            if samples:
                entry[side] = summarize(samples)
        other = "alternative" if name in COMPARED_WITH else "upstream"
        if "ipcxx" in entry and other in entry:
            entry["ratio"] = entry["ipcxx"]["median"] / entry[other]["median"]
        results[name] = entry
    return results


def ensure_google_benchmark() -> None:
    """Installs Debian's libbenchmark-dev when it is missing and this process may."""
    installed = (
        subprocess.run(
            ["dpkg", "-s", "libbenchmark-dev"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if installed or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=False, capture_output=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "libbenchmark-dev"],
        check=False, capture_output=True, env=env,
    )  # fmt: skip


def run_core_benchmark(quick: bool) -> dict | None:
    """Google Benchmark of the C++ core against raw syscalls (needs libbenchmark-dev)."""
    ensure_google_benchmark()
    build = configure_cpp()
    if build is None:
        return None
    built = subprocess.run(["cmake", "--build", str(build), "--target", "ipcxx_core_bench"])
    if built.returncode != 0:
        print("core benchmark skipped: not built (is libbenchmark-dev installed?)")
        return None
    binary = next(build.rglob("ipcxx_core_bench"))
    worker = subprocess.Popen(
        [str(binary), "--benchmark_format=json",
         f"--benchmark_min_time={'0.05' if quick else '0.3'}",
         f"--benchmark_repetitions={3 if quick else 9}", "--benchmark_report_aggregates_only=true",
         "--benchmark_enable_random_interleaving=true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stdout, stderr = worker.communicate()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        remove_core_leftovers(worker.pid)
    if worker.returncode != 0:
        print(f"core benchmark failed ({worker.returncode}):\n{stderr[-1500:]}")
        print(
            "note: System V objects it created with IPC_PRIVATE, if any are left, cannot be "
            "told apart from other programs' and were not removed (see ipcs)"
        )
        return None
    report = json.loads(stdout)
    medians = {
        b["run_name"]: b["real_time"]
        for b in report["benchmarks"]
        if b.get("aggregate_name") == "median"
    }
    pairs = {}
    for name, value in medians.items():
        if name.startswith("Core/"):
            raw_name = "Raw/" + name[len("Core/") :]
            if raw_name in medians:
                pairs[name[len("Core/") :]] = {
                    "core_ns": value,
                    "raw_ns": medians[raw_name],
                    "ratio": value / medians[raw_name],
                }
    return pairs


def remove_core_leftovers(pid: int) -> None:
    """cpp/bench/core_bench.cpp names its POSIX objects /ipcxx_bench_<what>_<its pid>: remove
    exactly those of the process that just ran."""
    own = re.compile(rf"(sem\.)?ipcxx_bench_[a-z]+_{pid}")
    for folder in ("/dev/shm", "/dev/mqueue"):
        if os.path.isdir(folder):
            for entry in os.listdir(folder):
                if own.fullmatch(entry):
                    with contextlib.suppress(FileNotFoundError):
                        Path(folder, entry).unlink()
                        print(f"  removed what the core benchmark left: {folder}/{entry}")


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every finally (cleanup, msgsize_max) runs.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (< 2 min)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    parser.add_argument(
        "--raise-msgsize-max",
        action="store_true",
        help="raise /proc/sys/fs/mqueue/msgsize_max to 64 KiB for the run (root; restored "
        "afterwards); without it the 64 KiB queue case is skipped when the limit is lower",
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=[name for name, _ in CASES],
        metavar="CASE",
        help="run only this case (repeatable)",
    )
    parser.add_argument(
        "--ipcxx-only",
        action="store_true",
        help="skip upstream and the alternatives (nothing fetched from PyPI)",
    )
    parser.add_argument("--no-core", action="store_true", help="skip the C++ core benchmark")
    parser.add_argument(
        "--results", type=Path, default=HERE / "results", help="folder of the JSON report"
    )
    arguments = parser.parse_args(argv)
    repetitions, seconds = (3, 0.1) if arguments.quick else (7, 0.4)
    cases = [(n, t) for n, t in CASES if not arguments.case or n in arguments.case]
    sides = ("ipcxx",) if arguments.ipcxx_only else SIDES
    signal.signal(signal.SIGTERM, _terminate)

    needed = {COMPARED_WITH[n][1] for n, _ in cases if n in COMPARED_WITH} - {None}
    unavailable: dict[str, str] = {}
    if "upstream" in sides:
        if any(n not in COMPARED_WITH for n, _ in cases):
            ensure_upstream()
        unavailable = ensure_alternatives(needed)  # type: ignore[arg-type]
    floor = build_floor()
    cpp_worker = build_cpp_worker() if any(n in CPP_CASES for n, _ in cases) else None
    started = datetime.datetime.now(datetime.timezone.utc)
    limit = message_size_limit(65536, may_raise=arguments.raise_msgsize_max)
    with OwnedObjects() as owned, limit as msgsize:
        results = run_python_cases(
            repetitions, seconds, floor, owned, msgsize=msgsize, cases=cases, sides=sides,
            unavailable=unavailable, cpp_worker=cpp_worker,
        )  # fmt: skip
    run_sides = tuple(
        sorted({s for n, _ in cases for s in case_sides(n, sides)}, key=SIDE_ORDER.index)
    )
    installed = tuple(sorted(needed - set(unavailable))) if "upstream" in sides else ()
    core = None if arguments.no_core else run_core_benchmark(arguments.quick)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if arguments.quick else "full",
        "repetitions": repetitions,
        "seconds_per_sample": seconds,
        "machine": machine(),
        "modules": versions(run_sides, installed),
        "cases": results,
        "core": core,
    }
    out_dir = arguments.results
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"{started:%Y-%m-%d}{'-quick' if arguments.quick else ''}.json"
    out_file.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_file}")

    sys.path.insert(0, str(HERE))
    import report as report_module  # noqa: PLC0415 - only needed once results exist

    print(report_module.table(report))
    if arguments.case or arguments.ipcxx_only or arguments.no_core:
        print("docs/ not rewritten: this was not a complete run")
    elif not arguments.no_docs:
        report_module.write_docs(report, out_file, ROOT / "docs")
        print("wrote docs/performance.md and docs/images/performance_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side benchmark of ipcxx against the upstream posix_ipc 1.3.2 and sysv_ipc 1.2.0.

    python bench/run.py [--quick] [--no-docs]

Upstream is built from its PyPI sdists into bench/.upstream (a --target folder: the module
names clash with ours), each side runs in its own worker process per case, cases are
interleaved and repeated, and a C program (bench/floor.c) gives the raw-syscall floor. The C++
core is compared with the raw calls it wraps through Google Benchmark. Results go to
bench/results/<date>.json and, unless --no-docs, to docs/performance.md with PNG charts.
A benchmark reports; it never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPSTREAM = HERE / ".upstream"
BUILD = HERE / ".build"
UPSTREAM_PINS = ("posix_ipc==1.3.2", "sysv_ipc==1.2.0")

# (case, target ratio ipcxx/upstream or None). Order is the order of the table.
CASES: list[tuple[str, float | None]] = [
    ("posix_sem_acquire_release", 0.6),
    ("posix_sem_acquire0_release", None),
    ("posix_sem_acquire0_busy", 0.5),
    ("posix_sem_acquire_release_busy_thread", 0.01),
    ("posix_mq_send_receive_16B", 0.85),
    ("posix_mq_send_receive_1KiB", None),
    ("posix_mq_send_receive_8KiB", 0.8),
    ("posix_mq_send_receive_64KiB", None),
    ("posix_shm_create_map_write_unlink_1MiB", 0.6),
    ("posix_shm_mapped_write_read_1MiB", None),
    ("posix_pingpong_semaphores_one_way", 1.0),
    ("posix_pingpong_queues_one_way", 1.0),
    ("sysv_sem_acquire_release", 0.9),
    ("sysv_sem_acquire_timeout0_busy", 0.02),
    ("sysv_sem_block_false_busy", None),
    ("sysv_mq_send_receive_16B", 0.85),
    ("sysv_mq_send_receive_8KiB", None),
    ("sysv_shm_write_read_1MiB", 0.95),
    ("sysv_shm_memoryview_write_read_1MiB", None),
    ("posix_sem_contention_1_processes", None),
    ("posix_sem_contention_2_processes", None),
    ("posix_sem_contention_4_processes", None),
    ("posix_sem_contention_8_processes", None),
]


MSGSIZE_MAX = Path("/proc/sys/fs/mqueue/msgsize_max")


@contextlib.contextmanager
def message_size_limit(at_least: int):
    """The 64 KiB queue case needs msgsize_max >= 64 KiB (default 8 KiB): raise it for the
    run when this process may, and put the old value back afterwards."""
    try:
        old = int(MSGSIZE_MAX.read_text())
    except OSError:
        yield None
        return
    changed = False
    if old < at_least:
        try:
            MSGSIZE_MAX.write_text(str(at_least))
            changed = True
        except OSError:
            print(f"msgsize_max stays {old}: the 64 KiB queue case will fail on both sides")
    try:
        yield old
    finally:
        if changed:
            MSGSIZE_MAX.write_text(str(old))


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


def build_floor() -> Path:
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "floor"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(HERE / "floor.c"), "-lrt"], check=True)
    return binary


def ipc_objects() -> set[str]:
    found: set[str] = set()
    for folder in ("/dev/shm", "/dev/mqueue"):
        if os.path.isdir(folder):
            found.update(os.path.join(folder, entry) for entry in os.listdir(folder))
    for kind in ("sem", "shm", "msg"):
        table = Path(f"/proc/sysvipc/{kind}")
        if table.exists():
            for line in table.read_text().splitlines()[1:]:
                found.add(f"sysv:{kind}:{line.split()[1]}")
    return found


def remove_objects(objects: set[str]) -> None:
    """Removes objects a killed or failing worker left behind."""
    flags = {"sem": "-s", "shm": "-m", "msg": "-q"}
    for obj in objects:
        if obj.startswith("sysv:"):
            _, kind, ident = obj.split(":")
            subprocess.run(["ipcrm", flags[kind], ident], check=False, capture_output=True)
        else:
            Path(obj).unlink(missing_ok=True)


def measure(command: list[str], env: dict[str, str]) -> float | None:
    before = ipc_objects()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    left = ipc_objects() - before
    if left:
        remove_objects(left)
    if result.returncode != 0:
        print(f"  failed: {' '.join(command)}\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    return float(json.loads(result.stdout.strip().splitlines()[-1])["ns"])


def side_environment(side: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if side == "upstream":
        env["PYTHONPATH"] = str(UPSTREAM)
    return env


def versions() -> dict[str, str]:
    out = {}
    for side in ("ipcxx", "upstream"):
        code = "import posix_ipc, sysv_ipc; print(posix_ipc.__file__, sysv_ipc.__file__)"
        result = subprocess.run(
            [sys.executable, "-c", code], env=side_environment(side), capture_output=True,
            text=True, cwd=HERE, check=True,
        )  # fmt: skip
        out[side] = result.stdout.strip()
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


def run_python_cases(repetitions: int, seconds: float, floor: Path) -> dict[str, dict]:
    raw: dict[str, dict[str, list[float]]] = {
        name: {"ipcxx": [], "upstream": [], "floor": []} for name, _ in CASES
    }
    for repetition in range(repetitions):
        print(f"repetition {repetition + 1}/{repetitions}", flush=True)
        for name, _ in CASES:
            sides = ["ipcxx", "upstream"] if repetition % 2 == 0 else ["upstream", "ipcxx"]
            for side in sides:
                value = measure(
                    [sys.executable, str(HERE / "cases.py"), name, str(seconds)],
                    side_environment(side),
                )
                if value is not None:
                    raw[name][side].append(value)
            value = measure([str(floor), name, str(seconds)], side_environment("ipcxx"))
            if value is not None:
                raw[name]["floor"].append(value)
    results = {}
    for name, target in CASES:
        entry: dict = {"target": target}
        for side, samples in raw[name].items():
            if samples:
                entry[side] = summarize(samples)
        if "ipcxx" in entry and "upstream" in entry:
            entry["ratio"] = entry["ipcxx"]["median"] / entry["upstream"]["median"]
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
    build = BUILD / "core"
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Release", "-DIPCXX_BUILD_BENCH=ON"],
        capture_output=True, text=True,
    )  # fmt: skip
    if configure.returncode != 0:
        print("core benchmark skipped: cmake failed (is libbenchmark-dev installed?)")
        print(configure.stderr[-1500:])
        return None
    subprocess.run(["cmake", "--build", str(build), "--target", "ipcxx_core_bench"], check=True)
    binary = next(build.rglob("ipcxx_core_bench"))
    before = ipc_objects()
    result = subprocess.run(
        [str(binary), "--benchmark_format=json",
         f"--benchmark_min_time={'0.05' if quick else '0.3'}",
         f"--benchmark_repetitions={3 if quick else 9}", "--benchmark_report_aggregates_only=true",
         "--benchmark_enable_random_interleaving=true"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    remove_objects(ipc_objects() - before)
    report = json.loads(result.stdout)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (< 2 min)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    arguments = parser.parse_args()
    repetitions, seconds = (3, 0.1) if arguments.quick else (7, 0.4)

    ensure_upstream()
    floor = build_floor()
    started = datetime.datetime.now(datetime.timezone.utc)
    with message_size_limit(65536):
        results = run_python_cases(repetitions, seconds, floor)
    core = run_core_benchmark(arguments.quick)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if arguments.quick else "full",
        "repetitions": repetitions,
        "seconds_per_sample": seconds,
        "machine": machine(),
        "modules": versions(),
        "cases": results,
        "core": core,
    }
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out_file = out_dir / f"{started:%Y-%m-%d}{'-quick' if arguments.quick else ''}.json"
    out_file.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_file.relative_to(ROOT)}")

    sys.path.insert(0, str(HERE))
    import report as report_module  # noqa: PLC0415 - only needed once results exist

    print(report_module.table(report))
    if not arguments.no_docs:
        report_module.write_docs(report, out_file, ROOT / "docs")
        print("wrote docs/performance.md and docs/images/performance_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

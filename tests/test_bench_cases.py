"""Every benchmark case still runs against ipcxx and cleans up after itself, and has its C
floor; every row against an alternative runs its other side too. (A smoke test of the harness:
it checks that a number comes out, never how large it is.)"""

import importlib.machinery
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from run import (  # noqa: E402
    CASES,
    COMPARED_WITH,
    CPP_CASES,
    MSGSIZE_MAX,
    alternative_paths,
    side_environment,
    skipped_cases,
)


def _msgsize_max():
    try:
        return int(MSGSIZE_MAX.read_text())
    except (OSError, ValueError):
        return None


# The rows whose ipcxx side is the C++ worker (cpp/bench/channel_bench.cpp, built and run by
# bench/run.py) have no Python ipcxx side; their Python side is the alternative, run below.
@pytest.mark.parametrize("case", [name for name, _ in CASES if name not in CPP_CASES])
def test_benchmark_case_runs_and_reports_a_time(case):
    # As bench/run.py without --raise-msgsize-max: the system setting is never changed here.
    reason = skipped_cases(_msgsize_max()).get(case)
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, str(BENCH / "cases.py"), case, "0.01"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ns"] > 0


@pytest.fixture(scope="module")
def floor(tmp_path_factory) -> Path:
    """bench/floor.c built as bench/run.py builds it, warnings as errors."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build bench/floor.c")
    binary = tmp_path_factory.mktemp("floor") / "floor"
    subprocess.run(
        ["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", str(binary),
         str(BENCH / "floor.c"), "-lrt"],
        check=True,
    )  # fmt: skip
    return binary


@pytest.mark.parametrize("case", [name for name, _ in CASES])
def test_every_benchmark_case_has_a_c_floor(case, floor):
    # Skipped where run.py skips the case (the 64 KiB queue needs a larger msgsize_max).
    reason = skipped_cases(_msgsize_max()).get(case)
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [str(floor), case, "0.01"], capture_output=True, text=True, timeout=300, cwd=BENCH
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ns"] > 0


@pytest.mark.parametrize("case", sorted(COMPARED_WITH))
def test_benchmark_alternative_side_runs_and_reports_a_time(case):
    # faster-fifo and iceoryx2 come from bench/.alternatives, which bench/run.py fills from
    # PyPI; the tests never download: without them (or with a foreign PYTHONPATH) it is skipped.
    package = COMPARED_WITH[case][1]
    if package is not None and not _importable(package):
        pytest.skip(f"{package} is not installed (bench/run.py puts it in bench/.alternatives)")
    result = subprocess.run(
        [sys.executable, str(BENCH / "cases.py"), case, "0.01"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH,
        env=side_environment("alternative"),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ns"] > 0


def _importable(package):
    """Whether the alternative side's worker can import package: from bench/.alternatives (as
    bench/run.py installs it) or from this interpreter's own path."""
    # A package may be a folder or a single extension module (faster_fifo is a .so).
    in_folders = importlib.machinery.PathFinder.find_spec(
        package, [str(folder) for folder in alternative_paths()]
    )
    return in_folders is not None or importlib.util.find_spec(package) is not None

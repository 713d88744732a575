"""Every benchmark case still runs against ipcxx and cleans up after itself. (A smoke test of
the harness: it checks that a number comes out, never how large it is.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from run import CASES, MSGSIZE_MAX, skipped_cases  # noqa: E402


def _msgsize_max():
    try:
        return int(MSGSIZE_MAX.read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("case", [name for name, _ in CASES])
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

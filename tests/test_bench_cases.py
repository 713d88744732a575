"""Every benchmark case still runs against ipcxx and cleans up after itself. (A smoke test of
the harness: it checks that a number comes out, never how large it is.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from run import CASES, MSGSIZE_MAX, message_size_limit  # noqa: E402


@pytest.mark.parametrize("case", [name for name, _ in CASES])
def test_benchmark_case_runs_and_reports_a_time(case):
    with message_size_limit(65536):  # as bench/run.py does, for the 64 KiB queue case
        if case.endswith("64KiB") and int(MSGSIZE_MAX.read_text()) < 65536:
            pytest.skip("msgsize_max < 64 KiB and this user may not raise it")
        result = subprocess.run(
            [sys.executable, str(BENCH / "cases.py"), case, "0.01"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=BENCH,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ns"] > 0

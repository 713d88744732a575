"""The shipped programs run and clean up: `python -m ipcxx demo` and examples/python/*."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "python").glob("*.py"))


def test_demo_exchanges_data_with_a_child_and_succeeds():
    result = subprocess.run(
        [sys.executable, "-m", "ipcxx", "demo", "--rounds", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "HELLO FROM THE PARENT PROCESS" in result.stdout
    assert "priority 9" in result.stdout
    assert "SYSV GREETING FROM THE PARENT" in result.stdout
    assert "value after the child exited: 1 (restored by undo)" in result.stdout
    assert "demo finished: all objects removed" in result.stdout


def test_demo_interrupted_by_ctrl_c_removes_its_objects():
    """SIGINT while the demo waits: KeyboardInterrupt unwinds and every object is unlinked
    (the session leak guard would catch a leftover)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ipcxx", "demo", "--rounds", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "started child" in process.stdout.readline()
    process.send_signal(2)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert "KeyboardInterrupt" in process.stderr.read()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(example):
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

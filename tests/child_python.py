"""Runs a scenario in a fresh interpreter: a crash, an abort or a hang there fails the test
that asked for it instead of the whole run."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` (dedented) with `args` as sys.argv[1:]; fails unless it exits 0 without a
    fatal error or std::terminate. Returns the finished process (stdout and stderr as text)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Fatal Python error" not in done.stderr, done.stderr
    assert "terminate called" not in done.stderr, done.stderr
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done

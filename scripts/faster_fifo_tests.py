"""Run faster-fifo's own test suite, unmodified, against ipcxx.compat.faster_fifo.

Usage: faster_fifo_tests.py DESTINATION [PYTEST ARGUMENT...]

Downloads faster-fifo's sdist from PyPI into DESTINATION (never committed) and runs its
test_faster_fifo.py with pytest, with `faster_fifo` and `faster_fifo_reduction` resolving to
ipcxx's shims (tests/shims: they re-export ipcxx.compat.faster_fifo). The suite comes from the
1.4.7 sdist: 1.5.2, the newest, ships no tests, while 1.4.7's faster_fifo.pyx and C++ ring are
identical to 1.5.2's and its tests are identical to the repository's (checked on 2026-12-07).
The suite needs numpy < 2, as faster-fifo's dev requirements say: under numpy 2 its big-message
consumers die on `uint8_array[0] % 50000` (OverflowError) and the producers then wait forever,
with faster-fifo itself too. So numpy < 2 is installed into DESTINATION/site for the run (numpy
1.26 has wheels up to Python 3.12). Exits with pytest's status.
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_upstream_tests import fetch  # noqa: E402

VERSION = "1.4.7"
TESTS = "cpp_faster_fifo/tests"
NUMPY = "numpy>=1.18.1,<2.0"  # faster-fifo's own pin (its pyproject's dev extra)
SHIMS = Path(__file__).resolve().parent.parent / "tests" / "shims"

# Tests that cannot pass by design, by name, each with its reason (docs/guide.md, "Migrating
# from faster-fifo", lists every difference). None today.
DESELECTED: dict[str, str] = {}


def main() -> int:
    destination = Path(sys.argv[1])
    folder = fetch("faster_fifo", VERSION, destination, TESTS)
    site = destination / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["--target", str(site), "--upgrade", NUMPY],
        check=True,
    )
    arguments = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    for test, reason in DESELECTED.items():
        print(f"deselected (scripts/faster_fifo_tests.py): {test}: {reason}")
        arguments += ["--deselect", f"{TESTS}/test_faster_fifo.py::{test}"]
    arguments += [*sys.argv[2:], f"{TESTS}/test_faster_fifo.py"]
    environment = dict(os.environ)
    # The shims first, so that the sdist's own (uncompiled) faster_fifo.pyx is never imported.
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(SHIMS), str(site), *filter(None, [environment.get("PYTHONPATH")])]
    )
    print(f"faster-fifo {VERSION} test suite, unmodified, in {folder}", flush=True)
    return subprocess.run(arguments, cwd=folder, env=environment).returncode


if __name__ == "__main__":
    sys.exit(main())

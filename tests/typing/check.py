"""Type-checks, with `mypy --strict` against the installed stubs, the samples in tests/typing and
every Python example of docs/guide.md (each block as a module of its own, extracted the way
tests/test_guide.py runs them). Run it with each Python whose stubs should hold; exits with
mypy's status."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def main() -> int:
    examples = runpy.run_path(str(ROOT / "tests" / "test_guide.py"))["python_examples"]()
    samples = sorted(str(path) for path in HERE.glob("*_sample.py"))
    with tempfile.TemporaryDirectory(prefix="guide-examples-") as folder:
        files = []
        for number, (where, code) in enumerate(examples, 1):
            # The file's name says which block it is: "guide_05_asyncio_1.py" is the first block
            # under the heading "asyncio".
            slug = re.sub(r"[^a-z0-9]+", "_", where.lower()).strip("_")
            path = Path(folder) / f"guide_{number:02d}_{slug}.py"
            path.write_text(code)
            files.append(str(path))
        print(f"mypy --strict on {len(samples)} samples and {len(files)} guide examples")
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", *samples, *files], cwd=ROOT, check=False
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

"""Every Python example in docs/guide.md runs as written (each block as a script in a fresh
interpreter, which must exit 0); console examples are shown output, not run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_examples() -> list[tuple[str, str]]:
    """(section heading and block number, code) of each ```python block."""
    examples = []
    heading = "top"
    count = 0
    text = GUIDE.read_text()
    position = 0
    for match in BLOCK.finditer(text):
        for line in text[position : match.start()].splitlines():
            if line.startswith("#"):
                heading, count = line.lstrip("# ").strip(), 0
        position = match.end()
        count += 1
        examples.append((f"{heading} #{count}", match.group(1)))
    return examples


EXAMPLES = python_examples()


def test_the_guide_has_python_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[i for i, _ in EXAMPLES])
def test_guide_example_runs(code, tmp_path):
    # A file rather than `python -c`: spawn and forkserver children import the example's
    # functions from its __main__ module by path, as they would from a user's script.
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr

"""Every Python example in docs/guide.md runs as written (each block in a fresh interpreter,
which must exit 0); console examples are shown output, not run."""

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
def test_guide_example_runs(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

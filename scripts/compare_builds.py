"""Times benchmark cases of two ipcxx builds side by side, interleaved, so that both see the same
machine: the way to tell whether a change made a case slower when the machine is shared.

Run: python scripts/compare_builds.py --a LABEL=PYTHON:CASES_PY --b LABEL=PYTHON:CASES_PY
     [--prefix "chrt -f 50 taskset -c 1"] CASE...
Each build runs its own bench/cases.py (7 runs of 0.4 s each, alternating which build goes
first); prints min and median ns per operation of each and the ratio b/a of the minima. A
real-time prefix (chrt, as root) keeps other work on the machine from preempting the case."""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess

RUNS = 7


def run_case(prefix: list[str], python: str, cases_py: str, case: str) -> float | None:
    """ns per operation of one run, or None (with the worker's error printed) when it failed."""
    out = subprocess.run(
        [*prefix, python, cases_py, case, "0.4"], capture_output=True, text=True, check=False
    )
    try:
        return float(json.loads(out.stdout.strip().splitlines()[-1])["ns"])
    except (IndexError, KeyError, ValueError):
        print(f"{case}: {python} failed: {out.stderr.strip()[-300:]}")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, metavar="LABEL=PYTHON:CASES_PY")
    parser.add_argument("--b", required=True, metavar="LABEL=PYTHON:CASES_PY")
    parser.add_argument("--prefix", default="", help="command put before each run")
    parser.add_argument("case", nargs="+")
    args = parser.parse_args()
    sides = []
    for spec in (args.a, args.b):
        label, rest = spec.split("=", 1)
        python, cases_py = rest.split(":", 1)
        sides.append((label, python, cases_py))
    prefix = shlex.split(args.prefix)
    for case in args.case:
        times: dict[str, list[float]] = {label: [] for label, _, _ in sides}
        for run in range(RUNS):
            for label, python, cases_py in sides if run % 2 == 0 else sides[::-1]:
                result = run_case(prefix, python, cases_py, case)
                if result is not None:
                    times[label].append(result)
        if not all(times.values()):
            continue
        (a, ta), (b, tb) = times.items()
        print(
            f"{case}: {a} min {min(ta):.1f} med {statistics.median(ta):.1f} ns | "
            f"{b} min {min(tb):.1f} med {statistics.median(tb):.1f} ns | "
            f"{b}/{a} {min(tb) / min(ta):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

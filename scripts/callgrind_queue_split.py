"""Where the instructions of one queue put+get go, under callgrind: pickling (everything below
the calls into CPython's _pickle module), the ring (below the calls into ipcxx's extension: the
Channel), the semaphores (below the calls into posix_ipc's extension: the queue's item count),
faster-fifo's extension for its rows, and the rest (the interpreter running the queue's Python
code: calls, attribute lookups, argument parsing, the objects it makes).

Run: python scripts/callgrind_queue_split.py (needs valgrind; faster-fifo is looked up in
bench/.alternatives, where bench/run.py installs it, and its rows are left out without it).
One process puts and gets (no second core, no wake-ups: the figures count user-space
instructions, independent of the machine's load). Each figure is the difference between 11 000
and 1 000 iterations divided by 10 000 (batch loops: 171 and 15 batches of 64), minus the
same for an empty loop.

A category's figure is the inclusive cost of the calls that enter its extension module from
another module: what the module calls back into the interpreter (the objects _pickle builds,
the bytes the Channel returns) counts in the module's figure (faster-fifo's own module: its own
instructions only, see CATEGORIES).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASTER_FIFO = ROOT / "bench" / ".alternatives" / "faster_fifo"

OBJECTS = {
    "tuple of 3 ints": "(1, 2, 3)",
    "5-key dict": "{'a': 1, 'b': 2.0, 'c': 'three', 'd': None, 'e': True}",
}
LOOPS = {
    "ipcxx.Queue put+get": "put(obj); get()",
    # The producer's side alone (the ring holds all 11 000 objects: nothing spills); the
    # consumer's side is put+get minus this.
    "ipcxx.Queue put alone": "put(obj)",
    "pickle.dumps+loads": "loads(dumps(obj, 5))",
    "pickle.dumps alone": "dumps(obj, 5)",
    "ipcxx.Queue put_many+get_many of 64, per object": "q_put_many(batch); q_get_many()",
    "ipcxx.Channel send+receive (the pickled bytes)": "send(data); receive()",
    "faster-fifo put+get": "ff_put(obj); ff_get()",
    "faster-fifo put_many+get_many of 64, per object": "ff_put_many(batch); ff_get_many()",
}
PER_BATCH = {
    "faster-fifo put_many+get_many of 64, per object": 64,
    "ipcxx.Queue put_many+get_many of 64, per object": 64,
}

CHILD = """
import sys, pickle, ipcxx
obj = {obj}
q = ipcxx.Queue()
ch = ipcxx.Channel(None, create=True, capacity=1 << 16)
put, get = q.put, q.get
send, receive = ch.send, ch.receive
dumps, loads = pickle.dumps, pickle.loads
data = dumps(obj, 5)
batch = [obj] * 64
q_put_many = getattr(q, "put_many", None)
q_get_many = lambda: q.get_many(max_messages_to_get=64)
try:
    import faster_fifo
    ff = faster_fifo.Queue(max_size_bytes=4 << 20)
    ff_put, ff_get, ff_put_many = ff.put, ff.get, ff.put_many
    ff_get_many = lambda: ff.get_many(max_messages_to_get=64)
except ImportError:
    pass
n = int(sys.argv[1])
# The native half of put() and get() calls dumps and loads itself: the parent then takes the
# pickling out of the ring's inclusive figure (see NESTED).
print("native" if getattr(type(q).put, "__objclass__", None) is ipcxx._ipcxx._QueueCore else "")
for _ in range(n):
    {body}
ch.unlink(); ch.close(); q.close(); q.unlink()
"""

# Extension modules by the file name of their shared object: (pattern, inclusive). An inclusive
# category counts everything below the calls entering it; faster-fifo's Cython module calls back
# into the interpreter (its dumps and loads, ctypes) and into itself through it, so only its own
# instructions (exclusive) are counted, and what it calls lands in the other categories.
CATEGORIES = {
    "pickling (_pickle)": (re.compile(r"/_pickle\.cpython"), True),
    "ring (ipcxx._ipcxx: Channel)": (re.compile(r"/_ipcxx\.cpython"), True),
    "item count (posix_ipc semaphores)": (re.compile(r"/_posix_ipc\.cpython"), True),
    "ctypes (_ctypes)": (re.compile(r"/_ctypes\.cpython"), True),
    "faster-fifo's own code (exclusive)": (re.compile(r"/faster_fifo\.cpython"), False),
}


def _name(field: str, table: dict[str, str]) -> str:
    """A compressed callgrind name: "(id) name" defines id, "(id)" refers to it."""
    match = re.match(r"\((\d+)\)(?: (.*))?", field)
    if not match:
        return field
    if match[2] is not None:
        table[match[1]] = match[2]
    return table[match[1]]


def split(path: str) -> dict[str, int]:
    """Total Ir and, per category, the inclusive Ir of calls entering it from outside it."""
    objects: dict[str, str] = {}
    current, callee = "", None
    in_call = False
    totals = {"total": 0, **{name: 0 for name in CATEGORIES}}

    def category(obj: str) -> str | None:
        return next(
            (name for name, (pattern, _) in CATEGORIES.items() if pattern.search(obj)), None
        )

    with open(path) as lines:
        for line in lines:
            if line.startswith("ob="):
                current = _name(line[3:].strip(), objects)
            elif line.startswith("cob="):
                callee = _name(line[4:].strip(), objects)
            elif line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                cost = int(line.split()[1]) if len(line.split()) > 1 else 0
                if in_call:
                    target = callee if callee is not None else current
                    entered = category(target)
                    if (
                        entered is not None
                        and CATEGORIES[entered][1]
                        and category(current) != entered
                    ):
                        totals[entered] += cost
                    in_call, callee = False, None
                else:
                    totals["total"] += cost
                    own = category(current)
                    if own is not None and not CATEGORIES[own][1]:
                        totals[own] += cost
    return totals


# When the queue's put() and get() run natively (ipcxx._QueueCore, a build from 2026-12-07 on),
# the pickling of a Queue row runs below the calls into ipcxx._ipcxx, and callgrind's inclusive
# cost of those calls holds it twice (there and in _pickle's figure). Calls do not nest
# across a module boundary in callgrind's output, so it is taken out by subtraction: in the
# Queue rows every dumps and loads is the native half's, none is the loop's.
NESTED = ("ring (ipcxx._ipcxx: Channel)", "pickling (_pickle)")


def measure(obj: str, body: str, count: int) -> dict[str, int]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if FASTER_FIFO.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FASTER_FIFO), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cg.out")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--compress-strings=yes",
             f"--callgrind-out-file={out}", sys.executable, "-c",
             CHILD.format(obj=obj, body=body), str(count)],
            check=True, capture_output=True, env=env, text=True,
        )  # fmt: skip
        totals = split(out)
        if "native" in run.stdout and body.startswith(("put(obj)", "q_put_many")):
            ring, pickling = NESTED
            totals[ring] -= totals[pickling]
        return totals


def per_iteration(obj: str, body: str, per: int = 1) -> dict[str, float]:
    """Per object: `per` objects an iteration (a batch loop runs 1/per as many iterations)."""
    first, last = 1_000 // per, 11_000 // per
    small, large = measure(obj, body, first), measure(obj, body, last)
    return {key: (large[key] - small[key]) / (last - first) / per for key in small}


def main() -> None:
    import ipcxx

    have_ff = FASTER_FIFO.is_dir()
    for title, obj in OBJECTS.items():
        empty = per_iteration(obj, "pass")["total"]
        print(
            f"{title} (instructions per object; the loop itself, {empty:,.0f}, subtracted):",
            flush=True,
        )
        for loop, body in LOOPS.items():
            if "faster-fifo" in loop and not have_ff:
                continue
            if "put_many" in loop and "ipcxx" in loop and not hasattr(ipcxx.Queue, "put_many"):
                continue
            per = PER_BATCH.get(loop, 1)
            figures = per_iteration(obj, body, per)
            total = figures["total"] - empty / per
            parts = {k: v for k, v in figures.items() if k != "total" and v > 0.5}
            rest = total - sum(parts.values())
            shown = ", ".join(f"{k} {v:,.0f} ({v / total:.0%})" for k, v in parts.items())
            print(f"  {loop}: {total:,.0f} = {shown}, Python and the rest {rest:,.0f} "
                  f"({rest / total:.0%})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

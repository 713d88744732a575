"""Concurrent exits of one Channel view (issue 19): THREADS threads exit the same view at once,
EXITS views in a row, in RUNS child interpreters; prints how many runs crashed or failed.

Every view is a reservation entered once (so its memoryview exists) and exited by all threads
together: exactly one exit may commit it and release the memoryview. Each run checks that every
exit returned False, every view is finished, its memoryview released, and that the consumer
receives each message exactly once, in order (lost and abandoned stay 0). Run it on the
free-threaded interpreter with PYTHON_GIL=0 (docs/free-threading.md has the figures):

    PYTHON_GIL=0 build/venv-314t/bin/python scripts/view_exit_storm.py --runs 30
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time


def exit_all(start: threading.Barrier, views: list, results: list[object]) -> None:
    """One thread: every view's __exit__, in the same order as the other threads."""
    start.wait()
    for view in views:
        results.append(view.__exit__(None, None, None))


def child(threads: int, exits: int) -> None:
    import ipcxx

    channel = ipcxx.Channel(None, create=True, capacity=1 << 16)
    failures: list[str] = []
    try:
        batch = 512  # views prepared at a time (32-byte records: a quarter of the ring)
        done = 0
        while done < exits:
            count = min(batch, exits - done)
            views = [channel.reserve(8) for _ in range(count)]
            mapped = []
            for number, view in enumerate(views):
                memory = view.__enter__()
                memory[:] = (done + number).to_bytes(8, "little")
                mapped.append(memory)
            start = threading.Barrier(threads)
            results: list[list[object]] = [[] for _ in range(threads)]
            workers = [
                threading.Thread(target=exit_all, args=(start, views, results[i]))
                for i in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            if any(result is not False for per in results for result in per):
                failures.append("an exit returned something other than False")
            if not all(view.finished for view in views):
                failures.append("an exited view is not finished")
            for memory in mapped:
                try:
                    memory.obj  # noqa: B018 - raises on a released memoryview
                    failures.append("a memoryview was not released")
                except ValueError:
                    pass
            for number in range(count):
                message = channel.receive(timeout=0)
                if int.from_bytes(message, "little") != done + number:
                    failures.append(f"message {done + number} arrived as {message!r}")
            done += count
        try:
            extra = channel.receive(timeout=0)
            failures.append(f"a message committed twice: {extra!r}")
        except TimeoutError:
            pass
        if channel.lost or channel.abandoned:
            failures.append(f"lost {channel.lost}, abandoned {channel.abandoned}")
    finally:
        channel.unlink()
        channel.close()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(json.dumps({"failures": failures[:10], "gil": gil}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--exits", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.threads, options.exits)
        return
    crashed = failed = 0
    gil = set()
    started = time.monotonic()
    for run in range(options.runs):
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                f"--threads={options.threads}",
                f"--exits={options.exits}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            crashed += 1
            print(f"run {run}: exit status {result.returncode}\n{result.stderr[-2000:]}")
            continue
        report = json.loads(result.stdout.strip().splitlines()[-1])
        gil.add(report["gil"])
        if report["failures"]:
            failed += 1
            print(f"run {run}: {report['failures']}")
    print(
        f"{options.runs} runs of {options.threads} threads x {options.exits} exits of one view "
        f"(Python {sys.version.split()[0]}, GIL enabled: {sorted(gil)}): {crashed} crashed, "
        f"{failed} failed, {time.monotonic() - started:.1f} s"
    )
    sys.exit(1 if crashed or failed else 0)


if __name__ == "__main__":
    main()

"""Turns a bench/results/*.json report into the table and charts of docs/performance.md."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

SIZES = [("16B", 16), ("1KiB", 1024), ("8KiB", 8192), ("64KiB", 65536)]
PROCESSES = [1, 2, 4, 8]
# The 2-process rows of the Channel chart, each with the label of its other side.
STREAM_ROWS = {
    "channel_2proc_16B_vs_posix_mq": "ipcxx POSIX queue",
    "channel_2proc_16B_vs_faster_fifo": "faster-fifo",
    "channel_2proc_16B_vs_iceoryx2": "iceoryx2 (busy-polled)",
    "channel_2proc_16B_vs_pipe": "os.pipe",
    "channel_2proc_batch64_vs_posix_mq": "",
}
NOTES_MARKER = "<!-- Analysis below is written by hand and kept when tables are regenerated -->"


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:.2f} µs"
    return f"{value:.1f} ns"


def _spread(entry: dict) -> str:
    return f"{_ns(entry['median'])} ({_ns(entry['min'])}–{_ns(entry['max'])})"


def verdict(ratio: float | None, target: float | None) -> str:
    if ratio is None or target is None:
        return ""
    return "met" if ratio <= target else f"MISSED by {ratio / target:.2f}×"


def table(report: dict) -> str:
    if all("compared_with" in entry for entry in report["cases"].values()):
        lines: list[str] = []  # only rows against alternatives (--case)
    else:
        lines = [
            "| case | ipcxx median (min–max) | upstream median (min–max) | C floor "
            "| ipcxx / upstream | target | |",
            "|---|---|---|---|---|---|---|",
        ]
    ran = report.get("modules") or {"ipcxx": "", "upstream": ""}

    def side(entry: dict, name: str) -> str:
        if name in entry:
            return _spread(entry[name])
        return "failed" if name in ran else "not run"

    for name, entry in report["cases"].items():
        if "compared_with" in entry:
            continue  # in alternatives_table()
        ratio = entry.get("ratio")
        target = entry.get("target")
        if "skipped" in entry:  # e.g. msgsize_max too low and no --raise-msgsize-max
            lines.append(f"| {name} | skipped | skipped | | | | {entry['skipped']} |")
            continue
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                side(entry, "ipcxx"),
                side(entry, "upstream"),
                _ns(entry["floor"]["median"]) if "floor" in entry else "",
                f"{ratio:.3f}×" if ratio is not None else "",
                f"≤ {target}×" if target is not None else "",
                verdict(ratio, target),
            )
        )
    alternatives = alternatives_table(report)
    if alternatives:
        lines += ["", alternatives] if lines else [alternatives]
    if report.get("core"):
        lines += [
            "",
            "| C++ core call | core | raw syscall | core / raw | target | |",
            "|---|---|---|---|---|---|",
        ]
        for name, entry in sorted(report["core"].items()):
            lines.append(
                f"| {name} | {_ns(entry['core_ns'])} | {_ns(entry['raw_ns'])} | "
                f"{entry['ratio']:.3f}× | ≤ 1.05× | {verdict(entry['ratio'], 1.05)} |"
            )
    return "\n".join(lines)


def alternatives_table(report: dict) -> str:
    """The rows that compare an ipcxx feature with an alternative (run.py's COMPARED_WITH)."""
    rows = {n: e for n, e in report["cases"].items() if "compared_with" in e}
    if not rows:
        return ""
    lines = [
        "| case | compared with | ipcxx median (min–max) | other side median (min–max) "
        "| C floor | ipcxx / other | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ran = "alternative" in (report.get("modules") or {"alternative": ""})
    for name, entry in rows.items():
        if "skipped" in entry:
            lines.append(f"| {name} | {entry['compared_with']} | skipped | skipped | | | | "
                         f"{entry['skipped']} |")  # fmt: skip
            continue
        if "alternative" in entry:
            other = _spread(entry["alternative"])
        elif "unavailable" in entry:
            other = f"unavailable: {entry['unavailable']}"
        else:
            other = "failed" if ran else "not run"
        ratio, target = entry.get("ratio"), entry.get("target")
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                entry["compared_with"],
                _spread(entry["ipcxx"]) if "ipcxx" in entry else "failed",
                other,
                _ns(entry["floor"]["median"]) if "floor" in entry else "",
                f"{ratio:.3f}×" if ratio is not None else "",
                f"≤ {target}×" if target is not None else "",
                verdict(ratio, target),
            )
        )
    return "\n".join(lines)


PLOTTING = Path(__file__).resolve().parent / ".plotting"


def _pyplot():
    # matplotlib goes into a folder of the bench's own (like the upstream modules), never into
    # the interpreter's site-packages.
    if PLOTTING.is_dir():
        sys.path.insert(0, str(PLOTTING))
    try:
        import matplotlib
    except ImportError:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(PLOTTING),
                "matplotlib>=3.5",
            ],
            check=True,
        )
        sys.path.insert(0, str(PLOTTING))
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def charts(report: dict, images: Path) -> list[str]:
    plt = _pyplot()
    images.mkdir(parents=True, exist_ok=True)
    cases = report["cases"]
    written = []

    names = [n for n, e in cases.items() if "ratio" in e and "compared_with" not in e]
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    ratios = [cases[n]["ratio"] for n in names]
    colors = ["tab:green" if r <= 1 else "tab:red" for r in ratios]
    axes.barh(names, ratios, color=colors)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("ipcxx time / upstream time (median; lower is better)")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(images / "performance_ratios.png", dpi=110)
    plt.close(figure)
    written.append("performance_ratios.png")

    figure, axes = plt.subplots(figsize=(6, 4))
    for side, style in (("ipcxx", "o-"), ("upstream", "s--"), ("floor", "^:")):
        xs, ys = [], []
        for label, size in SIZES:
            entry = cases.get(f"posix_mq_send_receive_{label}", {})
            if side in entry:
                xs.append(size)
                ys.append(entry[side]["median"] / 1e3)
        axes.plot(xs, ys, style, label="C floor" if side == "floor" else side)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("message size (bytes)")
    axes.set_ylabel("send + receive (µs)")
    axes.set_title("POSIX message queue: cost against message size")
    axes.legend()
    figure.tight_layout()
    figure.savefig(images / "performance_message_size.png", dpi=110)
    plt.close(figure)
    written.append("performance_message_size.png")

    figure, axes = plt.subplots(figsize=(6, 4))
    for side, style in (("ipcxx", "o-"), ("upstream", "s--"), ("floor", "^:")):
        xs, ys = [], []
        for count in PROCESSES:
            entry = cases.get(f"posix_sem_contention_{count}_processes", {})
            if side in entry:
                xs.append(count)
                ys.append(entry[side]["median"])
        axes.plot(xs, ys, style, label="C floor" if side == "floor" else side)
    axes.set_xlabel("processes contending for one POSIX semaphore")
    axes.set_ylabel("wall time per acquire + release (ns)")
    axes.set_title("Contention scaling")
    axes.legend()
    figure.tight_layout()
    figure.savefig(images / "performance_contention.png", dpi=110)
    plt.close(figure)
    written.append("performance_contention.png")

    # ipcxx.Channel between 2 processes: messages per second, and what it was compared with.
    streams = [n for n in STREAM_ROWS if n in cases and "ipcxx" in cases[n]]
    if streams:
        labels, rates, colors = [], [], []
        channel = [cases[n]["ipcxx"]["median"] for n in streams if "_16B_" in n]
        if channel:
            labels.append("ipcxx.Channel send/receive")
            rates.append(1e3 / statistics.median(channel))
            colors.append("tab:green")
        batch = cases.get("channel_2proc_batch64_vs_posix_mq", {})
        if "ipcxx" in batch:
            labels.append("ipcxx.Channel send_many/receive_many (64)")
            rates.append(1e3 / batch["ipcxx"]["median"])
            colors.append("tab:green")
        for name in streams:
            if "alternative" in cases[name] and name != "channel_2proc_batch64_vs_posix_mq":
                labels.append(STREAM_ROWS[name])
                rates.append(1e3 / cases[name]["alternative"]["median"])
                colors.append("tab:gray")
        figure, axes = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.2))
        axes.barh(labels, rates, color=colors)
        axes.set_xscale("log")
        axes.set_xlabel("16 B messages/s between 2 processes (millions, median)")
        axes.invert_yaxis()
        figure.tight_layout()
        figure.savefig(images / "performance_channel.png", dpi=110)
        plt.close(figure)
        written.append("performance_channel.png")
    queue = queue_chart(report, images, plt)
    if queue:
        written.append(queue)
    return written


# ipcxx.Queue rows (bench/queue_cases.py): the chart's bar for each side of each row.
QUEUE_OBJECTS = {"tuple3": "tuple of 3 ints", "dict5": "5-key dict"}
QUEUE_OTHERS = {
    "faster_fifo": "faster-fifo put/get",
    "batch64_{}_vs_faster_fifo": "faster-fifo put_many/get_many (64)",
    "mp_queue": "multiprocessing.Queue",
    "pickle_floor": "pickling floor (slower of dumps, loads)",
}


def queue_chart(report: dict, images: Path, plt=None) -> str | None:
    """Objects/s of ipcxx.Queue and what it was compared with, per small object, and GB/s for
    1 MiB numpy arrays (medians; ipcxx's bar is the median over all rows that ran it)."""
    cases = report["cases"]
    if not any(n.startswith("queue_") for n in cases):
        return None
    plt = plt or _pyplot()
    images.mkdir(parents=True, exist_ok=True)
    labels, rates, colors = [], [], []
    for key, title in QUEUE_OBJECTS.items():
        ours = [
            e["ipcxx"]["median"]
            for n, e in cases.items()
            if n.startswith(f"queue_2proc_{key}_") and "ipcxx" in e
        ]
        if ours:
            labels.append(f"{title}: ipcxx.Queue put/get")
            rates.append(1e3 / statistics.median(ours))
            colors.append("tab:green")
        for suffix, what in QUEUE_OTHERS.items():
            name = (
                f"queue_2proc_{suffix.format(key)}"
                if "{}" in suffix
                else f"queue_2proc_{key}_vs_{suffix}"
            )
            entry = cases.get(name, {})
            if "alternative" in entry:
                labels.append(f"{title}: {what}")
                rates.append(1e3 / entry["alternative"]["median"])
                colors.append("tab:orange" if suffix == "pickle_floor" else "tab:gray")
    arrays = [
        (n, e) for n, e in cases.items() if n.startswith("queue_2proc_numpy_1MiB_") and "ipcxx" in e
    ]
    figure, (small, large) = plt.subplots(
        2, 1, figsize=(8, 0.35 * (len(labels) + len(arrays) + 1) + 2.2),
        gridspec_kw={"height_ratios": [max(len(labels), 1), len(arrays) + 1]},
    )  # fmt: skip
    small.barh(labels, rates, color=colors)
    small.set_xlabel("objects/s between 2 processes, millions (median)")
    small.invert_yaxis()
    names, speeds = [], []
    if arrays:
        names.append("ipcxx.Queue")
        speeds.append((1 << 20) / statistics.median([e["ipcxx"]["median"] for _, e in arrays]))
    others = {
        "mp_queue": "multiprocessing.Queue",
        "faster_fifo": "faster-fifo",
        "memcpy": "memcpy 1 MiB, one process",
    }
    for name, entry in arrays:
        other = name.rsplit("_vs_", 1)[1]
        if "alternative" in entry:
            names.append(others[other])
            speeds.append((1 << 20) / entry["alternative"]["median"])
    large.barh(
        names, speeds, color=["tab:green" if n == "ipcxx.Queue" else "tab:gray" for n in names]
    )
    large.set_xlabel("1 MiB float32 arrays between 2 processes: GB/s (median)")
    large.invert_yaxis()
    figure.tight_layout()
    figure.savefig(images / "performance_queue.png", dpi=110)
    plt.close(figure)
    return "performance_queue.png"


def write_docs(report: dict, result_file: Path, docs: Path) -> None:
    images = charts(report, docs / "images")
    machine = report["machine"]
    lines = [
        "# Performance",
        "",
        "Generated by `python bench/run.py` (" + report["mode"] + f" mode) on {report['date']}; "
        f"raw data: `{result_file.relative_to(docs.parent)}`.",
        "",
        "Each case runs in a fresh worker process per side (ipcxx, then upstream, alternating "
        "the order), interleaved with the other cases, "
        f"{report['repetitions']} repetitions of about {report['seconds_per_sample']} s each; "
        "a sample is the best batch of that run and the table shows the median (and range) of "
        "the samples. Upstream is posix_ipc 1.3.2 and sysv_ipc 1.2.0 built from their PyPI "
        "sdists. The C floor (`bench/floor.c`) does the same work with raw system calls.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"CPython {machine['python']}, {machine['glibc']}.",
        "",
        table(report),
        "",
        "Ping-pong cases report one direction of a round trip between two processes; the "
        "contention cases report wall time per operation with N processes working at once.",
        "",
        "The robust_lock rows time `ipcxx.RobustLock` acquire + release against what upstream "
        "offers for a lock across processes: a POSIX semaphore (`robust_lock_acquire_release`; "
        "a holder's death leaves it taken) and a System V semaphore with `undo=True` "
        "(`robust_lock_vs_sysv_undo_acquire_release`; the kernel gives the value back, but the "
        "next holder is not told). Their C floors are a robust process-shared pthread mutex "
        "lock + unlock and `semop` with `SEM_UNDO` (-1, then +1). The SemaphoreSet row's floor "
        "is one `semop` of two operations each way.",
        "",
        "The second table compares `ipcxx.Channel` with alternatives, not with upstream (issue "
        "12); both sides run in the same run, interleaved, and the ratio is Channel time / "
        'other time (targets as time ratios: "≥ 4× the messages/s" is ≤ 0.25×, "≥ 0.8× '
        'memcpy bandwidth" is ≤ 1.25×). faster-fifo 1.5.2 and iceoryx2 0.10.0 are PyPI wheels '
        "installed into `bench/.alternatives`. The `channel_2proc_*` rows time the producer "
        "(parent, first core) sending n 16-byte messages until the consumer (a child on the "
        "second core) has received all n: nanoseconds per message, i.e. 1000 / ns million "
        "messages per second; the POSIX queue there is 10 deep (the default `msg_max`), "
        "faster-fifo a 1 MiB queue, iceoryx2 publish-subscribe with a 256-deep buffer, no "
        "overflow and a busy-polling subscriber. The ping-pong rows are half a round trip. "
        "`channel_reserve_peek_1MiB` is one process: 1 MiB copied into `reserve()`'s view, then "
        "`peek()` at it (no copy out), in an 8 MiB channel; its other side is one 1 MiB copy. "
        "Their C floors: a single-producer single-consumer ring of the Channel's record format "
        "in shared memory (busy-polled, one or 64 records per index update), a futex-word "
        "ping-pong for `spin=0`, and `memcpy` of 1 MiB. The `_cpp_` rows run the same stream "
        "from C++ (`cpp/bench/channel_bench.cpp` against the Release core): `send` + "
        "`receive_into`, or the `reserve()`/`claim()` scope guards (zero copy); their other "
        "side is the Python binding's `send`/`receive`, their floor the same C ring. The "
        "`_64KiB_` and `_1MiB_` rows (issue 17, item 7) stream larger messages, timed the same "
        "way: 64 KiB in `send_many`/`receive_many` batches of 64 with the adaptive spin against "
        "a fixed 50 µs one (1 MiB ring), and 1 MiB messages (8 MiB ring) taken by "
        "`receive_many` or `receive_many_into` (64 reused buffers) against `receive()`; their "
        'floor is the C ring with records of that size (docs/channel.md, "Performance notes").',
        "",
    ]
    lines += [f"![{name}](images/{name})" for name in images]
    lines.append("")
    target = docs / "performance.md"
    # Hand-written analysis below the marker survives regeneration.
    notes = ""
    if target.exists() and NOTES_MARKER in target.read_text():
        notes = target.read_text().split(NOTES_MARKER, 1)[1]
    lines.append(NOTES_MARKER + notes.rstrip("\n") if notes else NOTES_MARKER)
    target.write_text("\n".join(lines) + "\n")


def merged(reports: list[dict]) -> dict:
    """Several runs of the same rows as one report: each side's median is the median of the
    runs' medians, its range the range over every run (for the charts of --case runs)."""
    out = dict(reports[0], cases={})
    for name, first in reports[0]["cases"].items():
        entry = {k: v for k, v in first.items() if not isinstance(v, dict) and k != "ratio"}
        for side in ("ipcxx", "upstream", "alternative", "floor"):
            runs = [r["cases"][name][side] for r in reports if side in r["cases"].get(name, {})]
            if runs:
                entry[side] = {
                    "median": statistics.median(run["median"] for run in runs),
                    "min": min(run["min"] for run in runs),
                    "max": max(run["max"] for run in runs),
                    "samples": sum(run["samples"] for run in runs),
                }
        other = "alternative" if "compared_with" in entry else "upstream"
        if "ipcxx" in entry and other in entry:
            entry["ratio"] = entry["ipcxx"]["median"] / entry[other]["median"]
        out["cases"][name] = entry
    return out


if __name__ == "__main__":
    # python bench/report.py RESULTS.json [RESULTS.json ...] [--queue-chart FOLDER]: prints the
    # tables of one run, or of several runs of the same rows merged (medians of the runs'
    # medians); with --queue-chart, also draws performance_queue.png into FOLDER.
    import json

    arguments = sys.argv[1:]
    folder = None
    if "--queue-chart" in arguments:
        at = arguments.index("--queue-chart")
        folder = Path(arguments[at + 1])
        del arguments[at : at + 2]
    loaded = merged([json.loads(Path(path).read_text()) for path in arguments])
    print(table(loaded))
    if folder is not None:
        print(queue_chart(loaded, folder))

"""Load-robust figures for the Channel's performance cliffs (issue 17, item 7): two processes
pinned to different cores stream messages; per trial it prints messages/s and, per message, the
voluntary and involuntary context switches and minor page faults of each side (getrusage), and
the spin the adaptive waits settled on (Channel.spin_current, when the build has it).

    python scripts/channel_cliffs.py --size 65536 --pattern many --trials 10
    python scripts/channel_cliffs.py --size 65536 --pattern send+many --spin 50e-6
    python scripts/channel_cliffs.py --size 1048576 --pattern many --capacity 8388608
    python scripts/channel_cliffs.py --size 1048576 --pattern many-into --capacity 8388608

Patterns (producer / consumer): one (send / receive), many (send_many / receive_many),
send+many (send / receive_many), many-into (send_many / receive_many_into into reused
bytearrays), one-into (send / receive_into). A benchmark tool: it never asserts."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import sys
import time

import ipcxx

FIELDS = ("ru_nvcsw", "ru_nivcsw", "ru_minflt")


def usage() -> tuple[int, ...]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return tuple(getattr(r, f) for f in FIELDS)


def current_spin(channel: ipcxx.Channel) -> float:
    return float(getattr(channel, "spin_current", float("nan")))


def consumer(name: str, args, ready: int, done: int) -> None:
    os.sched_setaffinity(0, {args.cpus[1]})
    channel = ipcxx.Channel(name)
    if args.spin is not None:
        channel.spin = args.spin
    n, batch, pattern = args.count, args.batch, args.pattern
    buffers = [bytearray(args.size) for _ in range(batch)]
    os.write(ready, b"r")
    got = 0
    before = usage()
    if pattern in ("many", "send+many"):
        receive_many = channel.receive_many
        while got < n:
            got += len(receive_many(min(batch, n - got)))
    elif pattern == "many-into":
        receive_many_into = channel.receive_many_into
        while got < n:
            got += len(receive_many_into(buffers[: min(batch, n - got)]))
    elif pattern == "one-into":
        receive_into, buffer = channel.receive_into, buffers[0]
        for _ in range(n):
            receive_into(buffer)
        got = n
    else:
        receive = channel.receive
        for _ in range(n):
            receive()
        got = n
    after = usage()
    spin = current_spin(channel)
    os.write(done, struct.pack("3qd", *(a - b for a, b in zip(after, before, strict=True)), spin))
    channel.close()


def trial(args) -> dict[str, float]:
    channel = ipcxx.Channel(None, create=True, capacity=args.capacity)
    if args.spin is not None:
        channel.spin = args.spin
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            consumer(channel.name, args, ready_w, done_w)
            status = 0
        finally:
            os._exit(status)
    try:
        os.sched_setaffinity(0, {args.cpus[0]})
        assert os.read(ready_r, 1) == b"r"
        payload = b"p" * args.size
        n, batch = args.count, args.batch
        before = usage()
        started = time.perf_counter()
        if args.pattern in ("many", "many-into"):
            send_many, full = channel.send_many, [payload] * batch
            for _ in range(n // batch):
                send_many(full)
            if n % batch:
                send_many(full[: n % batch])
        else:
            send = channel.send
            for _ in range(n):
                send(payload)
        data = b""
        while len(data) < 32:
            data += os.read(done_r, 32 - len(data))
        elapsed = time.perf_counter() - started
        after = usage()
        spin = current_spin(channel)
        os.waitpid(child, 0)
    finally:
        channel.unlink()
        channel.close()
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)
    cvcsw, civcsw, cminflt, cspin = struct.unpack("3qd", data)
    pvcsw, pivcsw, pminflt = (a - b for a, b in zip(after, before, strict=True))
    return {
        "msgs/s": n / elapsed,
        "GB/s": n * args.size / elapsed / 1e9,
        "c.vcsw/msg": cvcsw / n,
        "p.vcsw/msg": pvcsw / n,
        "c.ivcsw/msg": civcsw / n,
        "p.ivcsw/msg": pivcsw / n,
        "c.minflt/msg": cminflt / n,
        "p.spin_us": spin * 1e6,
        "c.spin_us": cspin * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument(
        "--pattern", default="many", choices=("one", "many", "send+many", "many-into", "one-into")
    )
    parser.add_argument("--spin", type=float, default=None, help="fixed spin (s); default adaptive")
    parser.add_argument("--capacity", type=int, default=1 << 20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--count", type=int, default=None, help="messages per trial")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cpus", type=int, nargs=2, default=sorted(os.sched_getaffinity(0))[:2])
    args = parser.parse_args()
    if args.count is None:
        args.count = max(2000, min(200_000, (4 << 30) // max(args.size, 1) // 8))
    rows = [trial(args) for _ in range(args.trials)]
    keys = list(rows[0])
    print(f"{args.pattern} {args.size} B, spin {args.spin or 'adaptive'}, {args.count} msgs/trial")
    print(" ".join(f"{k:>12}" for k in keys))
    for row in rows:
        print(" ".join(f"{row[k]:12.3g}" for k in keys))
    for label, pick in (("median", statistics.median), ("min", min), ("max", max)):
        print(" ".join(f"{pick(r[k] for r in rows):12.3g}" for k in keys), label)
    return 0


if __name__ == "__main__":
    sys.exit(main())

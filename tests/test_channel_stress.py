"""ipcxx.Channel across many processes: exactly-once delivery with 4 producers and 4 consumers,
and a kill -9 storm of random producers and consumers mid-stream (docs/channel.md, "Death
recovery"). Workers: tests/channel_workers.py."""

from __future__ import annotations

import mmap
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipcxx import Channel
from tests.channel_workers import RECORD_SLOTS

WORKER = Path(__file__).resolve().parent / "channel_workers.py"
DEADLINE = 240  # seconds for a whole scenario; a stuck survivor fails it


class Worker:
    def __init__(self, role: str, *args: str) -> None:
        self.role = role
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), role, *map(str, args)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == "ready", f"{role} worker said {line!r}, exit {self.process.poll()}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


class Run:
    """One scenario: the channel, its workers, their progress and record files."""

    def __init__(self, name: str, directory: Path, quota: int) -> None:
        self.channel = Channel(name, create=True, capacity=1 << 16)
        # The parent holds the stream open while producers are killed and replaced; its
        # finish() at the end is the consumers' end of stream (no sentinel messages).
        self.channel.declare_producer()
        self.directory = directory
        self.quota = quota
        self.producers: dict[int, Worker] = {}
        self.consumers: list[Worker] = []
        self.progress_files: dict[int, Path] = {}
        self.record_files: list[Path] = []
        self.killed_producers: set[int] = set()
        self.consumer_kills = 0
        self.next_producer = 0

    def start_producer(self) -> None:
        producer = self.next_producer
        self.next_producer += 1
        path = self.directory / f"progress-{producer}"
        path.write_bytes(bytes(16))
        self.progress_files[producer] = path
        self.producers[producer] = Worker("producer", self.channel.name, producer, self.quota, path)

    def start_consumer(self) -> None:
        path = self.directory / f"record-{len(self.record_files)}"
        with open(path, "wb") as file:
            file.truncate(8 * RECORD_SLOTS)
        self.record_files.append(path)
        self.consumers.append(Worker("consumer", self.channel.name, path))

    def kill_one(self, rng: random.Random) -> str:
        survivors = [w for p, w in self.producers.items() if p not in self.killed_producers]
        for worker in [*survivors, *self.consumers]:
            code = worker.process.poll()
            # Only a producer may have ended (its quota done); nobody may have failed.
            assert code is None or (code == 0 and worker.role == "producer"), (worker.role, code)
        live_producers = [p for p, w in self.producers.items() if w.process.poll() is None]
        if live_producers and (rng.random() < 0.5 or len(self.consumers) == 0):
            victim = rng.choice(live_producers)
            self.producers[victim].kill()
            self.killed_producers.add(victim)
            self.start_producer()
            return "producer"
        index = rng.randrange(len(self.consumers))
        self.consumers[index].kill()
        self.consumer_kills += 1
        self.start_consumer()
        del self.consumers[index]
        return "consumer"

    def finish(self) -> None:
        deadline = time.monotonic() + DEADLINE
        for producer, worker in self.producers.items():
            if producer in self.killed_producers:
                continue
            with open(self.progress_files[producer], "r+b") as file:
                file.seek(8)
                file.write(b"\1")  # unlimited producers stop at their next message
            assert worker.wait(max(1, deadline - time.monotonic())) == 0, f"producer {producer}"
        self.channel.finish()
        for worker in self.consumers:
            assert worker.wait(max(1, deadline - time.monotonic())) == 0, "consumer"
        # Messages claimed by killed consumers are counted lost when their space is needed:
        # push three largest messages through, so that head passes the whole ring (a new
        # producer: it reopens the ended stream).
        largest = bytes(self.channel.max_message_size)
        with Channel(self.channel.name) as pusher:
            for _ in range(3):
                pusher.send(largest, timeout=DEADLINE)
                assert self.channel.receive(timeout=DEADLINE) == largest

    def committed(self, producer: int) -> int:
        """Messages producer has certainly committed (its stored count)."""
        return int.from_bytes(self.progress_files[producer].read_bytes()[:8], "little")

    def records(self) -> list[list[tuple[int, int]]]:
        result = []
        for path in self.record_files:
            with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ) as m:
                count = struct.unpack_from("<Q", m, 0)[0]
                values = struct.unpack_from(f"<{count}Q", m, 8)
            result.append([(value >> 32, value & 0xFFFFFFFF) for value in values])
        return result

    def close(self) -> None:
        for worker in [*self.producers.values(), *self.consumers]:
            if worker.process.poll() is None:
                worker.kill()
        self.channel.unlink()
        self.channel.close()


@pytest.fixture
def run(make_name, tmp_path):
    runs: list[Run] = []

    def start(quota: int) -> Run:
        made = Run(make_name(), tmp_path, quota)
        runs.append(made)
        return made

    yield start
    for made in runs:
        made.close()


def check_delivery(run: Run, batch_slack: int) -> dict[str, int]:
    """Exactly once, FIFO per producer, and every committed message accounted for."""
    per_consumer = run.records()
    seen: set[tuple[int, int]] = set()
    for records in per_consumer:
        last: dict[int, int] = {}
        for producer, seq in records:
            assert (producer, seq) not in seen, f"message {producer}/{seq} delivered twice"
            seen.add((producer, seq))
            assert seq > last.get(producer, -1), f"producer {producer} out of order"
            last[producer] = seq
    received: dict[int, set[int]] = {producer: set() for producer in run.progress_files}
    for producer, seq in seen:
        received[producer].add(seq)
    missing = 0
    for producer, seqs in received.items():
        committed = run.committed(producer)
        if producer not in run.killed_producers and run.quota:
            assert committed == run.quota
        # A killed producer may have committed a batch (send_many of 8) past its stored count.
        assert not seqs or max(seqs) < committed + 8, f"producer {producer}"
        missing += committed - len([seq for seq in seqs if seq < committed])
    lost, abandoned = run.channel.lost, run.channel.abandoned
    # Missing messages went to killed consumers: claimed and lost (counted), or received but
    # not yet recorded when the kill came (at most one batch of 16 each).
    assert missing <= lost + batch_slack * run.consumer_kills, (missing, lost)
    assert lost <= 16 * run.consumer_kills
    assert abandoned <= 8 * len(run.killed_producers)
    return {"delivered": len(seen), "missing": missing, "lost": lost, "abandoned": abandoned}


def test_four_producers_four_consumers_exactly_once(run, sizes):
    total = 1_000_000 if sizes.full else 100_000
    scenario = run(total // 4)
    for _ in range(4):
        scenario.start_consumer()
    for _ in range(4):
        scenario.start_producer()
    scenario.finish()
    figures = check_delivery(scenario, batch_slack=0)
    assert figures == {"delivered": total, "missing": 0, "lost": 0, "abandoned": 0}


def test_kill_storm_of_producers_and_consumers(run, sizes):
    kills = 300 if sizes.full else 100
    rng = random.Random(os.getpid())
    scenario = run(0)  # producers send until the storm is over
    for _ in range(4):
        scenario.start_consumer()
    for _ in range(4):
        scenario.start_producer()
    started = time.monotonic()
    victims = {"producer": 0, "consumer": 0}
    for _ in range(kills):
        # Random moments mid-stream (the timing is the point, not a synchronization).
        time.sleep(rng.uniform(0, 0.01))
        victims[scenario.kill_one(rng)] += 1
        assert time.monotonic() - started < DEADLINE
    scenario.finish()
    figures = check_delivery(scenario, batch_slack=16)
    print(f"{kills} kills ({victims}): {figures}")
    assert figures["delivered"] > 0

"""ipcxx.Channel end of stream across real processes: a clean finish, a producer killed with
SIGKILL, producers joining late, receive_many and iteration (docs/channel.md "End of stream")."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection

import pytest

from ipcxx import Channel, ChannelError, EndOfStream

FORK = multiprocessing.get_context("fork")
DEADLINE = 30.0


def message(producer: int, seq: int) -> bytes:
    return b"%d:%d:" % (producer, seq) + bytes([seq % 251]) * (seq % 200)


def consume(name: str, mode: str, ready: Connection, results: Connection) -> None:
    """Receives until the end of the stream in one way; sends back what it got."""
    channel = Channel(name)
    got: list[bytes] = []
    ready.send("ready")
    try:
        if mode == "iterate":
            got.extend(channel)  # ends at the end of the stream
        else:
            buffer = bytearray(512)
            while True:
                if mode == "receive_many":
                    got.extend(channel.receive_many(64))
                elif mode == "peek":
                    with channel.peek() as view:
                        got.append(bytes(view))
                elif mode == "receive_into":
                    size = channel.receive_into(buffer)
                    got.append(bytes(buffer[:size]))
                else:
                    got.append(channel.receive())
    except EndOfStream:
        pass
    results.send(got)


def produce(name: str, producer: int, count: int, finish: bool) -> None:
    """Sends count messages in every way, then finishes (or just exits: closing finishes)."""
    channel = Channel(name)
    seq = 0
    while seq < count:
        if seq % 3 == 0:
            batch = [message(producer, s) for s in range(seq, min(seq + 10, count))]
            seq += channel.send_many(batch)
        elif seq % 3 == 1:
            data = message(producer, seq)
            with channel.reserve(len(data)) as view:
                view[:] = data
            seq += 1
        else:
            channel.send(message(producer, seq))
            seq += 1
    if finish:
        channel.finish()


class Consumers:
    """Consumer processes started before any producer; their results, each checked for a hang."""

    def __init__(self, name: str, modes: list[str]) -> None:
        self.processes = []
        self.results = []
        for mode in modes:
            ready_read, ready_write = FORK.Pipe(duplex=False)
            result_read, result_write = FORK.Pipe(duplex=False)
            process = FORK.Process(target=consume, args=(name, mode, ready_write, result_write))
            process.start()
            assert ready_read.poll(DEADLINE) and ready_read.recv() == "ready"
            self.processes.append(process)
            self.results.append(result_read)

    def collect(self) -> list[list[bytes]]:
        got = []
        for process, results in zip(self.processes, self.results, strict=True):
            assert results.poll(DEADLINE), "a consumer never saw the end of the stream"
            got.append(results.recv())
            process.join(DEADLINE)
            assert process.exitcode == 0
        return got

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join()


@pytest.fixture
def consumers():
    started: list[Consumers] = []

    def start(name: str, modes: list[str]) -> Consumers:
        made = Consumers(name, modes)
        started.append(made)
        return made

    yield start
    for made in started:
        made.close()


def assert_each_once(got: list[list[bytes]], expected: list[bytes]) -> None:
    everything = [m for one in got for m in one]
    assert len(everything) == len(set(everything))  # nothing twice
    assert sorted(everything) == sorted(expected)  # nothing lost


@pytest.mark.parametrize(
    "modes",
    [
        ["receive", "receive_many"],
        ["receive_many", "receive_many"],
        ["iterate", "peek"],
        ["receive_into", "iterate"],
    ],
)
def test_a_finished_producer_ends_both_consumer_processes_each_message_once(
    make_name, consumers, modes
):
    channel = Channel(make_name(), create=True, capacity=1 << 14)
    try:
        started = consumers(channel.name, modes)  # before any producer: they wait for one
        producer = FORK.Process(target=produce, args=(channel.name, 1, 3000, True))
        producer.start()
        got = started.collect()
        producer.join(DEADLINE)
        assert producer.exitcode == 0
        assert_each_once(got, [message(1, s) for s in range(3000)])
        with pytest.raises(EndOfStream):
            channel.receive(timeout=0)
        assert channel.lost == channel.abandoned == 0
    finally:
        channel.close()


def hold_a_reservation(name: str, count: int, ready: Connection) -> None:
    channel = Channel(name)
    for seq in range(count):
        channel.send(message(2, seq))
    with channel.reserve(100) as view:
        view[:50] = bytes(50)  # half written when it is killed
        ready.send("reserved")
        while True:
            time.sleep(1)


def test_a_producer_killed_with_sigkill_ends_the_consumers_after_they_drained_the_ring(
    make_name, consumers
):
    channel = Channel(make_name(), create=True, capacity=1 << 16)
    try:
        started = consumers(channel.name, ["receive_many", "receive"])
        ready_read, ready_write = FORK.Pipe(duplex=False)
        producer = FORK.Process(target=hold_a_reservation, args=(channel.name, 500, ready_write))
        producer.start()
        assert ready_read.poll(DEADLINE) and ready_read.recv() == "reserved"
        os.kill(producer.pid, signal.SIGKILL)
        got = started.collect()  # both consumers ended (EndOfStream), within DEADLINE
        producer.join()
        assert_each_once(got, [message(2, s) for s in range(500)])
        assert channel.abandoned == 1  # the half-written reservation, never delivered
    finally:
        channel.close()


def test_producers_joining_late_extend_the_stream_while_it_is_held_open(make_name, consumers):
    channel = Channel(make_name(), create=True, capacity=1 << 14)
    try:
        channel.declare_producer()  # holds the stream open between the producers
        started = consumers(channel.name, ["receive_many", "iterate"])
        for producer in (1, 2, 3):  # one after another: none overlaps the next
            process = FORK.Process(target=produce, args=(channel.name, producer, 400, False))
            process.start()
            process.join(DEADLINE)
            assert process.exitcode == 0
        assert all(process.is_alive() for process in started.processes)  # not ended yet
        channel.finish()
        got = started.collect()
        assert_each_once(got, [message(p, s) for p in (1, 2, 3) for s in range(400)])
    finally:
        channel.close()


def test_a_producer_after_the_end_reopens_the_stream(make_name):
    channel = Channel(make_name(), create=True, capacity=1 << 14)
    try:
        first = FORK.Process(target=produce, args=(channel.name, 1, 5, True))
        first.start()
        first.join(DEADLINE)
        assert [channel.receive(timeout=DEADLINE) for _ in range(5)] == [
            message(1, s) for s in range(5)
        ]
        with pytest.raises(EndOfStream):
            channel.receive(timeout=DEADLINE)
        late = FORK.Process(target=produce, args=(channel.name, 2, 3, False))
        late.start()
        late.join(DEADLINE)
        assert list(channel) == [message(2, s) for s in range(3)]  # queued, then the end again
    finally:
        channel.close()


def test_end_of_stream_rules_in_one_process(make_name):
    assert issubclass(EndOfStream, EOFError)
    consumer = Channel(make_name(), create=True, capacity=4096)
    try:
        with pytest.raises(TimeoutError):  # no producer yet: not the end, a timeout
            consumer.receive(timeout=0.02)
        producer = Channel(consumer.name)
        assert not producer.finished
        producer.send(b"last")
        producer.finish()
        producer.finish()  # idempotent
        assert producer.finished
        with pytest.raises(ChannelError, match="finished sending"):
            producer.send(b"more")
        with pytest.raises(ChannelError, match="finished sending"):
            producer.declare_producer()
        assert consumer.receive(timeout=0) == b"last"  # drained first, then the end
        for call in (
            lambda: consumer.receive(timeout=0),
            lambda: consumer.receive(),
            lambda: consumer.receive_many(8, timeout=1),
            lambda: consumer.receive_into(bytearray(8)),
            lambda: consumer.peek(timeout=5),
        ):
            with pytest.raises(EndOfStream):
                call()
        assert list(consumer) == []
        producer.close()
        with pytest.raises(ValueError, match="closed"):
            producer.declare_producer()
        with pytest.raises(ValueError, match="closed"):
            producer.finish()
    finally:
        consumer.close()


def test_closing_the_last_producer_wakes_a_waiting_consumer(make_name):
    channel = Channel(make_name(), create=True, capacity=4096)
    try:
        producer = Channel(channel.name)
        producer.declare_producer()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the consumer: waits until the end, reports how long it waited
            code = 1
            try:
                started = time.monotonic()
                try:
                    channel.receive(timeout=DEADLINE)
                except EndOfStream:
                    os.write(write, b"%f" % (time.monotonic() - started))
                    code = 0
            finally:
                os._exit(code)
        time.sleep(0.1)  # let it go to sleep on the futex word (the test holds without it)
        producer.close()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        waited = float(os.read(read, 64))
        os.close(read)
        os.close(write)
        # EndOfStream, not TimeoutError: woken by the close. Long before the timeout, however
        # loaded the machine (the wake's latency is measured in docs/channel.md, not here).
        assert waited < DEADLINE / 2
    finally:
        channel.close()

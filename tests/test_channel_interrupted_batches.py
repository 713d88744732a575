"""Channel.send_many and receive_many interrupted by a real signal part way (issue 16, 6): the
count of messages already sent travels on the exception (`exc.sent`), and receive_many never
takes a message it does not return. Another process sends the signal once /proc shows this
process's main thread asleep on the channel's futex."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipcxx import Channel, EndOfStream, unlink_channel

ROOT = Path(__file__).resolve().parent.parent

# The child: waits until thread TID of process PID sleeps on a futex in FILE, then sends it
# SIGUSR1 and says so.
SIGNAL_WHEN_BLOCKED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from tests.kernel_wait import wait_until_blocked
pid, tid, file = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
wait_until_blocked(tid, "futex", futex_in=file, pid=pid)
os.kill(pid, signal.SIGUSR1)
print("sent", flush=True)
"""

MESSAGES = [i.to_bytes(2, "little") * 40 for i in range(300)]  # 300 distinct 80-byte messages


class Interrupted(Exception):
    """What the test's signal handler raises."""


@pytest.fixture
def channel(make_name) -> Iterator[Channel]:
    made = Channel(make_name(), create=True, capacity=4096)  # far less than MESSAGES
    yield made
    unlink_channel(made.name)  # a test's handler may have closed `made`
    made.close()


@pytest.fixture
def reader(channel) -> Iterator[Channel]:
    opened = Channel(channel.name)
    yield opened
    opened.close()


@pytest.fixture
def signal_once_blocked(spawn, channel) -> Iterator[Callable[[Callable[..., None]], None]]:
    """signal_once_blocked(handler): installs `handler` for SIGUSR1 and starts a child that
    sends SIGUSR1 to this process once its main thread sleeps on the channel."""
    previous = signal.getsignal(signal.SIGUSR1)
    children = []

    def arm(handler: Callable[..., None]) -> None:
        signal.signal(signal.SIGUSR1, handler)
        children.append(
            spawn(
                SIGNAL_WHEN_BLOCKED,
                str(ROOT),
                str(os.getpid()),
                str(threading.get_native_id()),
                f"/dev/shm{channel.name}",
            )
        )

    yield arm
    for child in children:
        assert child.read_line() == "sent"
        assert child.finish() == 0
    signal.signal(signal.SIGUSR1, previous)


def drain(reader: Channel) -> list[bytes]:
    """Everything in the channel now (nobody else sends). A closed sender that was the only
    producer ends the stream: EndOfStream once drained."""
    got: list[bytes] = []
    while True:
        try:
            got += reader.receive_many(1000, timeout=0)
        except (TimeoutError, EndOfStream):
            return got


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


def test_a_handler_that_raises_leaves_the_count_sent_on_the_exception(
    channel, reader, signal_once_blocked
):
    signal_once_blocked(raise_interrupted)
    with pytest.raises(Interrupted) as caught:
        channel.send_many(MESSAGES)
    sent = caught.value.sent
    assert 0 < sent < len(MESSAGES)  # blocked part way: the ring was full, nobody consumed
    assert drain(reader) == MESSAGES[:sent]
    # Resuming from the count sends the rest exactly once.
    rest = MESSAGES[sent:]
    while rest:
        done = channel.send_many(rest[:20])
        assert drain(reader) == rest[:done]
        rest = rest[done:]
    assert channel.lost == channel.abandoned == 0


def test_a_handler_that_closes_the_channel_leaves_the_count_on_the_value_error(
    channel, reader, signal_once_blocked
):
    signal_once_blocked(lambda signum, frame: channel.close())
    with pytest.raises(ValueError, match="closed") as caught:
        channel.send_many(MESSAGES)
    sent = caught.value.sent
    assert 0 < sent < len(MESSAGES)
    assert drain(reader) == MESSAGES[:sent]


def test_an_interruption_before_the_first_message_reports_zero_sent(
    channel, reader, signal_once_blocked
):
    while True:  # fill the ring
        try:
            channel.send(b"filler", timeout=0)
        except TimeoutError:
            break
    signal_once_blocked(raise_interrupted)
    with pytest.raises(Interrupted) as caught:
        channel.send_many(MESSAGES[:5])
    assert caught.value.sent == 0
    assert set(drain(reader)) == {b"filler"}
    with pytest.raises(TimeoutError) as timed_out:  # full again, nothing sent: TimeoutError
        while True:
            channel.send_many([b"x" * 1000], timeout=0)
    assert timed_out.value.sent == 0


def test_receive_many_interrupted_while_waiting_takes_nothing(channel, reader, signal_once_blocked):
    signal_once_blocked(raise_interrupted)
    with pytest.raises(Interrupted):
        reader.receive_many(10)
    channel.send_many(MESSAGES[:3])
    assert reader.receive_many(10, timeout=5) == MESSAGES[:3]
    assert channel.lost == 0


def test_receive_many_whose_channel_a_handler_closes_takes_nothing(
    channel, reader, signal_once_blocked
):
    signal_once_blocked(lambda signum, frame: reader.close())
    with pytest.raises(ValueError, match="closed"):
        reader.receive_many(10)
    channel.send_many(MESSAGES[:3])
    assert channel.receive_many(10, timeout=5) == MESSAGES[:3]
    assert channel.lost == 0

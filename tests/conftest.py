"""Shared fixtures: unique object names, guaranteed cleanup, child processes, and the
session-wide guard that fails the run when a test leaves an IPC object behind."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NAME_PREFIX = f"ipcxx_t{os.getpid()}_"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="run the reliability tests at their full size (docs/reliability.md)",
    )


class Sizes:
    """Workload sizes of the reliability tests: quick by default, full with --full."""

    def __init__(self, full: bool) -> None:
        self.full = full
        self.counter_processes = 8 if full else 4
        self.counter_iterations = 100_000 if full else 10_000
        self.producers = self.consumers = 4 if full else 2
        self.messages = 1_000_000 if full else 100_000
        self.kills = 100 if full else 10
        self.fuzz_examples = 2_000 if full else 150
        self.leak_objects = 100_000 if full else 10_000
        self.notification_forks = 10_000 if full else 1_000


@pytest.fixture(scope="session")
def sizes(request: pytest.FixtureRequest) -> Sizes:
    return Sizes(request.config.getoption("--full"))


def _ipc_objects() -> set[str]:
    """Every POSIX and System V object on the machine, as comparable strings."""
    found: set[str] = set()
    for folder in ("/dev/shm", "/dev/mqueue"):
        if os.path.isdir(folder):
            found.update(f"{folder}/{entry}" for entry in os.listdir(folder))
    for kind in ("sem", "shm", "msg"):
        table = Path(f"/proc/sysvipc/{kind}")
        if table.exists():
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                found.add(f"sysv-{kind}:key={fields[0]}:id={fields[1]}")
    return found


# Which test each object first outlived: the session guard names the culprits.
_first_seen_after: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def leak_guard() -> Iterator[None]:
    """Fails the session if any IPC object appeared during it and is still there."""
    before = _ipc_objects()
    yield
    leftovers = sorted(_ipc_objects() - before)
    culprits = {item: _first_seen_after.get(item, "?") for item in leftovers}
    assert not leftovers, f"IPC objects left behind by the tests (object: test): {culprits}"


@pytest.fixture(autouse=True)
def leak_attribution(request: pytest.FixtureRequest) -> Iterator[None]:
    """Notes the objects that appeared during this test and outlived it (reported by the
    session guard if they are still there at the end)."""
    before = _ipc_objects()
    yield
    for item in _ipc_objects() - before:
        _first_seen_after.setdefault(item, request.node.nodeid)


@pytest.fixture
def make_name(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Returns a factory of unique names; every name it made is unlinked at teardown."""
    import posix_ipc

    made: list[str] = []

    def factory() -> str:
        name = "/" + NAME_PREFIX + secrets.token_hex(6)
        made.append(name)
        return name

    yield factory
    for name in made:
        for unlink in (
            posix_ipc.unlink_semaphore,
            posix_ipc.unlink_shared_memory,
            posix_ipc.unlink_message_queue,
        ):
            try:
                unlink(name)
            except posix_ipc.ExistentialError:
                pass


@pytest.fixture
def track() -> Iterator[Callable]:
    """track(obj) removes a posix_ipc object (random-named ones included) at teardown."""
    import posix_ipc

    objects: list = []

    def add(obj):
        objects.append(obj)
        return obj

    yield add
    for obj in objects:
        try:
            obj.unlink()
        except (posix_ipc.ExistentialError, ValueError):
            pass
        for closer in ("close", "close_fd"):
            try:
                getattr(obj, closer, lambda: None)()
            except posix_ipc.ExistentialError:
                pass


@pytest.fixture
def sysv() -> Iterator[Callable]:
    """sysv(obj) removes a sysv_ipc object at teardown (by id, so removal by another handle or
    a test that already removed it is fine); returns obj."""
    import sysv_ipc

    objects: list = []

    def add(obj):
        objects.append(obj)
        return obj

    yield add
    for obj in objects:
        if isinstance(obj, sysv_ipc.SharedMemory) and obj.attached:
            try:
                obj.detach()
            except (sysv_ipc.NotAttachedError, BufferError):
                pass
        try:
            obj.remove()
        except sysv_ipc.ExistentialError:
            pass


class Child:
    """A Python child process running `code`, talking line by line over its stdin/stdout."""

    def __init__(self, code: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read_line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"child exited early with {self.process.wait()}"
        return line.strip()

    def send_line(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30) -> int:
        if self.process.stdin:
            self.process.stdin.close()
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    """spawn(code, *args) starts a child; any child still running at teardown is killed."""
    children: list[Child] = []

    def start(code: str, *args: str) -> Child:
        child = Child(code, *args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def make_queue() -> Iterator[Callable[..., Any]]:
    """make_queue(cls=ipcxx.Queue, *args, **kwargs): an ipcxx queue (anonymous unless name= is
    given) that is closed and unlinked at teardown, with its exit flush cancelled."""
    import ipcxx

    made: list[Any] = []

    def factory(cls: Any = None, *args: Any, **kwargs: Any) -> Any:
        queue = (cls or ipcxx.Queue)(*args, **kwargs)
        made.append(queue)
        return queue

    yield factory
    for queue in made:
        if hasattr(queue, "cancel_join_thread"):
            queue.cancel_join_thread()
        queue.close()
        queue.unlink()

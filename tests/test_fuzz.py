"""Bad-input fuzzing (hypothesis): every constructor, method and settable attribute of both
modules is fed wrong types, extreme integers, NaN/inf timeouts, NUL bytes and over-long names.
Calls run in a separate worker process, so a crash shows up as the worker dying: only the
upstream exception types may come out, never a signal."""

from __future__ import annotations

import math
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALLOWED = {
    "builtins.TypeError", "builtins.ValueError", "builtins.OverflowError", "builtins.OSError",
    "builtins.FileNotFoundError", "builtins.PermissionError", "builtins.FileExistsError",
    "builtins.MemoryError", "builtins.BufferError", "builtins.AttributeError",
    "builtins.UnicodeEncodeError", "builtins.UnicodeDecodeError", "builtins.NotADirectoryError",
    "posix_ipc.Error", "posix_ipc.SignalError", "posix_ipc.PermissionsError",
    "posix_ipc.ExistentialError", "posix_ipc.BusyError",
    "sysv_ipc.Error", "sysv_ipc.PermissionsError", "sysv_ipc.ExistentialError",
    "sysv_ipc.BusyError", "sysv_ipc.NotAttachedError", "sysv_ipc.InternalError",
}  # fmt: skip

EXTREME_INTS = [0, 1, -1, 2, 255, 256, 32767, 32768, -32768, -32769, 2**31 - 1, 2**31,
                -(2**31), 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64,
                2**100, -(2**100)]  # fmt: skip
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 0.5, -0.5, 1e-9, 1e300, 2.0**63]

PREFIX = f"/ipcxx_fz{os.getpid()}_"


def names() -> st.SearchStrategy:
    base = st.text(alphabet="abcxyz/\0é\udc80", max_size=8)
    return st.one_of(
        st.none(),
        base.map(lambda s: PREFIX + s),
        st.builds(lambda s: (PREFIX + s).encode("utf-8", "surrogateescape"), base),
        st.just(PREFIX + "x" * 300),
        st.just(""),
        st.just("/"),
        st.sampled_from([5, 1.5, bytearray(b"/x"), ["/x"], object]),
    )


def wild() -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(EXTREME_INTS),
        st.integers(min_value=-10, max_value=70000),
        st.sampled_from(FLOATS),
        st.text(max_size=5),
        st.binary(max_size=5),
        st.sampled_from(
            [b"\0", "\0", "x" * 300, bytearray(b"ab"), [], (), {}, (len, 1), (print, 2, 3), object]
        ),  # fmt: skip
    )


def flags() -> st.SearchStrategy:
    return st.one_of(st.sampled_from([0, 64, 128, 192, 512, 1024, 1536, 2048, 4096]), wild())


class Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fuzz_worker.py")), PREFIX],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout.readline() == b"ready\n"

    def call(self, request: tuple) -> str:
        try:
            payload = pickle.dumps(request)
        except (pickle.PicklingError, TypeError, AttributeError):
            return "unpicklable"
        self.process.stdin.write(struct.pack("=I", len(payload)) + payload)
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            code = self.process.wait()
            raise AssertionError(f"the worker died (exit {code}) running {request!r}")
        return answer.decode().strip()

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def worker():
    running = Worker()
    yield running
    running.close()
    # Anything a fuzzed constructor made under the fuzz prefix is removed by the worker;
    # the session leak guard checks that nothing is left.


def check(worker: Worker, request: tuple) -> None:
    answer = worker.call(request)
    assert answer == "ok" or answer in ALLOWED or answer == "unpicklable", (
        f"{request!r} raised {answer}"
    )


def fuzz(strategy):
    """Runs the decorated test for `sizes.fuzz_examples` hypothesis examples."""

    def decorate(test):
        @pytest.mark.usefixtures("worker")
        def run(worker, sizes):
            @settings(
                max_examples=sizes.fuzz_examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(strategy)
            def inner(arguments):
                test(worker, arguments)

            inner()

        run.__name__ = test.__name__
        return run

    return decorate


@fuzz(st.tuples(names(), flags(), wild(), wild()))
def test_posix_semaphore_constructor(worker, arguments):
    check(worker, ("call", "posix_ipc.Semaphore", arguments, {}))


@fuzz(st.tuples(names(), flags(), wild(), wild(), wild()))
def test_posix_shared_memory_constructor(worker, arguments):
    check(worker, ("call", "posix_ipc.SharedMemory", arguments, {}))


@fuzz(st.tuples(names(), flags(), wild(), wild(), wild(), wild(), wild()))
def test_posix_message_queue_constructor(worker, arguments):
    check(worker, ("call", "posix_ipc.MessageQueue", arguments, {}))


@fuzz(st.tuples(st.sampled_from(["acquire", "release", "__exit__", "__enter__"]), wild()))
def test_posix_semaphore_methods(worker, arguments):
    method, value = arguments
    check(worker, ("call", f"posix_semaphore.{method}", (value,), {}))
    check(worker, ("call", "posix_semaphore.release", (), {}))  # keep the value positive


@fuzz(st.tuples(wild(), wild(), wild()))
def test_posix_queue_send(worker, arguments):
    check(worker, ("call", "posix_queue.send", arguments, {}))
    check(worker, ("call", "posix_queue.receive", (0,), {}))


@fuzz(st.tuples(st.sampled_from(["receive", "request_notification"]), wild()))
def test_posix_queue_methods(worker, arguments):
    method, value = arguments
    check(worker, ("call", f"posix_queue.{method}", (value,), {}))
    check(worker, ("call", "posix_queue.request_notification", (None,), {}))


@fuzz(st.tuples(st.sampled_from(["block", "name", "mode", "mqd", "max_messages"]), wild()))
def test_posix_attributes(worker, arguments):
    attribute, value = arguments
    check(worker, ("setattr", f"posix_queue.{attribute}", (value,), {}))
    check(worker, ("setattr", "posix_queue.block", (False,), {}))


@fuzz(st.tuples(st.sampled_from(["unlink_semaphore", "unlink_shared_memory",
                                 "unlink_message_queue"]), names()))  # fmt: skip
def test_posix_unlink_functions(worker, arguments):
    function, name = arguments
    check(worker, ("call", f"posix_ipc.{function}", (name,), {}))


@fuzz(st.tuples(wild(), flags(), wild(), wild()))
def test_sysv_semaphore_constructor(worker, arguments):
    check(worker, ("call", "sysv_ipc.Semaphore", arguments, {}))


@fuzz(st.tuples(wild(), flags(), wild(), wild(), wild()))
def test_sysv_shared_memory_constructor(worker, arguments):
    check(worker, ("call", "sysv_ipc.SharedMemory", arguments, {}))


@fuzz(st.tuples(wild(), flags(), wild(), wild()))
def test_sysv_message_queue_constructor(worker, arguments):
    check(worker, ("call", "sysv_ipc.MessageQueue", arguments, {}))


@fuzz(st.tuples(st.sampled_from(["acquire", "P", "release", "V", "Z"]), wild(), wild()))
def test_sysv_semaphore_methods(worker, arguments):
    method, first, second = arguments
    arguments = (first,) if method == "Z" else (first, second)
    check(worker, ("call", f"sysv_semaphore.{method}", arguments, {}))
    check(worker, ("setattr", "sysv_semaphore.value", (1000,), {}))


@fuzz(st.tuples(st.sampled_from(["value", "block", "undo", "mode", "uid", "gid", "key", "id"]),
                wild()))  # fmt: skip
def test_sysv_semaphore_attributes(worker, arguments):
    attribute, value = arguments
    check(worker, ("setattr", f"sysv_semaphore.{attribute}", (value,), {}))
    check(worker, ("setattr", "sysv_semaphore.block", (False,), {}))
    check(worker, ("setattr", "sysv_semaphore.mode", (0o600,), {}))
    check(worker, ("setattr", "sysv_semaphore.value", (1000,), {}))


# SHM_REMAP (Linux) asks shmat to replace whatever the process has mapped at the address. Under
# AddressSanitizer its shadow memory covers 0x7fff8000-0x10007fff7fff, 2**31 and 2**32 among the
# integers above: attach(2**31, SHM_REMAP) replaces the sanitizer's own shadow, and it crashes
# at its next check (seen in CI: "unknown-crash on address 0x000080000000" in read()). In that
# build such a call goes without its address (EINVAL: SHM_REMAP needs one); elsewhere it runs.
_SANITIZED = os.environ.get("IPCXX_SANITIZED") == "1"
_SHM_REMAP = 0o40000


@fuzz(st.tuples(st.sampled_from(["read", "write", "attach"]), wild(), wild()))
def test_sysv_memory_methods(worker, arguments):
    method, first, second = arguments
    if (
        _SANITIZED
        and method == "attach"
        and isinstance(first, int)
        and isinstance(second, int)
        and second & _SHM_REMAP
    ):
        first = None  # see _SANITIZED
    check(worker, ("call", f"sysv_memory.{method}", (first, second), {}))


@fuzz(st.tuples(st.sampled_from(["mode", "uid", "gid", "size", "address"]), wild()))
def test_sysv_memory_attributes(worker, arguments):
    attribute, value = arguments
    check(worker, ("setattr", f"sysv_memory.{attribute}", (value,), {}))
    check(worker, ("setattr", "sysv_memory.mode", (0o600,), {}))


@fuzz(st.tuples(st.sampled_from(["send", "receive"]), wild(), wild(), wild()))
def test_sysv_queue_methods(worker, arguments):
    method, first, second, third = arguments
    if method == "receive":
        check(worker, ("call", "sysv_queue.receive", (False, first), {}))
        check(worker, ("call", "sysv_queue.receive", (second, third), {}))
    else:
        check(worker, ("call", "sysv_queue.send", (first, False, third), {}))


@fuzz(st.tuples(st.sampled_from(["max_size", "mode", "uid", "gid", "id"]), wild()))
def test_sysv_queue_attributes(worker, arguments):
    attribute, value = arguments
    check(worker, ("setattr", f"sysv_queue.{attribute}", (value,), {}))
    check(worker, ("setattr", "sysv_queue.max_size", (16384,), {}))
    check(worker, ("setattr", "sysv_queue.mode", (0o600,), {}))


@fuzz(st.tuples(st.sampled_from(["ftok", "attach", "remove_semaphore", "remove_shared_memory",
                                 "remove_message_queue"]), wild(), wild()))  # fmt: skip
def test_sysv_functions(worker, arguments):
    function, first, second = arguments
    if function.startswith("remove_"):
        if isinstance(first, int) and first >= 0:
            return  # a real id could belong to someone else's object
        check(worker, ("call", f"sysv_ipc.{function}", (first,), {}))
    elif function == "attach":
        check(worker, ("call", "sysv_ipc.attach", (first, second), {}))
    else:
        check(worker, ("call", "sysv_ipc.ftok", (first, second, True), {}))

"""Upstream defects that ipcxx fixes on purpose (docs/compatibility.md lists each one)."""

import gc
import os
import subprocess
import sys
import threading

import posix_ipc


def test_callback_fires_after_the_queue_object_is_collected(make_name):
    """DC-9: upstream's notification thread uses a dangling pointer to a collected queue."""
    name = make_name()
    fired = threading.Event()
    queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
    descriptor = queue.mqd
    queue.request_notification((lambda value: fired.set(), None))
    del queue
    gc.collect()
    sender = posix_ipc.MessageQueue(name)
    sender.send(b"after collection")
    assert fired.wait(10)
    sender.close()
    os.close(descriptor)  # a collected queue leaves its public descriptor open (DC-1)


def test_names_that_are_not_utf8_read_back_like_os_fsdecode(make_name):
    """DC-19: upstream raises UnicodeDecodeError when reading such a name."""
    raw = make_name().encode() + b"\xff"
    semaphore = posix_ipc.Semaphore(raw, posix_ipc.O_CREX)
    assert semaphore.name == os.fsdecode(raw)
    assert os.fsencode(semaphore.name) == raw
    semaphore.unlink()
    semaphore.close()


def test_descriptor_exhaustion_keeps_the_message_and_sets_errno(make_name):
    """DC-27: OSError(message) as upstream, plus errno; str() stays the bare message."""
    code = (
        "import resource, posix_ipc, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))\n"
        "kept = []\n"
        "try:\n"
        "    while True:\n"
        "        kept.append(posix_ipc.SharedMemory(sys.argv[1], posix_ipc.O_CREAT))\n"
        "except OSError as error:\n"
        "    print(type(error).__name__, error.errno, str(error))\n"
        "posix_ipc.unlink_shared_memory(sys.argv[1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, make_name()], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "OSError 24 This process already has the maximum number of files open"
    )


def test_context_manager_never_unlinks(make_name):
    """DC-30 (kept): `with` acquires and releases only."""
    name = make_name()
    with posix_ipc.Semaphore(name, posix_ipc.O_CREX, initial_value=1):
        pass
    reopened = posix_ipc.Semaphore(name)
    assert reopened.value == 1
    reopened.close()

"""A full /dev/shm: Channel and RobustLock creation reserve their space, so a full filesystem is
OSError(ENOSPC) at construction with no segment left behind, never a SIGBUS later
(docs/reliability.md, "A full /dev/shm"). Each case runs in a child with its own IPC and mount
namespace whose /dev/shm is a 1 MiB tmpfs: it vanishes with the child, whatever happens."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

# Fills /dev/shm until only `leave` bytes are free; the filler is the one file expected after.
PRELUDE = textwrap.dedent(
    """
    import errno, json, os
    import ipcxx

    def free_bytes():
        info = os.statvfs("/dev/shm")
        return info.f_bavail * info.f_frsize

    def fill(leave):
        fd = os.open("/dev/shm/filler", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size + free_bytes() - leave)
        finally:
            os.close(fd)
        assert free_bytes() == leave, free_bytes()

    def outcome(make):
        try:
            made = make()
        except OSError as error:
            return errno.errorcode.get(error.errno, str(error.errno))
        made.unlink()
        made.close()
        return "created"

    def segments():
        return sorted(os.listdir("/dev/shm"))
    """
)


def namespace_unavailable_reason() -> str | None:
    """Why a private IPC + mount namespace with its own tmpfs cannot be made, or None."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(
        ["unshare", "--ipc", "--mount", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot make a private IPC + mount namespace (needs root): {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def small_shm():
    """small_shm(code) runs PRELUDE + code with /dev/shm a private 1 MiB tmpfs and returns the
    JSON the code prints; a child killed by a signal fails the test with the signal's name."""
    reason = namespace_unavailable_reason()
    if reason:
        pytest.skip(reason)

    def run(code: str) -> dict:
        result = subprocess.run(
            ["unshare", "--ipc", "--mount", "sh", "-c",
             'mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$@"',
             "sh", sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        if result.returncode < 0:
            pytest.fail(f"child killed by {signal.Signals(-result.returncode).name}")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


def test_robust_lock_creation_on_a_full_dev_shm_raises_enospc_and_leaves_nothing(small_shm):
    found = small_shm(
        """
        fill(0)
        unique = outcome(lambda: ipcxx.RobustLock(None, create=True))
        named = outcome(lambda: ipcxx.RobustLock("/full_lock", create=True))
        left = segments()
        os.unlink("/dev/shm/filler")
        after = outcome(lambda: ipcxx.RobustLock("/full_lock", create=True))
        print(json.dumps(dict(unique=unique, named=named, left=left, after=after)))
        """
    )
    assert found == dict(unique="ENOSPC", named="ENOSPC", left=["filler"], after="created")


def test_channel_creation_on_a_full_dev_shm_raises_enospc_and_leaves_nothing(small_shm):
    found = small_shm(
        """
        fill(0)
        unique = outcome(lambda: ipcxx.Channel(None, create=True))
        named = outcome(lambda: ipcxx.Channel("/full_channel", create=True, capacity=4096))
        left = segments()
        os.unlink("/dev/shm/filler")
        after = outcome(lambda: ipcxx.Channel("/full_channel", create=True, capacity=4096))
        print(json.dumps(dict(unique=unique, named=named, left=left, after=after)))
        """
    )
    assert found == dict(unique="ENOSPC", named="ENOSPC", left=["filler"], after="created")


def test_channel_larger_than_the_free_space_is_refused_at_creation(small_shm):
    # 256 KiB free: a 512 KiB ring does not fit; before the fix it was created sparse and died
    # with SIGBUS when its ring first filled. A 64 KiB ring fits, and filling it is safe.
    found = small_shm(
        """
        fill(256 * 1024)
        too_big = outcome(lambda: ipcxx.Channel(None, create=True, capacity=512 * 1024))
        left = segments()
        channel = ipcxx.Channel(None, create=True, capacity=64 * 1024)
        free_after = free_bytes()
        sent = 0
        try:
            while True:
                channel.send(bytes(1000), timeout=0)
                sent += 1
        except TimeoutError:
            pass
        free_full = free_bytes()
        received = sum(len(channel.receive(timeout=0)) for _ in range(sent))
        channel.unlink()
        channel.close()
        print(json.dumps(dict(too_big=too_big, left=left, free_after=free_after,
                              free_full=free_full, sent=sent, received=received)))
        """
    )
    assert found["too_big"] == "ENOSPC"
    assert found["left"] == ["filler"]
    # The channel's pages were taken at creation, so filling its ring takes no more space.
    assert found["free_after"] < 256 * 1024 - 64 * 1024
    assert found["free_full"] == found["free_after"]
    assert found["sent"] > 60
    assert found["received"] == 1000 * found["sent"]

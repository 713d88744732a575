"""sysv_ipc.Semaphore: constructor rules, operations, timeouts, block/undo, live attributes,
removal, signals and cross-process behaviour (including SIGKILL with undo)."""

import math
import os
import pickle
import random
import signal
import threading
import time
import weakref

import pytest

import sysv_ipc

BUSY = "^The semaphore is busy$"
MISSING = "^No semaphore exists with the specified key$"
RANGE = "^The semaphore's value must remain between 0 and SEMVMX$"


@pytest.fixture
def sem(sysv):
    return sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX))


def fresh_key():
    return random.randint(100_000, 2**31 - 1)


# ---- constructor -------------------------------------------------------------------------


def test_random_keys_are_in_the_upstream_range(sysv):
    for _ in range(10):
        semaphore = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX))
        assert 1 <= semaphore.key <= 32766 and semaphore.id >= 0
    assert str(semaphore) == f"Key={semaphore.key}, id={semaphore.id}"
    assert repr(semaphore) == f"sysv_ipc.Semaphore({semaphore.key})"


def test_open_by_key_shares_the_semaphore(sysv):
    key = fresh_key()
    creator = sysv(sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, initial_value=4))
    opener = sysv_ipc.Semaphore(key)
    assert opener.id == creator.id and opener.value == 4


def test_keys_are_truncated_to_32_bits_like_upstream(sysv):
    semaphore = sysv(sysv_ipc.Semaphore(2**40 + 77777, sysv_ipc.IPC_CREX))
    assert semaphore.key == 77777
    negative = sysv(sysv_ipc.Semaphore(-fresh_key(), sysv_ipc.IPC_CREX))
    assert negative.key < 0


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ((None,), ValueError, "^Key can only be None if IPC_EXCL is set$"),
        ((None, sysv_ipc.IPC_EXCL), ValueError, "^IPC_EXCL must be combined with IPC_CREAT$"),
        (("x",), TypeError, "^Key must be an integer or None$"),
        ((1.5,), TypeError, "^Key must be an integer or None$"),
        ((2**63,), TypeError, "^Key must be an integer or None$"),
        ((None, sysv_ipc.IPC_CREX, 0o600, 2**40), OverflowError, None),
        ((), TypeError, r"missing required argument 'key' \(pos 1\)"),
    ],
)
def test_constructor_rejects_bad_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        sysv_ipc.Semaphore(*arguments)


def test_missing_and_existing_keys(sem):
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        sysv_ipc.Semaphore(fresh_key())
    with pytest.raises(sysv_ipc.ExistentialError, match="already exists"):
        sysv_ipc.Semaphore(sem.key, sysv_ipc.IPC_CREX)


def test_ipc_creat_on_an_existing_semaphore_resets_its_value(sem):
    """Upstream behaviour kept on purpose (DC-6): drop-in code may rely on it."""
    sem.value = 5
    sysv_ipc.Semaphore(sem.key, sysv_ipc.IPC_CREAT)
    assert sem.value == 0
    sysv_ipc.Semaphore(sem.key, sysv_ipc.IPC_CREAT, initial_value=3)
    assert sem.value == 3
    sysv_ipc.Semaphore(sem.key, sysv_ipc.IPC_CREAT, mode=0o400, initial_value=9)
    assert sem.value == 3


def test_out_of_range_initial_value_leaves_no_semaphore_behind():
    """Upstream raises but keeps the semaphore it just created (DC-7)."""
    key = fresh_key()
    with pytest.raises(ValueError, match=RANGE):
        sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, initial_value=40000)
    with pytest.raises(sysv_ipc.ExistentialError):
        sysv_ipc.Semaphore(key)


def test_mode_bits_above_0777_do_not_act_as_flags():
    """Upstream passes mode unmasked, so 0o1000 means IPC_CREAT (DC-28)."""
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        sysv_ipc.Semaphore(fresh_key(), 0, mode=0o1600)


def test_ipc_private_makes_a_new_semaphore_every_time(sysv):
    first = sysv(sysv_ipc.Semaphore(sysv_ipc.IPC_PRIVATE))
    second = sysv(sysv_ipc.Semaphore(sysv_ipc.IPC_PRIVATE))
    assert first.id != second.id and first.key == 0 and first.value == 0


# ---- operations --------------------------------------------------------------------------


def test_acquire_release_and_their_aliases(sem):
    sem.release()
    sem.V()
    assert sem.value == 2
    sem.acquire()
    sem.P()
    assert sem.value == 0
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        sem.acquire(0)
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        sem.P(timeout=0)


def test_delta_ignores_its_sign_and_rejects_zero(sem):
    sem.release(-3)
    assert sem.value == 3
    sem.acquire(None, -2)
    sem.acquire(delta=1)
    assert sem.value == 0
    with pytest.raises(ValueError, match="^The delta must be non-zero$"):
        sem.acquire(None, 0)
    with pytest.raises(ValueError, match="^The delta must be non-zero$"):
        sem.release(0)
    with pytest.raises(OverflowError, match="signed short integer is greater than maximum"):
        sem.acquire(None, 40000)


def test_release_of_minus_32768_is_refused_not_turned_into_a_decrement(sem):
    """Upstream's |delta| overflows a short and decrements (DC-11)."""
    with pytest.raises(OverflowError, match="signed short integer is greater than maximum"):
        sem.release(-32768)
    assert sem.value == 0


def test_release_past_semvmx_raises_value_error(sem):
    sem.value = 32767
    with pytest.raises(ValueError, match=RANGE):
        sem.release()
    assert sem.value == 32767


def test_timeout_expires_with_busy_error(sem):
    started = time.monotonic()
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        sem.acquire(0.05)
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("timeout", [-1, "1", 2**64, math.nan, -math.inf])
def test_bad_timeouts_raise_type_error(sem, timeout):
    with pytest.raises(TypeError, match="^The timeout must be None or a non-negative number$"):
        sem.acquire(timeout)


def test_block_false_never_waits_whatever_the_timeout(sem):
    sem.block = False
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        sem.acquire(30)
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        sem.acquire()
    sem.block = True


def test_z_waits_for_zero(sem):
    sem.Z(0)
    sem.release()
    with pytest.raises(sysv_ipc.BusyError):
        sem.Z(0)
    with pytest.raises(TypeError):
        sem.Z(None, 1)


def test_context_manager_acquires_and_releases(sem):
    sem.release()
    with sem as held:
        assert held is sem and sem.value == 0
    assert sem.value == 1
    sem.__exit__(1, 2, 3)
    assert sem.value == 2


# ---- attributes --------------------------------------------------------------------------


def test_live_attributes_of_a_new_semaphore(sysv):
    semaphore = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1))
    assert semaphore.uid == semaphore.cuid == os.geteuid()
    assert semaphore.gid == semaphore.cgid == os.getgid()
    assert semaphore.mode == 0o600 and semaphore.o_time == 0
    assert semaphore.last_pid == os.getpid()  # Linux sets it on SETVAL
    semaphore.release()
    assert abs(semaphore.o_time - time.time()) < 10
    assert semaphore.waiting_for_nonzero == semaphore.waiting_for_zero == 0


def test_writable_attributes(sem):
    sem.mode = 0o7640
    assert sem.mode == 0o640
    sem.uid = sem.uid
    sem.gid = sem.gid
    sem.value = 7
    assert sem.value == 7
    sem.block = 0
    sem.undo = "yes"
    assert (sem.block, sem.undo) == (False, True)


@pytest.mark.parametrize(
    ("attribute", "value", "error", "message"),
    [
        ("value", 3.0, TypeError, "^Attribute 'value' must be an integer$"),
        ("value", 32768, ValueError, RANGE),
        ("value", -1, ValueError, RANGE),
        ("value", 2**32 + 5, ValueError, RANGE),
        ("value", 2**64, OverflowError, "too large to convert to C long"),
        ("mode", "x", TypeError, "^The attribute must be an integer$"),
        ("mode", 2**63, OverflowError, None),
        ("uid", -1, OverflowError, None),
        ("gid", 2**40, OverflowError, None),
    ],
)
def test_attribute_values_are_checked_before_any_syscall(sem, attribute, value, error, message):
    """Upstream wraps 2**32+5 to 5 (DC-12) and lets -1 / 2**63 reach the kernel (DC-13)."""
    with pytest.raises(error, match=message):
        setattr(sem, attribute, value)


def test_read_only_attributes_and_deletion(sem):
    with pytest.raises(AttributeError, match="^readonly attribute$"):
        sem.id = 1
    for name in ("key", "cuid", "cgid", "last_pid", "waiting_for_nonzero", "o_time"):
        with pytest.raises(
            AttributeError, match=f"^attribute '{name}' of 'sysv_ipc.Semaphore' objects"
        ):
            setattr(sem, name, 1)
    for name in ("value", "block", "undo", "mode", "uid", "gid"):
        with pytest.raises(AttributeError):  # upstream segfaults (DC-9)
            delattr(sem, name)


def test_failing_truthiness_propagates(sem):
    """Upstream ignores the exception (DC-14)."""

    class Untruthy:
        def __bool__(self):
            raise RuntimeError("no truth value")

    with pytest.raises(RuntimeError):
        sem.block = Untruthy()
    assert sem.block is True


def test_object_model(sem):
    with pytest.raises(TypeError, match="cannot pickle 'sysv_ipc.Semaphore' object"):
        pickle.dumps(sem)
    with pytest.raises(TypeError, match="cannot create weak reference"):
        weakref.ref(sem)
    bare = sysv_ipc.Semaphore.__new__(sysv_ipc.Semaphore)
    assert (bare.key, bare.id, bare.block, bare.undo) == (0, -1, True, False)
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        bare.remove()  # id -1 is nobody's semaphore (upstream: id 0, DC-19)


# ---- removal, threads, processes, signals ------------------------------------------------


def test_removed_semaphore(sem):
    sem.remove()
    for action in (lambda: sem.value, sem.acquire, sem.release, sem.remove, lambda: sem.mode):
        with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
            action()
    assert str(sem) and repr(sem)


def test_waiter_is_told_when_the_semaphore_is_removed(sem, spawn):
    child = spawn(
        "import sys, sysv_ipc\n"
        "s = sysv_ipc.Semaphore(int(sys.argv[1]))\n"
        "print('waiting', flush=True)\n"
        "try:\n"
        "    s.acquire(30)\n"
        "except sysv_ipc.ExistentialError as error:\n"
        "    print(error, flush=True)\n",
        str(sem.key),
    )
    assert child.read_line() == "waiting"
    while sem.waiting_for_nonzero == 0:  # the kernel's own count says the child is waiting
        threading.Event().wait(0.001)
    sem.remove()
    assert child.read_line() == "The semaphore was removed"
    assert child.finish() == 0


def test_undo_gives_back_what_a_killed_process_held(sem, spawn):
    sem.value = 3
    child = spawn(
        "import sys, sysv_ipc\n"
        "s = sysv_ipc.Semaphore(int(sys.argv[1]))\n"
        "s.undo = True\n"
        "s.acquire(); s.acquire()\n"
        "print('holding', s.value, flush=True)\n"
        "sys.stdin.readline()\n",
        str(sem.key),
    )
    assert child.read_line() == "holding 1"
    child.process.kill()
    assert child.process.wait() == -signal.SIGKILL
    assert sem.value == 3
    sem.acquire(5)


def test_without_undo_a_killed_process_keeps_its_units(sem, spawn):
    sem.value = 3
    child = spawn(
        "import sys, sysv_ipc\n"
        "s = sysv_ipc.Semaphore(int(sys.argv[1]))\n"
        "s.acquire()\n"
        "print('holding', flush=True)\n"
        "sys.stdin.readline()\n",
        str(sem.key),
    )
    assert child.read_line() == "holding"
    child.process.kill()
    child.process.wait()
    assert sem.value == 2


def test_signal_during_a_wait(sem):
    class Stop(Exception):
        pass

    def run(handler):
        previous = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        try:
            with pytest.raises(BaseException) as caught:
                sem.acquire()
            return caught.value
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, previous)

    quiet = run(lambda *_: None)
    assert type(quiet) is sysv_ipc.Error and quiet.args == ("Signaled while waiting",)

    def stop(*_):
        raise Stop

    raised = run(stop)  # the handler's exception alone, not chained to Error (DC-15)
    assert type(raised) is Stop and raised.__context__ is None

"""posix_ipc.Semaphore: constructor, waits, timeouts, signals, lifetime and cross-process use."""

import gc
import math
import pickle
import signal
import subprocess
import sys
import threading
import time
import weakref

import pytest

import posix_ipc

from .kernel_wait import wait_until_blocked

BAD_TIMEOUT = "^The timeout must be None or a non-negative number$"


@pytest.fixture
def sem(make_name):
    semaphore = posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX)
    yield semaphore
    try:
        semaphore.close()
    except posix_ipc.ExistentialError:
        pass


# ---- constructor -------------------------------------------------------------------------


def test_open_existing_without_flags_shares_the_value(sem):
    sem.release()
    copy = posix_ipc.Semaphore(sem.name)
    assert copy.name == sem.name and copy.value == 1
    copy.close()


def test_open_missing_without_flags_raises_existential_error(make_name):
    with pytest.raises(posix_ipc.ExistentialError, match="^No semaphore exists"):
        posix_ipc.Semaphore(make_name())


def test_o_creat_opens_existing_and_ignores_initial_value(sem):
    copy = posix_ipc.Semaphore(sem.name, posix_ipc.O_CREAT, initial_value=7)
    assert copy.value == 0
    copy.close()


def test_o_crex_on_existing_raises_existential_error(sem):
    with pytest.raises(posix_ipc.ExistentialError, match="already exists"):
        posix_ipc.Semaphore(sem.name, posix_ipc.O_CREX)


def test_all_parameters_accept_keywords(make_name):
    semaphore = posix_ipc.Semaphore(
        name=make_name(), flags=posix_ipc.O_CREX, mode=0o644, initial_value=3
    )
    assert (semaphore.value, semaphore.mode) == (3, 0o644)
    assert repr(semaphore) == f'posix_ipc.Semaphore("{semaphore.name}", mode=0644)'
    semaphore.unlink()
    semaphore.close()


def test_random_names_follow_the_upstream_format(track):
    for _ in range(20):
        semaphore = track(posix_ipc.Semaphore(None, posix_ipc.O_CREX))
        body = semaphore.name[1:]
        assert semaphore.name[0] == "/" and 5 <= len(body) <= 12
        assert body.isalpha() and body.islower() and body.isascii()


def test_bytes_names_open_the_same_object(make_name):
    name = make_name()
    semaphore = posix_ipc.Semaphore(name.encode(), posix_ipc.O_CREX, initial_value=2)
    assert semaphore.name == name
    assert posix_ipc.Semaphore(name).value == 2
    semaphore.close()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ((None,), ValueError, "^Name can only be None if O_EXCL is set$"),
        (("/x", posix_ipc.O_EXCL), ValueError, "^O_EXCL must be combined with O_CREAT$"),
        ((5,), TypeError, "^Name must be None or a string$"),
        ((bytearray(b"/x"),), TypeError, "^Name must be None or a string$"),
        (("/a\0b", posix_ipc.O_CREX), ValueError, "^embedded null byte$"),
        ((b"/a\0b", posix_ipc.O_CREX), ValueError, "^embedded null byte$"),
        (("/x", 1.5), TypeError, "integer"),
        ((), TypeError, r"^function missing required argument 'name' \(pos 1\)$"),
    ],
)
def test_constructor_rejects_bad_arguments_with_upstream_errors(arguments, error, message):
    with pytest.raises(error, match=message):
        posix_ipc.Semaphore(*arguments)


def test_initial_value_outside_the_c_range_is_refused_not_wrapped(make_name):
    with pytest.raises(ValueError, match=r"^Invalid parameter\(s\)$"):
        posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX, initial_value=-1)
    with pytest.raises(OverflowError):
        posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX, initial_value=2**32)
    with pytest.raises(ValueError, match=r"^Invalid parameter\(s\)$"):
        posix_ipc.Semaphore(
            make_name(), posix_ipc.O_CREX, initial_value=posix_ipc.SEMAPHORE_VALUE_MAX + 1
        )


def test_invalid_names_map_to_upstream_exceptions():
    with pytest.raises(ValueError, match=r"^Invalid parameter\(s\)$"):
        posix_ipc.Semaphore("/a/b", posix_ipc.O_CREX)
    with pytest.raises(ValueError):
        posix_ipc.Semaphore("/" + "x" * 300, posix_ipc.O_CREX)


# ---- acquire / release ---------------------------------------------------------------------


def test_acquire_zero_on_zero_raises_busy_error(sem):
    with pytest.raises(posix_ipc.BusyError, match="^Semaphore is busy$"):
        sem.acquire(0)
    sem.release()
    sem.acquire(0)
    assert sem.value == 0


@pytest.mark.parametrize("timeout", [0.05, 1 / 16])
def test_acquire_with_timeout_waits_at_least_that_long(sem, timeout):
    started = time.monotonic()
    with pytest.raises(posix_ipc.BusyError):
        sem.acquire(timeout=timeout)
    assert time.monotonic() - started >= timeout


def test_acquire_accepts_int_float_bool_and_float_subclasses(sem):
    class Seconds(float):
        pass

    for timeout in (0, 0.0, False, True, 2, Seconds(0.5), None):
        sem.release()
        sem.acquire(timeout)
    assert sem.value == 0


@pytest.mark.parametrize("timeout", [-1, -0.5, "1", 2**64, math.nan, -math.inf])
def test_acquire_rejects_bad_timeouts_with_type_error(sem, timeout):
    with pytest.raises(TypeError, match=BAD_TIMEOUT):
        sem.acquire(timeout)


def test_acquire_with_infinite_timeout_waits_until_released(sem, spawn):
    child = spawn(
        "import posix_ipc, sys; s = posix_ipc.Semaphore(sys.argv[1]); print('ready', flush=True);"
        "sys.stdin.readline(); s.release()",
        sem.name,
    )
    assert child.read_line() == "ready"
    child.send_line("go")
    sem.acquire(math.inf)
    assert child.finish() == 0


def test_acquire_keyword_and_argument_errors_match_upstream(sem):
    # CPython's own argument parser speaks (as in upstream's module); 3.13 reworded it.
    with pytest.raises(
        TypeError, match="invalid keyword argument|got an unexpected keyword argument 'seconds'"
    ):
        sem.acquire(seconds=1)
    with pytest.raises(TypeError, match=r"takes at most 1 argument \(2 given\)"):
        sem.acquire(1, 2)
    with pytest.raises(TypeError, match=r"^Semaphore.release\(\) takes no arguments \(1 given\)$"):
        sem.release(1)


def test_release_past_the_maximum_raises_os_error(make_name):
    top = posix_ipc.SEMAPHORE_VALUE_MAX
    semaphore = posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX, initial_value=top)
    with pytest.raises(OSError) as caught:
        semaphore.release()
    assert caught.value.errno == 75 and type(caught.value) is OSError
    semaphore.close()


def test_context_manager_acquires_and_releases(sem):
    sem.release()
    with sem as entered:
        assert entered is sem and sem.value == 0
    assert sem.value == 1
    assert sem.__exit__(1, 2, 3, 4, 5) is None and sem.value == 2


# ---- attributes and object model ---------------------------------------------------------


def test_attributes_are_read_only_with_upstream_messages(sem):
    for attribute in ("name", "mode"):
        with pytest.raises(AttributeError, match="^readonly attribute$"):
            setattr(sem, attribute, 1)
    with pytest.raises(AttributeError, match="attribute 'value' of 'posix_ipc.Semaphore'"):
        sem.value = 1


def test_str_and_repr(sem):
    assert str(sem) == sem.name
    assert repr(sem) == f'posix_ipc.Semaphore("{sem.name}", mode=0600)'


def test_negative_mode_shows_as_its_unsigned_value(make_name):
    semaphore = posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX, mode=0)
    assert repr(semaphore).endswith("mode=00)")
    semaphore.unlink()
    semaphore.close()
    with pytest.raises(OverflowError):
        posix_ipc.Semaphore("/x", mode=2**40)


def test_instances_cannot_be_pickled_or_weakly_referenced(sem):
    with pytest.raises(TypeError, match="cannot pickle 'posix_ipc.Semaphore' object"):
        pickle.dumps(sem)
    with pytest.raises(TypeError, match="cannot create weak reference"):
        weakref.ref(sem)
    assert not hasattr(sem, "__dict__")


def test_subclasses_work_and_keep_the_repr(make_name):
    class Counted(posix_ipc.Semaphore):
        pass

    semaphore = Counted(make_name(), posix_ipc.O_CREX, initial_value=1)
    semaphore.extra = "subclass instances have a __dict__"
    semaphore.acquire(0)
    assert repr(semaphore).startswith("posix_ipc.Semaphore(")
    semaphore.close()


def test_uninitialised_instance_behaves_like_a_closed_one():
    bare = posix_ipc.Semaphore.__new__(posix_ipc.Semaphore)
    assert str(bare) == "(no name)" and bare.name is None
    assert repr(bare) == 'posix_ipc.Semaphore("(no name)", mode=00)'
    for call in (bare.acquire, bare.release, bare.close, bare.unlink):
        with pytest.raises(posix_ipc.ExistentialError, match="^The semaphore has been closed$"):
            call()


# ---- close / unlink ----------------------------------------------------------------------


def test_closed_semaphore_refuses_every_operation(sem):
    sem.close()
    for call in (sem.acquire, sem.release, sem.close, sem.unlink, lambda: sem.value):
        with pytest.raises(posix_ipc.ExistentialError, match="^The semaphore has been closed$"):
            call()
    assert sem.name and repr(sem)


def test_unlinked_semaphore_keeps_working_until_closed(sem):
    sem.unlink()
    sem.release()
    sem.acquire(0)
    with pytest.raises(posix_ipc.ExistentialError, match="^No semaphore exists"):
        sem.unlink()


def mapped_semaphores():
    with open("/proc/self/maps") as maps:
        return maps.read()


def test_garbage_collected_semaphore_releases_its_mapping(make_name):
    name = make_name()
    posix_ipc.Semaphore(name, posix_ipc.O_CREX).close()
    semaphore = posix_ipc.Semaphore(name)  # mapped under its own name when opened
    assert f"sem.{name[1:]}" in mapped_semaphores()
    del semaphore
    gc.collect()
    assert f"sem.{name[1:]}" not in mapped_semaphores()


# ---- signals -------------------------------------------------------------------------------


def wait_interrupted_by_timer(sem, handler, timeout=None):
    """Blocks in acquire() while SIGALRM fires every 20 ms (so a signal that arrives before
    the wait starts is followed by one that interrupts it); returns what acquire raised."""
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        with pytest.raises(BaseException) as caught:
            sem.acquire(timeout)
        return caught.value
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)


def test_signal_with_quiet_handler_raises_signal_error(sem):
    error = wait_interrupted_by_timer(sem, lambda *_: None)
    assert type(error) is posix_ipc.SignalError
    assert error.args == ("The wait was interrupted by a signal",)
    error = wait_interrupted_by_timer(sem, lambda *_: None, timeout=30)
    assert type(error) is posix_ipc.SignalError


def test_handler_raising_keyboard_interrupt_wins(sem):
    def interrupt(*_):
        raise KeyboardInterrupt

    assert type(wait_interrupted_by_timer(sem, interrupt)) is KeyboardInterrupt


def test_handler_exception_propagates_instead_of_being_discarded(sem):
    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop

    assert type(wait_interrupted_by_timer(sem, stop)) is Stop


# ---- threads and processes ---------------------------------------------------------------


def test_close_while_another_thread_waits_does_not_crash(sem):
    outcome = []
    tid = []

    def waiter():
        tid.append(threading.get_native_id())
        try:
            sem.acquire(30)
            outcome.append("acquired")
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            outcome.append(error)

    thread = threading.Thread(target=waiter)
    thread.start()
    while not tid:
        time.sleep(0)
    # Proof that the waiter sleeps on this semaphore's futex word, not on the GIL.
    wait_until_blocked(tid[0], "futex", futex_in="/dev/shm/sem." + sem.name.lstrip("/"))
    sem.close()  # the waiter pins the handle: it is closed once the waiter returns
    other = posix_ipc.Semaphore(sem.name)
    other.release()
    thread.join(30)
    assert outcome == ["acquired"]
    other.close()


def test_value_released_in_one_process_is_acquired_in_another(sem, spawn):
    child = spawn(
        "import posix_ipc, sys\n"
        "s = posix_ipc.Semaphore(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "s.acquire(30)\n"
        "print('acquired', s.value, flush=True)\n",
        sem.name,
    )
    assert child.read_line() == "ready"
    sem.release()
    assert child.read_line() == "acquired 0"
    assert child.finish() == 0


def test_semaphore_held_by_a_killed_process_stays_taken(make_name, spawn):
    """POSIX semaphores have no undo: a holder killed by SIGKILL never releases (a kernel
    limitation, docs/compatibility.md); a bounded acquire reports BusyError, not a hang."""
    semaphore = posix_ipc.Semaphore(make_name(), posix_ipc.O_CREX, initial_value=1)
    child = spawn(
        "import posix_ipc, sys\n"
        "s = posix_ipc.Semaphore(sys.argv[1])\n"
        "s.acquire(0)\n"
        "print('holding', flush=True)\n"
        "sys.stdin.readline()\n",
        semaphore.name,
    )
    assert child.read_line() == "holding"
    child.process.kill()
    assert child.process.wait() == -signal.SIGKILL
    with pytest.raises(posix_ipc.BusyError):
        semaphore.acquire(0.1)
    semaphore.close()


def test_truncated_backing_file_raises_instead_of_sigbus(make_name):
    """glibc SIGBUSes on a zero-length /dev/shm/sem.* file (upstream #51); run in a child so
    a regression shows up as a signal exit, not as a dead test runner."""
    name = make_name()
    code = (
        "import posix_ipc, sys\n"
        "open('/dev/shm/sem.' + sys.argv[1][1:], 'wb').close()\n"
        "try:\n"
        "    posix_ipc.Semaphore(sys.argv[1]).release()\n"
        "except ValueError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result
    assert result.stdout.strip() == "ValueError Invalid parameter(s)"

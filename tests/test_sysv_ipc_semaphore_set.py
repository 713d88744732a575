"""sysv_ipc.SemaphoreSet (an ipcxx extension): construction, atomic op() over several members
(within one process and across contending processes), wait-for-zero, timeouts and block=False,
undo after SIGKILL, interoperation with sysv_ipc.Semaphore, live attributes and every argument
error."""

import os
import random
import signal
import threading
import time

import pytest

import sysv_ipc

BUSY = "^The semaphore is busy$"
MISSING = "^No semaphore exists with the specified key$"
RANGE = "^The semaphore's value must remain between 0 and SEMVMX$"
INDEX = "^semaphore index out of range$"


def fresh_key():
    return random.randint(100_000, 2**31 - 1)


@pytest.fixture
def make_set(sysv):
    def make(count=2, initial_value=0, **options):
        return sysv(
            sysv_ipc.SemaphoreSet(
                None, sysv_ipc.IPC_CREX, count=count, initial_value=initial_value, **options
            )
        )

    return make


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        threading.Event().wait(0.001)


# ---- constructor -------------------------------------------------------------------------


def test_random_key_count_and_initial_values(make_set):
    semaphores = make_set(count=3, initial_value=4)
    assert 1 <= semaphores.key <= 32766 and semaphores.id >= 0
    assert semaphores.count == 3
    assert semaphores.values == [4, 4, 4]
    assert [semaphores.value(i) for i in range(3)] == [4, 4, 4]
    assert str(semaphores) == f"Key={semaphores.key}, id={semaphores.id}"
    assert repr(semaphores) == f"sysv_ipc.SemaphoreSet({semaphores.key})"
    assert sysv_ipc.SEM_UNDO == 0x1000 and sysv_ipc.IPC_NOWAIT == 0o4000


def test_initial_value_is_set_only_when_the_call_creates_the_set(sysv):
    key = fresh_key()
    creator = sysv(sysv_ipc.SemaphoreSet(key, sysv_ipc.IPC_CREAT, count=2, initial_value=3))
    creator.set_value(1, 5)
    # Unlike Semaphore (whose IPC_CREAT resets an existing value: sysv DC-6), an existing set
    # keeps its values.
    opener = sysv_ipc.SemaphoreSet(key, sysv_ipc.IPC_CREAT, count=2, initial_value=9)
    assert opener.id == creator.id and opener.values == [3, 5]
    assert sysv_ipc.SemaphoreSet(key).values == [3, 5]


def test_count_is_the_kernels_member_count(make_set):
    semaphores = make_set(count=3)
    assert sysv_ipc.SemaphoreSet(semaphores.key).count == 3
    assert sysv_ipc.SemaphoreSet(semaphores.key, count=3).count == 3
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        sysv_ipc.SemaphoreSet(semaphores.key, count=4)  # more members than the set has (EINVAL)


def test_missing_and_existing_keys(make_set):
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        sysv_ipc.SemaphoreSet(fresh_key())
    semaphores = make_set()
    with pytest.raises(sysv_ipc.ExistentialError, match="already exists"):
        sysv_ipc.SemaphoreSet(semaphores.key, sysv_ipc.IPC_CREX)


@pytest.mark.parametrize(
    ("arguments", "options", "error", "message"),
    [
        ((None,), {}, ValueError, "^Key can only be None if IPC_EXCL is set$"),
        ((None, sysv_ipc.IPC_EXCL), {}, ValueError, "^IPC_EXCL must be combined with IPC_CREAT$"),
        (("x",), {}, TypeError, "^Key must be an integer or None$"),
        ((1.5,), {}, TypeError, "^Key must be an integer or None$"),
        ((None, sysv_ipc.IPC_CREX), {"count": 0}, ValueError, "^the count must be at least 1$"),
        ((None, sysv_ipc.IPC_CREX), {"count": -3}, ValueError, "^the count must be at least 1$"),
        ((None, sysv_ipc.IPC_CREX), {"count": 2**20}, ValueError, "SEMMSL"),
        ((None, sysv_ipc.IPC_CREX), {"count": 2**40}, OverflowError, None),
        ((None, sysv_ipc.IPC_CREX), {"count": 1.0}, TypeError, None),
        ((None, sysv_ipc.IPC_CREX), {"initial_value": 40000}, ValueError, RANGE),
        ((None, sysv_ipc.IPC_CREX), {"initial_value": -1}, ValueError, RANGE),
        ((), {}, TypeError, r"missing required argument 'key' \(pos 1\)"),
    ],
)
def test_constructor_rejects_bad_arguments(arguments, options, error, message):
    with pytest.raises(error, match=message):
        sysv_ipc.SemaphoreSet(*arguments, **options)


def test_a_failed_initial_value_leaves_nothing_behind():
    key = fresh_key()
    with pytest.raises(ValueError, match=RANGE):
        sysv_ipc.SemaphoreSet(key, sysv_ipc.IPC_CREX, count=2, initial_value=32768)
    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        sysv_ipc.SemaphoreSet(key)


# ---- op ----------------------------------------------------------------------------------


def test_op_applies_every_operation_or_none(make_set):
    semaphores = make_set(count=3)
    semaphores.set_value(0, 1)
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op([(0, -1), (1, -1)], block=False)
    assert semaphores.values == [1, 0, 0]  # member 0 was not taken
    semaphores.op([(1, 2), (2, 1, 0)])
    semaphores.op([(0, -1), (1, -1)])
    assert semaphores.values == [0, 1, 1]
    semaphores.op(((2, -1), (1, -1)), timeout=0)  # a tuple of tuples works too
    assert semaphores.values == [0, 0, 0]
    assert semaphores.last_pid(1) == os.getpid()


def test_timeouts_and_block_false_raise_busy_error(make_set):
    semaphores = make_set()
    take_both = [(0, -1), (1, -1)]
    for options in ({"timeout": 0}, {"timeout": 0.0}, {"block": False}, {"block": None}):
        with pytest.raises(sysv_ipc.BusyError, match=BUSY):
            semaphores.op(take_both, **options)
    started = time.monotonic()
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op(take_both, timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 5
    semaphores.set_value(1, 1)
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op(take_both, timeout=1, block=False)  # block trumps the timeout
    assert semaphores.values == [0, 1]


def test_a_waiting_op_proceeds_when_every_member_can(make_set):
    semaphores = make_set()
    done = threading.Event()

    def waiter():
        semaphores.op([(0, -1), (1, -1)], timeout=30)
        done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: semaphores.waiting_for_nonzero(0) == 1)
    semaphores.op([(0, 1)])
    assert not done.wait(0.05)  # one member is not enough
    assert semaphores.values[0] == 1
    semaphores.op([(1, 1)])
    thread.join(10)
    assert done.is_set() and semaphores.values == [0, 0]


def test_a_zero_delta_waits_until_the_member_is_zero(make_set):
    semaphores = make_set()
    semaphores.set_value(1, 1)
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op([(1, 0)], timeout=0)
    semaphores.op([(0, 0)], timeout=0)  # member 0 is zero
    thread = threading.Thread(target=lambda: semaphores.op([(1, 0)], timeout=30))
    thread.start()
    wait_until(lambda: semaphores.waiting_for_zero(1) == 1)
    assert semaphores.waiting_for_zero(0) == 0 and semaphores.waiting_for_nonzero(1) == 0
    semaphores.op([(1, -1)])
    thread.join(10)
    assert not thread.is_alive() and semaphores.waiting_for_zero(1) == 0


def test_per_operation_flags(make_set):
    semaphores = make_set()
    # IPC_NOWAIT on one operation ends a blocking op that this operation holds up.
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op([(0, -1, sysv_ipc.IPC_NOWAIT), (1, 1)])
    assert semaphores.values == [0, 0]
    semaphores.op([(0, 1, sysv_ipc.SEM_UNDO | sysv_ipc.IPC_NOWAIT), (1, 1, 0)])
    assert semaphores.values == [1, 1]


def test_cross_process_atomicity_under_contention(make_set, spawn):
    processes, rounds = 4, 1500
    # Members 0 and 1 always move together; member 2 counts the children that finished.
    semaphores = make_set(count=3, initial_value=2)
    semaphores.set_value(2, 0)
    code = (
        "import sys, sysv_ipc\n"
        "s = sysv_ipc.SemaphoreSet(int(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    s.op([(0, -1), (1, -1)])\n"
        "    s.op([(1, 1), (0, 1)])\n"
        "s.op([(2, 1)])\n"
    )
    children = [spawn(code, str(semaphores.key), str(rounds)) for _ in range(processes)]
    for child in children:
        assert child.read_line() == "ready"
    for child in children:
        child.send_line("go")
    observations = held = 0
    while True:
        first, second, finished = semaphores.values
        assert first == second, (first, second)
        assert 0 <= first <= 2
        observations += 1
        held += first < 2
        if finished == processes:
            break
    assert all(child.finish() == 0 for child in children)
    assert semaphores.values == [2, 2, processes]
    assert observations > 0
    print(f"{observations} observations, {held} while a child held units")


def test_undo_gives_back_what_a_killed_child_held(make_set, spawn):
    semaphores = make_set(count=2, initial_value=3)
    child = spawn(
        "import sys, sysv_ipc\n"
        "s = sysv_ipc.SemaphoreSet(int(sys.argv[1]))\n"
        "s.op([(0, -2), (1, -1)], undo=True)\n"
        "s.op([(1, -1, sysv_ipc.SEM_UNDO)])\n"
        "s.op([(0, -1)])\n"  # no undo: this unit stays taken
        "print('holding', s.values, flush=True)\n"
        "sys.stdin.readline()\n",
        str(semaphores.key),
    )
    assert child.read_line() == "holding [0, 1]"
    child.process.kill()
    assert child.process.wait() == -signal.SIGKILL
    assert semaphores.values == [2, 3]


def test_a_set_of_one_interoperates_with_semaphore(sysv):
    key = fresh_key()
    semaphores = sysv(sysv_ipc.SemaphoreSet(key, sysv_ipc.IPC_CREX, initial_value=2))
    semaphore = sysv_ipc.Semaphore(key)
    assert semaphore.id == semaphores.id
    semaphore.acquire()
    assert semaphores.values == [1]
    semaphores.op([(0, 4)])
    assert semaphore.value == 5
    semaphore.value = 0
    assert semaphores.value(0) == 0
    with pytest.raises(sysv_ipc.BusyError, match=BUSY):
        semaphores.op([(0, -1)], timeout=0)
    # And the other way round: a set opened from a Semaphore's key.
    other = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=7))
    assert sysv_ipc.SemaphoreSet(other.key).values == [7]


# ---- values and attributes ---------------------------------------------------------------


def test_values_are_live_and_set_value_sets_one_member(make_set):
    semaphores = make_set(count=3)
    snapshot = semaphores.values
    semaphores.set_value(2, 32767)
    semaphores.set_value(index=0, value=True)
    assert snapshot == [0, 0, 0]  # a new list each time
    assert semaphores.values == [1, 0, 32767]
    assert semaphores.last_pid(2) == os.getpid()  # Linux sets it on SETVAL


def test_mode_uid_gid_are_read_write_like_semaphore(make_set):
    semaphores = make_set(mode=0o640)
    assert semaphores.mode == 0o640
    semaphores.mode = 0o600
    assert semaphores.mode == 0o600
    assert semaphores.uid == semaphores.cuid == os.geteuid()
    assert semaphores.gid == semaphores.cgid == os.getgid()
    semaphores.uid = os.geteuid()
    semaphores.gid = os.getgid()
    with pytest.raises(TypeError, match="^The attribute must be an integer$"):
        semaphores.mode = "x"
    assert semaphores.o_time == 0
    semaphores.op([(0, 1)])
    assert abs(semaphores.o_time - time.time()) < 10


def test_read_only_attributes(make_set):
    semaphores = make_set()
    for name in ("key", "count", "values", "cuid", "cgid", "o_time"):
        with pytest.raises(AttributeError, match="not writable"):
            setattr(semaphores, name, 1)
    with pytest.raises(AttributeError, match="^readonly attribute$"):
        semaphores.id = 1


@pytest.mark.parametrize(
    ("operations", "options", "error", "message"),
    [
        ([], {}, ValueError, "^the operation list is empty$"),
        ((0, -1), {}, TypeError, "tuple"),
        ("ab", {}, TypeError, "list or tuple"),
        (None, {}, TypeError, "list or tuple"),
        ([0], {}, TypeError, "tuple"),
        ([[0, -1]], {}, TypeError, "tuple"),
        ([(0,)], {}, TypeError, "tuple"),
        ([(0, -1, 0, 0)], {}, TypeError, "tuple"),
        ([("0", -1)], {}, TypeError, None),
        ([(0.0, -1)], {}, TypeError, None),
        ([(-1, -1)], {}, IndexError, INDEX),
        ([(0, -1), (2, -1)], {}, IndexError, INDEX),
        ([(2**70, -1)], {}, IndexError, INDEX),
        ([(0, 40000)], {}, OverflowError, "^signed short integer is greater than maximum$"),
        ([(0, -40000)], {}, OverflowError, "^signed short integer is less than minimum$"),
        ([(0, 1.0)], {}, TypeError, None),
        ([(0, None)], {}, TypeError, None),
        ([(0, 1, sysv_ipc.IPC_CREAT)], {}, ValueError, "IPC_NOWAIT and SEM_UNDO"),
        ([(0, 1, "x")], {}, TypeError, None),
        ([(0, 1, 2**40)], {}, OverflowError, None),
        ([(0, 1)], {"timeout": -1}, TypeError, "^The timeout must be None or a non-negative"),
        ([(0, 1)], {"timeout": "1"}, TypeError, "^The timeout must be None or a non-negative"),
        ([(0, 1)], {"nope": 1}, TypeError, None),
    ],
)
def test_op_argument_errors_come_before_any_syscall(make_set, operations, options, error, message):
    semaphores = make_set()
    with pytest.raises(error, match=message):
        semaphores.op(operations, **options)
    assert semaphores.o_time == 0 and semaphores.values == [0, 0]


def test_member_method_argument_errors(make_set):
    semaphores = make_set()
    for method in (
        semaphores.value,
        semaphores.last_pid,
        semaphores.waiting_for_zero,
        semaphores.waiting_for_nonzero,
    ):
        with pytest.raises(IndexError, match=INDEX):
            method(2)
        with pytest.raises(IndexError, match=INDEX):
            method(-1)
        with pytest.raises(TypeError):
            method("0")
        with pytest.raises(TypeError):
            method()
    with pytest.raises(IndexError, match=INDEX):
        semaphores.set_value(2, 1)
    with pytest.raises(ValueError, match=RANGE):
        semaphores.set_value(0, 32768)
    with pytest.raises(ValueError, match=RANGE):
        semaphores.set_value(0, -1)
    with pytest.raises(TypeError, match="^The value must be an integer$"):
        semaphores.set_value(0, 1.5)
    assert semaphores.values == [0, 0]


def test_conversion_code_that_removes_the_set_gives_existential_error(make_set):
    semaphores = make_set()

    class Sneaky:
        def __index__(self):
            semaphores.remove()
            return 0

    with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
        semaphores.op([(Sneaky(), 1)])


# ---- removal -----------------------------------------------------------------------------


def test_after_remove(make_set):
    semaphores = make_set()
    key, ident = semaphores.key, semaphores.id
    semaphores.remove()
    for read in (
        lambda: semaphores.values,
        lambda: semaphores.value(0),
        lambda: semaphores.mode,
        lambda: semaphores.op([(0, 1)]),
        semaphores.remove,
    ):
        with pytest.raises(sysv_ipc.ExistentialError, match=MISSING):
            read()
    assert (semaphores.key, semaphores.id, semaphores.count) == (key, ident, 2)
    assert str(semaphores) == f"Key={key}, id={ident}"


def test_a_waiter_learns_of_removal(make_set):
    semaphores = make_set()
    outcome = []

    def waiter():
        try:
            semaphores.op([(0, -1), (1, -1)])
        except sysv_ipc.ExistentialError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: semaphores.waiting_for_nonzero(0) == 1)
    semaphores.remove()
    thread.join(10)
    assert outcome == ["The semaphore was removed"]


def test_a_signal_handler_exception_ends_a_wait(make_set):
    semaphores = make_set()

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Stop):
            semaphores.op([(0, -1)], timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert semaphores.values == [0, 0]

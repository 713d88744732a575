"""posix_ipc module surface: names, constants, exceptions and the unlink_* functions."""

import mmap
import os
import resource
import signal

import pytest

import posix_ipc

PUBLIC_NAMES = {
    "BusyError", "Error", "ExistentialError", "MESSAGE_QUEUES_SUPPORTED", "MessageQueue",
    "O_CREAT", "O_CREX", "O_EXCL", "O_NONBLOCK", "O_RDONLY", "O_RDWR", "O_TRUNC", "O_WRONLY",
    "PAGE_SIZE", "PermissionsError", "QUEUE_MESSAGES_MAX_DEFAULT",
    "QUEUE_MESSAGE_SIZE_MAX_DEFAULT", "QUEUE_PRIORITY_MAX", "SEMAPHORE_TIMEOUT_SUPPORTED",
    "SEMAPHORE_VALUE_MAX", "SEMAPHORE_VALUE_SUPPORTED", "Semaphore", "SharedMemory",
    "SignalError", "USER_SIGNAL_MAX", "USER_SIGNAL_MIN", "VERSION", "__author__",
    "__copyright__", "__license__", "__version__", "unlink_message_queue", "unlink_semaphore",
    "unlink_shared_memory",
}  # fmt: skip


def read_proc_number(path, fallback):
    try:
        with open(path) as file:
            return int(file.read())
    except OSError:
        return fallback


def test_module_exposes_every_upstream_public_name():
    assert PUBLIC_NAMES <= set(dir(posix_ipc))
    assert posix_ipc.__doc__ == "POSIX IPC module"


def test_open_flag_constants_equal_the_os_module_values():
    assert posix_ipc.O_CREAT == os.O_CREAT
    assert posix_ipc.O_EXCL == os.O_EXCL
    assert posix_ipc.O_CREX == os.O_CREAT | os.O_EXCL
    assert posix_ipc.O_TRUNC == os.O_TRUNC
    assert (posix_ipc.O_RDONLY, posix_ipc.O_WRONLY, posix_ipc.O_RDWR) == (
        os.O_RDONLY,
        os.O_WRONLY,
        os.O_RDWR,
    )
    assert posix_ipc.O_NONBLOCK == os.O_NONBLOCK


def test_system_constants_are_read_from_the_running_system():
    assert posix_ipc.PAGE_SIZE == resource.getpagesize() == mmap.PAGESIZE
    assert posix_ipc.SEMAPHORE_VALUE_MAX == os.sysconf("SC_SEM_VALUE_MAX")
    assert posix_ipc.QUEUE_MESSAGES_MAX_DEFAULT == read_proc_number(
        "/proc/sys/fs/mqueue/msg_max", 100
    )
    assert posix_ipc.QUEUE_MESSAGE_SIZE_MAX_DEFAULT == read_proc_number(
        "/proc/sys/fs/mqueue/msgsize_max", 8192
    )
    assert posix_ipc.QUEUE_PRIORITY_MAX == os.sysconf("SC_MQ_PRIO_MAX") - 1
    assert posix_ipc.USER_SIGNAL_MIN == signal.SIGRTMIN
    assert posix_ipc.USER_SIGNAL_MAX == signal.SIGRTMAX


def test_support_flags_are_the_true_singleton_on_linux():
    assert posix_ipc.SEMAPHORE_TIMEOUT_SUPPORTED is True
    assert posix_ipc.SEMAPHORE_VALUE_SUPPORTED is True
    assert posix_ipc.MESSAGE_QUEUES_SUPPORTED is True


def test_deprecated_constants_emit_no_warning(recwarn):
    assert posix_ipc.PAGE_SIZE > 0 and posix_ipc.SEMAPHORE_VALUE_MAX > 0
    assert len(recwarn) == 0


def test_metadata_reports_the_emulated_upstream_version():
    assert posix_ipc.VERSION == posix_ipc.__version__ == "1.3.2"
    assert posix_ipc.__author__ == "Philip Semanchuk"
    assert posix_ipc.__license__ == "BSD"
    assert posix_ipc.__copyright__ == "Copyright 2008 - 2025 Philip Semanchuk and contributors"


def test_exception_hierarchy_matches_upstream():
    assert issubclass(posix_ipc.Error, Exception)
    for name in ("SignalError", "PermissionsError", "ExistentialError", "BusyError"):
        cls = getattr(posix_ipc, name)
        assert cls.__bases__ == (posix_ipc.Error,)
        assert cls.__module__ == "posix_ipc" and cls.__qualname__ == name
    assert posix_ipc.PermissionsError is not PermissionError


def test_classes_live_in_the_posix_ipc_module():
    for cls in (posix_ipc.Semaphore, posix_ipc.SharedMemory, posix_ipc.MessageQueue):
        assert cls.__module__ == "posix_ipc"
        assert str(cls) == f"<class 'posix_ipc.{cls.__qualname__}'>"
    assert posix_ipc.Semaphore.__doc__ == "POSIX semaphore object"
    assert posix_ipc.SharedMemory.__doc__ == "POSIX shared memory object"
    assert posix_ipc.MessageQueue.__doc__ == "POSIX message queue object"


@pytest.mark.parametrize(
    ("unlink", "cls"),
    [
        (posix_ipc.unlink_semaphore, posix_ipc.Semaphore),
        (posix_ipc.unlink_shared_memory, posix_ipc.SharedMemory),
        (posix_ipc.unlink_message_queue, posix_ipc.MessageQueue),
    ],
)
def test_unlink_functions_remove_the_named_object(make_name, unlink, cls):
    name = make_name()
    obj = cls(name, posix_ipc.O_CREX)
    unlink(name)
    with pytest.raises(posix_ipc.ExistentialError):
        cls(name)
    with pytest.raises(posix_ipc.ExistentialError):
        unlink(name)
    getattr(obj, "close_fd", getattr(obj, "close", None))()


def test_unlink_functions_accept_bytes_names(make_name):
    name = make_name()
    posix_ipc.Semaphore(name, posix_ipc.O_CREX).close()
    posix_ipc.unlink_semaphore(name.encode())
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.Semaphore(name)


def test_unlink_functions_reject_bad_arguments_like_upstream():
    with pytest.raises(TypeError, match=r"^function takes exactly 1 argument \(0 given\)$"):
        posix_ipc.unlink_semaphore()
    with pytest.raises(TypeError, match=r"^unlink_semaphore\(\) takes no keyword arguments$"):
        posix_ipc.unlink_semaphore(name="/x")
    with pytest.raises(TypeError, match=r"^argument 1 must be str, not int$"):
        posix_ipc.unlink_shared_memory(3)
    with pytest.raises(ValueError, match="embedded null byte"):
        posix_ipc.unlink_message_queue("/a\0b")


def test_unlink_of_missing_names_raises_existential_error_with_upstream_messages():
    name = "/" + "ipcxx_missing_" + os.urandom(4).hex()
    with pytest.raises(posix_ipc.ExistentialError, match="^No semaphore exists"):
        posix_ipc.unlink_semaphore(name)
    with pytest.raises(posix_ipc.ExistentialError, match="^No shared memory exists"):
        posix_ipc.unlink_shared_memory(name)
    with pytest.raises(posix_ipc.ExistentialError, match="^No queue exists"):
        posix_ipc.unlink_message_queue(name)

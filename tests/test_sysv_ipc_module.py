"""sysv_ipc module surface: names, constants, exceptions, ftok, attach and remove_*."""

import numbers
import os
import resource
import warnings

import pytest

import sysv_ipc

PUBLIC_NAMES = {
    "BusyError", "Error", "ExistentialError", "IPC_CREAT", "IPC_CREX", "IPC_EXCL",
    "IPC_PRIVATE", "InternalError", "KEY_MAX", "KEY_MIN", "MessageQueue", "NotAttachedError",
    "PAGE_SIZE", "PermissionsError", "SEMAPHORE_TIMEOUT_SUPPORTED", "SEMAPHORE_VALUE_MAX",
    "SHM_HUGETLB", "SHM_NORESERVE", "SHM_RDONLY", "SHM_REMAP", "SHM_RND", "Semaphore",
    "SharedMemory", "VERSION", "__author__", "__copyright__", "__license__", "__version__",
    "attach", "ftok", "remove_message_queue", "remove_semaphore", "remove_shared_memory",
}  # fmt: skip

FTOK_WARNING = "Use of ftok() is not recommended; see sysv_ipc documentation"


def test_module_exposes_every_upstream_public_name():
    assert PUBLIC_NAMES <= set(dir(sysv_ipc))
    assert sysv_ipc.__doc__ == "SYSV IPC module"


def test_constants_have_the_linux_values():
    assert (sysv_ipc.IPC_CREAT, sysv_ipc.IPC_EXCL, sysv_ipc.IPC_PRIVATE) == (512, 1024, 0)
    assert sysv_ipc.IPC_CREX == sysv_ipc.IPC_CREAT | sysv_ipc.IPC_EXCL
    assert (sysv_ipc.KEY_MIN, sysv_ipc.KEY_MAX) == (-(2**63), 2**63 - 1)
    assert sysv_ipc.PAGE_SIZE == resource.getpagesize()
    assert sysv_ipc.SEMAPHORE_VALUE_MAX == 32767
    assert sysv_ipc.SEMAPHORE_TIMEOUT_SUPPORTED is True
    assert (sysv_ipc.SHM_RDONLY, sysv_ipc.SHM_RND, sysv_ipc.SHM_REMAP) == (4096, 8192, 16384)
    assert (sysv_ipc.SHM_HUGETLB, sysv_ipc.SHM_NORESERVE) == (2048, 4096)
    for name in PUBLIC_NAMES:
        value = getattr(sysv_ipc, name)
        if name.isupper() and not isinstance(value, (str, bool)):
            assert isinstance(value, numbers.Integral)


def test_metadata_reports_the_emulated_upstream_version():
    assert sysv_ipc.VERSION == sysv_ipc.__version__ == "1.2.0"
    assert sysv_ipc.__license__ == "BSD"
    assert sysv_ipc.__copyright__ == "Copyright 2008 - 2026, Philip Semanchuk and contributors"


def test_exception_hierarchy_matches_upstream():
    assert issubclass(sysv_ipc.Error, Exception)
    for name in (
        "InternalError",
        "PermissionsError",
        "ExistentialError",
        "BusyError",
        "NotAttachedError",
    ):
        cls = getattr(sysv_ipc, name)
        assert cls.__bases__ == (sysv_ipc.Error,)
        assert str(cls) == f"<class 'sysv_ipc.{name}'>"


def test_classes_live_in_the_sysv_ipc_module():
    for cls, doc in (
        (sysv_ipc.Semaphore, "System V semaphore object"),
        (sysv_ipc.SharedMemory, "System V shared memory object"),
        (sysv_ipc.MessageQueue, "System V message queue object"),
    ):
        assert str(cls) == f"<class 'sysv_ipc.{cls.__qualname__}'>"
        assert cls.__doc__ == doc


def test_ftok_warns_and_is_deterministic(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = sysv_ipc.ftok(str(tmp_path), 42)
    assert [(w.category, str(w.message)) for w in caught] == [(Warning, FTOK_WARNING)]
    assert sysv_ipc.ftok(str(tmp_path), 42, silence_warning=True) == first
    info = os.stat(tmp_path)
    expected = (42 << 24) | ((info.st_dev & 0xFF) << 16) | (info.st_ino & 0xFFFF)
    assert first == expected


def test_ftok_errors():
    with pytest.raises(FileNotFoundError):
        sysv_ipc.ftok("/no/such/path", 1, True)
    with pytest.raises(TypeError, match="must be str, not bytes"):
        sysv_ipc.ftok(b".", 1, True)
    with pytest.raises(ValueError, match="embedded null character"):
        sysv_ipc.ftok(".\0", 1, True)


def test_ftok_under_an_error_filter_raises_the_warning_without_a_system_error():
    """Upstream returns a value with the exception still set: SystemError (DC-8)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Warning, match="not recommended"):
            sysv_ipc.ftok(".", 1)


def test_remove_functions_remove_by_id(sysv):
    semaphore = sysv(sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX))
    memory = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX))
    queue = sysv(sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX))
    sysv_ipc.remove_semaphore(semaphore.id)
    sysv_ipc.remove_message_queue(queue.id)
    memory.detach()
    sysv_ipc.remove_shared_memory(memory.id)
    with pytest.raises(sysv_ipc.ExistentialError, match="^No semaphore exists"):
        semaphore.value
    with pytest.raises(sysv_ipc.ExistentialError, match="^The queue no longer exists$"):
        queue.current_messages
    with pytest.raises(sysv_ipc.ExistentialError, match=f"^No shared memory with id {memory.id}"):
        memory.size


def test_remove_functions_reject_bad_arguments_like_upstream():
    with pytest.raises(TypeError, match=r"^remove_semaphore\(\) takes no keyword arguments$"):
        sysv_ipc.remove_semaphore(id=1)
    with pytest.raises(OverflowError, match="signed integer is greater than maximum"):
        sysv_ipc.remove_semaphore(2**40)
    with pytest.raises(TypeError):
        sysv_ipc.remove_message_queue(1.5)
    with pytest.raises(sysv_ipc.ExistentialError, match="^No shared memory with id -1 exists$"):
        sysv_ipc.remove_shared_memory(-1)


def test_attach_by_id_gives_an_attached_object_with_key_minus_one(sysv):
    """Upstream leaves the key of such objects uninitialised (DC-18)."""
    memory = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX))
    memory.write(b"shared")
    other = sysv_ipc.attach(memory.id)
    assert other.key == -1 and other.id == memory.id and other.attached
    assert other.read(6) == b"shared"
    assert memory.number_attached == 2
    other.detach()
    readonly = sysv_ipc.attach(memory.id, flags=sysv_ipc.SHM_RDONLY)
    with pytest.raises(OSError, match="^Write attempt on read-only memory segment$"):
        readonly.write(b"x")
    readonly.detach()
    with pytest.raises(ValueError, match=r"^Invalid id, address, or flags$"):
        sysv_ipc.attach(-5)
    with pytest.raises(TypeError, match="^address must be a long$"):
        sysv_ipc.attach(memory.id, "here")


def test_deprecated_constants_emit_no_warning(recwarn):
    assert sysv_ipc.PAGE_SIZE > 0 and sysv_ipc.SEMAPHORE_VALUE_MAX == 32767
    assert len(recwarn) == 0

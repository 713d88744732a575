"""sysv_ipc.SharedMemory: creation and fill, read/write, the buffer protocol, attach/detach,
live attributes, removal and cross-process data."""

import ctypes
import os
import pickle
import random

import numpy
import pytest

import sysv_ipc


@pytest.fixture
def memory(sysv):
    return sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=3333))


def test_new_segment_is_attached_and_filled(sysv):
    segment = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX))
    assert segment.size == sysv_ipc.PAGE_SIZE
    assert set(segment.read()) == {ord(" ")}
    assert segment.attached and segment.address != 0
    assert segment.number_attached == 1
    assert segment.last_pid == segment.creator_pid == os.getpid()
    assert segment.last_detach_time == 0
    assert str(segment) == f"Key={segment.key}, id={segment.id}"
    assert repr(segment) == f"sysv_ipc.SharedMemory({segment.key})"


def test_init_character_and_exact_size(sysv):
    segment = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=3333, init_character=b"x"))
    assert segment.size == 3333 and segment.read() == b"x" * 3333
    with pytest.raises(TypeError, match="^argument 5 must be a byte string of length 1, not str$"):
        sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, init_character=" ")


def test_open_existing_segment_by_key(memory):
    memory.write(b"abc")
    other = sysv_ipc.SharedMemory(memory.key)
    assert other.id == memory.id and other.read(3) == b"abc"
    other.detach()
    with pytest.raises(ValueError, match="^The size is invalid$"):
        sysv_ipc.SharedMemory(memory.key, size=5000)
    with pytest.raises(sysv_ipc.ExistentialError, match=f"key {memory.key} already exists$"):
        sysv_ipc.SharedMemory(memory.key, sysv_ipc.IPC_CREX)


def test_size_values_outside_the_c_range_are_refused(sysv):
    """Upstream wraps -1 to 2**64-1 and 2**64 to 0 (DC-23)."""
    for size in (-1, 2**64):
        with pytest.raises(ValueError, match="^The size is invalid$"):
            sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=size)
    with pytest.raises(TypeError, match="^argument 4 must be int, not float$"):
        sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=1.5)


def test_read_and_write_with_offsets(memory):
    memory.write("hé", offset=10)
    assert memory.read(3, 10) == b"h\xc3\xa9"
    assert memory.read(offset=3330) == b"   "
    assert len(memory.read(10**6)) == 3333
    memory.write(b"", offset=3333)
    memory.write(s=b"k", offset=0)
    assert memory.read(1) == b"k"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.read(offset=m.size), "^The offset must be less than the segment size$"),
        (lambda m: m.read(offset=-1), "^The offset must be less than the segment size$"),
        (lambda m: m.read(offset=2**64), "^The offset must be less than the segment size$"),
        (lambda m: m.read(-1), "^The byte_count cannot be negative$"),
        (lambda m: m.write(b"a" * 3334), "^Attempt to write past end of memory segment$"),
        (lambda m: m.write(b"a", -1), "^Attempt to write past end of memory segment$"),
        (lambda m: m.write(b"a", 2**64), "^Attempt to write past end of memory segment$"),
    ],
)
def test_out_of_range_reads_and_writes(memory, call, message):
    with pytest.raises(ValueError, match=message):
        call(memory)


def test_write_accepts_buffers_and_rejects_other_types(memory):
    memory.write(bytearray(b"12"))
    memory.write(memoryview(b"34"), 2)
    memory.write(numpy.arange(3, dtype=numpy.uint8), 4)
    assert memory.read(7) == b"1234\x00\x01\x02"
    with pytest.raises(TypeError):
        memory.write(5)
    with pytest.raises(BufferError):
        memory.write(memoryview(b"abcdef")[::2])


def test_overlapping_write_from_a_view_of_the_segment(memory):
    """Upstream copies with memcpy, undefined for overlapping ranges (DC-22)."""
    memory.write(b"0123456789")
    with memoryview(memory) as view:
        memory.write(view[0:8], 2)
    assert memory.read(10) == b"0101234567"


def test_buffer_protocol(memory):
    with memoryview(memory) as view:
        assert (view.format, view.itemsize, view.ndim) == ("B", 1, 1)
        assert view.shape == (3333,) and view.strides == (1,)
        assert not view.readonly and view.c_contiguous and view.nbytes == 3333
        view[0:2] = b"AB"
    assert memory.read(2) == b"AB"
    memory.write(b"Z")
    assert bytes(memory)[:2] == b"ZB" and len(bytearray(memory)) == 3333
    array = numpy.frombuffer(memory, dtype=numpy.uint8)
    array[1] = ord("Y")
    assert memory.read(2) == b"ZY"
    del array


def test_detach_with_a_live_view_defers_the_unmap_to_the_last_release(memory):
    """Upstream unmaps under the view; the next access crashes (DC-1, revised: no BufferError).
    More cases in test_sysv_ipc_hardening_views.py."""
    view = memoryview(memory)
    memory.detach()
    assert not memory.attached and memory.address == 0
    view[0] = 1  # still mapped
    assert view[0] == 1 and memory.number_attached == 1
    view.release()
    assert memory.number_attached == 0


def test_read_only_attachment_exports_a_read_only_buffer(memory):
    """Upstream exports it writable, and writing kills the process (DC-2)."""
    memory.detach()
    memory.attach(flags=sysv_ipc.SHM_RDONLY)
    with memoryview(memory) as view:
        assert view.readonly
        with pytest.raises(TypeError):
            view[0] = 1
    with pytest.raises(OSError, match="^Write attempt on read-only memory segment$"):
        memory.write(b"x")
    assert memory.read(1) == b" "


def test_buffer_of_a_detached_segment_is_refused(memory):
    """Upstream exports a view of address 0 (DC-3)."""
    memory.detach()
    with pytest.raises(sysv_ipc.NotAttachedError):
        memoryview(memory)


def test_detached_segment(memory):
    memory.detach()
    with pytest.raises(sysv_ipc.NotAttachedError) as caught:
        memory.detach()
    assert str(caught.value) == ""
    with pytest.raises(sysv_ipc.NotAttachedError, match="^Read attempt on unattached"):
        memory.read()
    with pytest.raises(sysv_ipc.NotAttachedError, match="^Write attempt on unattached"):
        memory.write(b"x")
    assert memory.last_detach_time > 0
    memory.attach()
    assert memory.attached and memory.read(1) == b" "


def test_second_attach_adds_a_mapping(memory):
    first = memory.address
    memory.attach()
    assert memory.number_attached == 2 and memory.address != first
    memory.detach()
    assert memory.number_attached == 1  # upstream keeps the first mapping (DC-21, kept)
    assert ctypes.CDLL(None, use_errno=True).shmdt(ctypes.c_void_p(first)) == 0
    assert memory.number_attached == 0


def test_mode_without_write_permission_attaches_read_only(memory):
    reader = sysv_ipc.SharedMemory(memory.key, mode=0o400)
    with pytest.raises(OSError, match="read-only"):
        reader.write(b"x")
    reader.detach()


def test_writable_attributes_and_live_mode(memory):
    memory.mode = 0o640
    assert memory.mode == 0o640
    before = memory.last_change_time
    memory.uid = memory.uid
    assert memory.last_change_time >= before
    with pytest.raises(TypeError, match="^Attribute 'uid' must be an integer$"):
        memory.uid = "x"
    with pytest.raises(TypeError, match="^attribute 'gid' must be an integer$"):
        memory.gid = 1.5
    with pytest.raises(OverflowError):
        memory.uid = -1
    with pytest.raises(AttributeError, match="^readonly attribute$"):
        memory.id = 1
    with pytest.raises(AttributeError, match="attribute 'size' of 'sysv_ipc.SharedMemory'"):
        memory.size = 1
    with pytest.raises(AttributeError):
        del memory.uid
    memory.remove()
    assert memory.mode & 0o1000  # SHM_DEST while still attached


def test_removed_segment_lives_until_the_last_detach(memory):
    memory.remove()
    memory.write(b"still here")
    assert memory.read(10) == b"still here"
    with pytest.raises(sysv_ipc.ExistentialError, match="^No shared memory exists with the key"):
        sysv_ipc.SharedMemory(memory.key)
    segment_id = memory.id
    memory.detach()
    with pytest.raises(sysv_ipc.ExistentialError, match=f"^No shared memory with id {segment_id}"):
        memory.size


def test_object_model(memory):
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(memory)
    bare = sysv_ipc.SharedMemory.__new__(sysv_ipc.SharedMemory)
    assert (bare.key, bare.id, bare.attached) == (-1, -1, False)


def test_child_process_sees_and_changes_the_data(memory, spawn):
    memory.write(b"from parent")
    child = spawn(
        "import sys, sysv_ipc\n"
        "m = sysv_ipc.SharedMemory(int(sys.argv[1]))\n"
        "print(m.read(11).decode(), flush=True)\n"
        "m.write(b'from child!')\n"
        "m.detach()\n",
        str(memory.key),
    )
    assert child.read_line() == "from parent"
    assert child.finish() == 0
    assert memory.read(11) == b"from child!"


def test_fresh_key_with_ipc_creat(sysv):
    key = random.randint(100_000, 2**31 - 1)
    segment = sysv(sysv_ipc.SharedMemory(key, sysv_ipc.IPC_CREAT, size=100))
    assert segment.read(4) == b"\x00" * 4  # only IPC_CREX fills

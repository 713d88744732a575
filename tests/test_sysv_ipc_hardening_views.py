"""sysv_ipc.SharedMemory buffer views outlive detach() (DC-1 revised) and SHM_REMAP refuses to
replace memory under a live view (compatibility.md sysv "SHM_REMAP")."""

import ctypes
import gc

import numpy
import pytest

import sysv_ipc

libc = ctypes.CDLL(None, use_errno=True)
libc.shmdt.argtypes = [ctypes.c_void_p]


def mapped_ranges() -> list[tuple[int, int]]:
    """(start, end) of every mapping of this process."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = line.split()[0].split("-")
            ranges.append((int(start, 16), int(end, 16)))
    return ranges


def is_mapped(address: int) -> bool:
    return any(start <= address < end for start, end in mapped_ranges())


@pytest.fixture
def memory(sysv):
    return sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE))


def test_upstream_buffer_protocol_demo_steps_run_and_the_view_stays_usable(memory):
    """Upstream's demos/buffer_protocol: a view is taken, then detach() and remove(). Upstream
    unmaps under the view (SIGSEGV on the next access); here the unmap waits for the view."""
    alphabet = bytes(range(ord("a"), ord("a") + 26))
    memory.write(alphabet)
    copy = bytearray(memory).replace(b"c", b"x")
    assert copy[:4] == b"abxd" and memory.read(4) == b"abcd"
    view = memoryview(memory)
    assert bytes(view[3:6]) == b"def"
    view[4] = ord("x")
    memory.write(b"xxx")
    assert bytes(view[:6]) == b"xxxdxf"
    address, segment_id = memory.address, memory.id
    memory.detach()  # no BufferError any more
    memory.remove()
    assert not memory.attached and memory.address == 0
    # The view still reads and writes the segment, which lives on until the unmap.
    assert bytes(view[:6]) == b"xxxdxf"
    view[0:3] = b"ABC"
    assert bytes(view[:3]) == b"ABC"
    assert memory.number_attached == 1 and is_mapped(address)
    view.release()
    assert not is_mapped(address)  # shmdt ran at the last release: segment destroyed
    with pytest.raises(sysv_ipc.ExistentialError, match=f"^No shared memory with id {segment_id}"):
        memory.size


def test_detached_object_behaves_as_after_any_detach_while_its_views_live(memory):
    view = memoryview(memory)
    array = numpy.frombuffer(memory, dtype=numpy.uint8)  # a second export
    memory.detach()
    with pytest.raises(sysv_ipc.NotAttachedError):
        memory.detach()
    with pytest.raises(sysv_ipc.NotAttachedError, match="^Read attempt on unattached"):
        memory.read()
    with pytest.raises(sysv_ipc.NotAttachedError, match="^Write attempt on unattached"):
        memory.write(b"x")
    with pytest.raises(sysv_ipc.NotAttachedError):
        memoryview(memory)
    memory.attach()  # a new attachment, next to the deferred one
    assert memory.attached and memory.number_attached == 2
    memory.write(b"new")
    assert bytes(view[:3]) == b"new"  # same segment, other mapping
    array[0] = ord("N")
    assert memory.read(3) == b"New"
    view.release()
    assert memory.number_attached == 2  # numpy's export still holds the old mapping
    del array
    gc.collect()
    assert memory.number_attached == 1
    memory.detach()
    assert memory.number_attached == 0


def test_view_outlives_its_detached_and_dropped_object(sysv):
    memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE)
    observer = sysv(sysv_ipc.SharedMemory(memory.key))
    observer.detach()
    view = memoryview(memory)
    address = memory.address
    memory.detach()
    del memory
    gc.collect()
    view[0:4] = b"kept"
    assert observer.number_attached == 1 and is_mapped(address)
    observer.attach()
    assert observer.read(4) == b"kept"
    observer.detach()
    view.release()  # the last reference to the object goes with it
    gc.collect()
    assert observer.number_attached == 0 and not is_mapped(address)


def test_view_of_a_dropped_attached_object_keeps_the_mapping_like_upstream(sysv):
    """Views hold the object; collecting an attached object never detaches (DC-20, kept)."""
    memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE)
    observer = sysv(sysv_ipc.SharedMemory(memory.key))
    observer.detach()
    view = memoryview(memory)
    address = memory.address
    del memory
    gc.collect()
    view[0] = ord("v")
    view.release()
    gc.collect()
    assert observer.number_attached == 1 and is_mapped(address)
    assert libc.shmdt(address) == 0  # the test's own cleanup of the leaked mapping
    assert observer.number_attached == 0


def test_shm_remap_over_a_live_view_is_refused(memory, sysv):
    other = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE))
    memory.write(b"viewed")
    other.write(b"intruder")
    view = memoryview(memory)
    message = "^SHM_REMAP refused: a live attachment of this process uses that address range$"
    with pytest.raises(ValueError, match=message):
        other.attach(memory.address, sysv_ipc.SHM_REMAP)
    with pytest.raises(ValueError, match=message):
        sysv_ipc.attach(other.id, memory.address + 100, sysv_ipc.SHM_REMAP | sysv_ipc.SHM_RND)
    assert bytes(view[:6]) == b"viewed" and other.read(8) == b"intruder"
    assert other.attached and other.number_attached == 1  # the refused call changed nothing
    # A view kept after detach() still protects its range.
    address = memory.address
    memory.detach()
    with pytest.raises(ValueError, match=message):
        other.attach(address, sysv_ipc.SHM_REMAP)
    view.release()
    assert not is_mapped(address)


def test_shm_remap_over_a_live_attachment_without_views_is_refused(memory, sysv):
    """Two attachments at one address would let either's detach() unmap the other's memory
    (a view taken afterwards then dangles), so an attachment of ours is never remapped over."""
    other = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE))
    memory.write(b"original")
    other.detach()
    message = "^SHM_REMAP refused: a live attachment of this process uses that address range$"
    with pytest.raises(ValueError, match=message):
        other.attach(memory.address, sysv_ipc.SHM_REMAP)
    with pytest.raises(ValueError, match=message):
        sysv_ipc.attach(other.id, memory.address, sysv_ipc.SHM_REMAP)
    assert memory.read(8) == b"original" and not other.attached
    # Once detached, the range is free again and SHM_REMAP may use it.
    address = memory.address
    memory.detach()
    other.attach(address, sysv_ipc.SHM_REMAP)
    assert other.address == address
    other.detach()


def test_shm_remap_over_memory_that_is_no_attachment_is_allowed(sysv):
    """Kernel semantics over the user's own memory (like MAP_FIXED): a reserved range."""
    import ctypes
    import mmap

    segment = sysv(sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE))
    segment.write(b"replacement")
    reservation = mmap.mmap(-1, sysv_ipc.PAGE_SIZE)
    handle = ctypes.c_char.from_buffer(reservation)
    target = ctypes.addressof(handle)
    del handle
    remapped = sysv_ipc.attach(segment.id, target, sysv_ipc.SHM_REMAP)
    try:
        assert remapped.address == target and remapped.read(11) == b"replacement"
        assert segment.number_attached == 2
    finally:
        remapped.detach()  # unmaps `target`; the mmap object is closed without touching it
        reservation.close()
    assert not is_mapped(target)

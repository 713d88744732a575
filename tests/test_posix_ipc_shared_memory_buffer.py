"""posix_ipc.SharedMemory as a buffer (an ipcxx extension): memoryview, numpy and bytearray see
the segment through ipcxx's own mapping, which outlives close_fd(), unlink() and the object."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy
import pytest

import posix_ipc


def mapped_inodes() -> set[int]:
    with open("/proc/self/maps") as maps:
        return {int(fields[4]) for fields in map(str.split, maps) if len(fields) >= 5}


@pytest.fixture
def memory(make_name):
    segment = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX, size=4096)
    yield segment
    segment.close_fd()


def test_memoryview_is_writable_and_covers_the_segment(memory):
    view = memoryview(memory)
    assert (len(view), view.readonly, view.obj is memory) == (4096, False, True)
    view[:5] = b"hello"
    assert bytes(numpy.frombuffer(memory, dtype=numpy.uint8)[:5]) == b"hello"
    assert bytearray(memory)[:5] == b"hello"
    os.lseek(memory.fd, 0, os.SEEK_SET)
    assert os.read(memory.fd, 5) == b"hello"  # the same memory as the descriptor's


def test_read_only_segment_exports_a_read_only_buffer(memory):
    memoryview(memory)[:3] = b"abc"
    reader = posix_ipc.SharedMemory(memory.name, read_only=True)
    try:
        view = memoryview(reader)
        assert view.readonly and bytes(view[:3]) == b"abc"
        with pytest.raises(TypeError):
            view[0] = 1
        assert not numpy.frombuffer(reader, dtype=numpy.uint8).flags.writeable
    finally:
        reader.close_fd()


def test_views_stay_valid_after_close_fd_unlink_and_the_object_is_gone(make_name):
    segment = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX, size=8192)
    inode = os.fstat(segment.fd).st_ino
    view = memoryview(segment)
    array = numpy.frombuffer(segment, dtype=numpy.uint8)
    segment.close_fd()
    segment.unlink()
    view[100:103] = b"xyz"
    assert bytes(array[100:103]) == b"xyz"
    del segment
    gc.collect()
    assert bytes(view[100:103]) == b"xyz" and inode in mapped_inodes()
    view.release()
    del array
    gc.collect()
    assert inode not in mapped_inodes()  # unmapped with the object and its last view


def test_a_new_init_maps_the_new_segment_and_old_views_keep_the_old(make_name):
    first, second = make_name(), make_name()
    segment = posix_ipc.SharedMemory(first, posix_ipc.O_CREX, size=4096)
    old = memoryview(segment)
    old[:3] = b"old"
    segment.close_fd()
    segment.__init__(second, posix_ipc.O_CREX, size=100)
    new = memoryview(segment)
    assert len(new) == 100 and len(old) == 4096
    new[:3] = b"new"
    assert bytes(old[:3]) == b"old"
    segment.close_fd()
    posix_ipc.unlink_shared_memory(first)
    posix_ipc.unlink_shared_memory(second)


def test_the_view_size_is_the_size_at_mapping_time(memory):
    view = memoryview(memory)
    os.ftruncate(memory.fd, 8192)
    assert len(view) == 4096 and len(memoryview(memory)) == 4096  # one mapping per object
    other = posix_ipc.SharedMemory(memory.name)
    try:
        assert len(memoryview(other)) == 8192
    finally:
        other.close_fd()


def test_an_empty_segment_exports_an_empty_buffer(make_name):
    segment = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX)
    try:
        assert len(memoryview(segment)) == 0
    finally:
        segment.close_fd()


def test_export_after_close_fd_without_an_earlier_export_is_refused(memory):
    memory.close_fd()
    with pytest.raises(BufferError, match="no open descriptor"):
        memoryview(memory)


def test_another_process_sees_writes_through_its_own_view(memory):
    memoryview(memory)[:6] = b"parent"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, posix_ipc\n"
            "m = posix_ipc.SharedMemory(sys.argv[1])\n"
            "v = memoryview(m)\n"
            "assert bytes(v[:6]) == b'parent', bytes(v[:6])\n"
            "v[:5] = b'child'\n"
            "m.close_fd()\n",
            memory.name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert bytes(memoryview(memory)[:6]) == b"childt"

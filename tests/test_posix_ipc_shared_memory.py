"""posix_ipc.SharedMemory: constructor, sizes, descriptors, lifetime and cross-process data."""

import mmap
import os
import pickle

import pytest

import posix_ipc


@pytest.fixture
def memory(make_name):
    segment = posix_ipc.SharedMemory(make_name(), posix_ipc.O_CREX, size=3333)
    yield segment
    try:
        segment.close_fd()
    except ValueError:  # a test closed the descriptor itself
        pass


def test_new_segment_has_the_requested_size_and_defaults(memory):
    assert memory.size == 3333 and memory.mode == 0o600
    assert memory.fd == memory.fileno() >= 0
    assert str(memory) == memory.name
    assert repr(memory) == f'posix_ipc.SharedMemory("{memory.name}", mode=0600)'


def test_segment_without_size_is_empty(track):
    segment = track(posix_ipc.SharedMemory(None, posix_ipc.O_CREX))
    assert segment.size == 0


def test_open_existing_and_missing(memory, make_name):
    copy = posix_ipc.SharedMemory(memory.name)
    assert copy.size == 3333
    copy.close_fd()
    with pytest.raises(posix_ipc.ExistentialError, match="^No shared memory exists"):
        posix_ipc.SharedMemory(make_name())
    with pytest.raises(posix_ipc.ExistentialError, match="already exists"):
        posix_ipc.SharedMemory(memory.name, posix_ipc.O_CREX)


def test_size_resizes_an_existing_segment_and_o_trunc_empties_it(memory):
    grown = posix_ipc.SharedMemory(memory.name, size=8192)
    assert memory.size == 8192
    emptied = posix_ipc.SharedMemory(memory.name, posix_ipc.O_TRUNC)
    assert memory.size == 0
    grown.close_fd()
    emptied.close_fd()


def test_size_is_read_live(memory):
    os.ftruncate(memory.fd, 100)
    assert memory.size == 100


def test_data_written_through_one_mapping_is_seen_by_another_process(memory, spawn):
    view = mmap.mmap(memory.fd, memory.size)
    view[:5] = b"hello"
    child = spawn(
        "import mmap, posix_ipc, sys\n"
        "m = posix_ipc.SharedMemory(sys.argv[1])\n"
        "v = mmap.mmap(m.fd, m.size)\n"
        "print(bytes(v[:5]).decode(), flush=True)\n"
        "v[:5] = b'world'\n"
        "v.close(); m.close_fd()\n",
        memory.name,
    )
    assert child.read_line() == "hello"
    assert child.finish() == 0
    assert view[:5] == b"world"
    view.close()


def test_read_only_segment_maps_read_only(memory):
    reader = posix_ipc.SharedMemory(memory.name, read_only=True)
    view = mmap.mmap(reader.fd, reader.size, prot=mmap.PROT_READ)
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(PermissionError):
        mmap.mmap(reader.fd, reader.size)
    view.close()
    reader.close_fd()


def test_failed_resize_of_an_existing_segment_keeps_it(memory):
    """Upstream unlinks a pre-existing segment when ftruncate fails (DC-7)."""
    with pytest.raises(ValueError, match="^The size is invalid or the memory is read-only$"):
        posix_ipc.SharedMemory(memory.name, read_only=True, size=4096)
    posix_ipc.SharedMemory(memory.name).close_fd()  # still there


def test_close_fd_is_idempotent_and_leaves_mappings_valid(memory):
    view = mmap.mmap(memory.fd, memory.size)
    memory.close_fd()
    assert memory.fd == memory.fileno() == -1
    memory.close_fd()
    view[:3] = b"abc"
    assert view[:3] == b"abc"
    view.close()
    with pytest.raises(posix_ipc.ExistentialError, match="^The segment does not exist$"):
        memory.size


def test_close_fd_after_the_user_closed_the_descriptor_raises_value_error(memory):
    number = memory.fd
    os.close(number)
    with pytest.raises(ValueError, match="^The file descriptor is invalid$"):
        memory.close_fd()
    assert memory.fd == number


def test_unlink_works_with_the_descriptor_open_or_closed(memory):
    memory.unlink()
    with pytest.raises(posix_ipc.ExistentialError, match="^No shared memory exists"):
        memory.unlink()
    assert memory.size == 3333


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"size": -1}, ValueError, "^The size is invalid or the memory is read-only$"),
        ({"size": 1.5}, TypeError, "^argument 4 must be int, not float$"),
        ({"flags": -1}, ValueError, r"^Invalid parameter\(s\)$"),
        ({"flags": 2**32}, OverflowError, "unsigned int"),
        ({"mode": 2**40}, OverflowError, None),
    ],
)
def test_constructor_rejects_bad_numbers_without_wrapping(make_name, keywords, error, message):
    name = make_name()
    with pytest.raises(error, match=message):
        posix_ipc.SharedMemory(name, **{"flags": posix_ipc.O_CREX, **keywords})
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.SharedMemory(name)  # nothing was created


def test_attributes_are_read_only(memory):
    for attribute in ("name", "mode", "fd"):
        with pytest.raises(AttributeError, match="^readonly attribute$"):
            setattr(memory, attribute, 1)
    with pytest.raises(AttributeError, match="attribute 'size' of 'posix_ipc.SharedMemory'"):
        memory.size = 1


def test_object_model(memory):
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(memory)
    bare = posix_ipc.SharedMemory.__new__(posix_ipc.SharedMemory)
    assert (str(bare), bare.name, bare.fd) == ("(no name)", None, -1)
    bare.close_fd()  # the handle is -1, so nothing (not stdin) is closed
    assert repr(bare) == 'posix_ipc.SharedMemory("(no name)", mode=00)'


def test_garbage_collection_leaves_the_public_descriptor_open(make_name):
    name = make_name()
    number = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=4096).fd
    os.fstat(number)  # still open after the object is gone, as upstream documents
    view = mmap.mmap(number, 4096)
    view.close()
    os.close(number)

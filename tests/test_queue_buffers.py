"""Objects with pickle protocol 5 out-of-band buffers go into the ring as raw bytes beside the
pickle stream, and objects larger than the ring go through side segments (issue 18 item 4);
dumps/loads are replaceable."""

from __future__ import annotations

import multiprocessing
import os
import pickle

import numpy
import pytest

import ipcxx
from ipcxx.queues import _framing


def _arrays():
    rng = numpy.random.default_rng(18)
    return [
        rng.standard_normal((256, 1024)).astype(numpy.float32),  # 1 MiB
        numpy.asfortranarray(rng.integers(0, 1 << 60, (33, 17), dtype=numpy.int64)),
        rng.integers(0, 255, 7, dtype=numpy.uint8),
        numpy.arange(100.0)[::3],  # not contiguous: pickled in band
        numpy.zeros(0, dtype=numpy.complex128),
    ]


def test_arrays_and_buffers_arrive_byte_for_byte_and_writable(make_queue):
    queue = make_queue()
    objects = [
        *_arrays(),
        pickle.PickleBuffer(bytearray(b"pb" * 5000)),
        bytes(range(256)) * 100,
        bytearray(b"ba" * 3000),
        {"nested": [numpy.ones(1000, dtype=numpy.int16), b"tail"]},
    ]
    for obj in objects:
        queue.put(obj)
    for expected in objects:
        got = queue.get(timeout=10)
        if isinstance(expected, numpy.ndarray):
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert got.tobytes(order="A") == expected.tobytes(order="A")
            if expected.ndim == 2:
                assert got.flags.f_contiguous == expected.flags.f_contiguous
            assert got.size == 0 or got.flags.writeable
        elif isinstance(expected, pickle.PickleBuffer):
            assert bytes(got) == bytes(expected.raw())
        elif isinstance(expected, dict):
            assert bytes(got["nested"][0].data) == bytes(expected["nested"][0].data)
            assert got["nested"][1] == b"tail"
        else:
            assert got == expected and type(got) is type(expected)


def test_an_array_is_written_out_of_band_beside_the_pickle_stream(make_queue):
    queue = make_queue()
    array = numpy.arange(4096, dtype=numpy.float64)
    queue.put(array)
    with queue._channel.peek(timeout=10) as view:
        message = bytes(view)
    queue._taken()
    assert message[0] == _framing.BUFFERS
    raw = array.tobytes()
    offset = message.index(raw)
    assert offset % _framing.ALIGN == 0
    assert len(message) - offset - len(raw) < _framing.ALIGN  # the array is the last part
    assert len(message) < len(raw) + 256  # no second copy in the pickle stream


def _check_large(queue, results):
    expected = numpy.arange(10 << 18, dtype=numpy.float32)
    array = queue.get(timeout=60)
    text = queue.get(timeout=60)
    results.send(
        (
            bool(numpy.array_equal(array, expected)),
            bool(array.flags.writeable),
            text == "z" * (6 << 20),
        )
    )


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_objects_larger_than_the_ring_go_through_side_segments(make_queue, method):
    queue = make_queue(ipcxx.Queue, 0, capacity=1 << 16)
    context = multiprocessing.get_context(method)
    results_read, results_write = context.Pipe(duplex=False)
    consumer = context.Process(target=_check_large, args=(queue, results_write))
    consumer.start()
    try:
        queue.put(numpy.arange(10 << 18, dtype=numpy.float32))  # 10 MiB, out of band
        queue.put("z" * (6 << 20))  # 6 MiB in the pickle stream
        assert results_read.poll(60)
        assert results_read.recv() == (True, True, True)
    finally:
        consumer.join(30)
        if consumer.exitcode is None:
            consumer.kill()
            consumer.join()
    prefix = queue.name[1:] + ".L"
    assert not [entry for entry in os.listdir("/dev/shm") if entry.startswith(prefix)]


def test_unlink_removes_side_segments_nobody_took(make_queue):
    queue = make_queue(ipcxx.Queue, 0, capacity=1 << 16)
    queue.put(b"q" * (1 << 20))
    prefix = queue.name[1:] + ".L"
    assert len([entry for entry in os.listdir("/dev/shm") if entry.startswith(prefix)]) == 1
    queue.unlink()
    assert not [entry for entry in os.listdir("/dev/shm") if entry.startswith(prefix)]


def _dumps(obj):
    return b"custom:" + repr(obj).encode()


def _loads(data):
    assert isinstance(data, memoryview)
    text = bytes(data).decode()
    assert text.startswith("custom:")
    return eval(text[len("custom:") :])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dumps_and_loads_are_replaceable_and_travel_with_the_queue(make_queue, method):
    queue = make_queue(ipcxx.Queue, 0, dumps=_dumps, loads=_loads)
    context = multiprocessing.get_context(method)
    from tests import queue_workers

    results_read, results_write = context.Pipe(duplex=False)
    consumer = context.Process(target=queue_workers.consume, args=(queue, 3, results_write))
    consumer.start()
    try:
        queue.put({"a": 1})
        queue.put([1, 2, 3])
        queue.put("x" * 100_000)
        assert results_read.poll(60)
        assert results_read.recv() == [{"a": 1}, [1, 2, 3], "x" * 100_000]
    finally:
        consumer.join(30)
        if consumer.exitcode is None:
            consumer.kill()
            consumer.join()

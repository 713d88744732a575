"""numpy arrays (and the other buffers) passed to every ipcxx method that takes a buffer, checked
with `mypy --strict` on every supported Python: numpy declares `__buffer__` only from 3.12 on."""

import array
import asyncio
import mmap

import numpy
import numpy.typing

import ipcxx
import posix_ipc
import sysv_ipc


def posix(frame: numpy.typing.NDArray[numpy.uint8], name: str) -> int:
    segment = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=posix_ipc.PAGE_SIZE)
    view = memoryview(segment)
    # numpy.frombuffer(segment) runs too, but numpy's stubs accept any buffer there only from
    # Python 3.12 on (before, a fixed list of types): through a memoryview it checks everywhere.
    numbers = numpy.frombuffer(view, dtype=numpy.uint32)
    queue = posix_ipc.MessageQueue(None, posix_ipc.O_CREX, max_message_size=frame.nbytes)
    queue.send(frame, priority=1)
    queue.send(numbers[:2])
    queue.send(array.array("B", b"ab"))
    size, priority = queue.receive_into(frame, timeout=0)
    size += queue.receive_into(segment)[0]
    size += queue.receive_into(view[: queue.max_message_size])[0]
    asyncio.run(queue.send_async(frame, timeout=1))
    queue.close()
    queue.unlink()
    segment.close_fd()
    segment.unlink()
    return size + priority + int(numbers[0])


def sysv(frame: numpy.typing.NDArray[numpy.float64]) -> int:
    memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=frame.nbytes)
    memory.write(frame)
    memory.write(memoryview(memory)[:8], offset=8)
    numbers = numpy.frombuffer(memoryview(memory), dtype=numpy.float64)
    queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX)
    queue.send(frame, type=2)
    queue.send(numbers, block=False)
    size, kind = queue.receive_into(frame)
    size += queue.receive_into(memory, type=-5)[0]
    asyncio.run(queue.send_async(frame[1:], type=3))
    with mmap.mmap(-1, 4096) as mapped:
        size += queue.receive_into(mapped)[0]
    memory.detach()
    memory.remove()
    queue.remove()
    return size + kind


def channel(frames: list[numpy.typing.NDArray[numpy.int32]]) -> int:
    with ipcxx.Channel(None, create=True) as ring:
        ring.send(frames[0])
        ring.send(frames[0].view(numpy.uint8), timeout=0)
        sent = ring.send_many(frames)
        sent += ring.send_many([frames[0], b"bytes", bytearray(2), memoryview(b"m")])
        received = ring.receive_into(frames[1])
        with ring.reserve(frames[0].nbytes) as view:
            numpy.frombuffer(view, dtype=numpy.int32)[:] = frames[0]
        with ring.peek() as view:
            received += len(numpy.frombuffer(view, dtype=numpy.int32))
        held = ring.peek()  # the view object itself is a buffer too
        with held:
            received += len(memoryview(held))
        ring.unlink()
        return sent + received

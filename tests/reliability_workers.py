"""Child-process bodies for the reliability tests (run through multiprocessing's fork context).
Each returns normally on success; the parent checks exit codes and results."""

from __future__ import annotations

import struct
import zlib

import posix_ipc
import sysv_ipc

RECORD = struct.Struct("=IIQ")  # producer, sequence, checksum


def count_with_posix(semaphore_name: str, memory_name: str, iterations: int) -> None:
    import mmap

    semaphore = posix_ipc.Semaphore(semaphore_name)
    memory = posix_ipc.SharedMemory(memory_name)
    view = mmap.mmap(memory.fd, 8)
    memory.close_fd()
    counter = memoryview(view).cast("Q")
    for _ in range(iterations):
        semaphore.acquire()
        counter[0] += 1  # a read-modify-write that loses updates without the lock
        semaphore.release()
    counter.release()
    view.close()
    semaphore.close()


def count_with_sysv(semaphore_key: int, memory_key: int, iterations: int) -> None:
    semaphore = sysv_ipc.Semaphore(semaphore_key)
    memory = sysv_ipc.SharedMemory(memory_key)
    with memoryview(memory) as view:
        counter = view.cast("Q")
        for _ in range(iterations):
            semaphore.acquire()
            counter[0] += 1
            semaphore.release()
        counter.release()
    memory.detach()


def record(producer: int, sequence: int) -> bytes:
    body = struct.pack("=II", producer, sequence)
    return RECORD.pack(producer, sequence, zlib.crc32(body))


def check(message: bytes) -> tuple[int, int]:
    producer, sequence, checksum = RECORD.unpack(message)
    if zlib.crc32(struct.pack("=II", producer, sequence)) != checksum:
        raise ValueError(f"corrupt message {message!r}")
    return producer, sequence


def produce_posix(queue_name: str, producer: int, count: int) -> None:
    queue = posix_ipc.MessageQueue(queue_name)
    for sequence in range(count):
        # Priorities 1..3; FIFO holds within each priority.
        queue.send(record(producer, sequence), priority=1 + sequence % 3)
    queue.close()


def consume_posix(queue_name: str, results) -> None:
    queue = posix_ipc.MessageQueue(queue_name)
    received = []
    while True:
        message, priority = queue.receive(60)
        if priority == 0:  # the end marker, sent after every producer finished
            break
        producer, sequence = check(message)
        if 1 + sequence % 3 != priority:
            raise ValueError("priority does not match the message")
        received.append((producer, sequence))
    queue.close()
    results.put(received)


def produce_sysv(queue_key: int, producer: int, count: int, consumers: int) -> None:
    queue = sysv_ipc.MessageQueue(queue_key, max_message_size=64)
    for sequence in range(count):
        queue.send(record(producer, sequence), type=1 + sequence % consumers)


def consume_sysv(queue_key: int, kind: int, results) -> None:
    queue = sysv_ipc.MessageQueue(queue_key, max_message_size=64)
    received = []
    while True:
        message, received_type = queue.receive(type=kind)
        if received_type != kind:
            raise ValueError("type selection failed")
        if message == b"end":
            break
        received.append(check(message))
    results.put(received)


def hold_with_undo(semaphore_key: int, memory_key: int) -> None:
    """Cycles acquire/release with SEM_UNDO, counting iterations in shared memory while it
    holds the semaphore; the parent kills it once the count reaches a random target."""
    semaphore = sysv_ipc.Semaphore(semaphore_key)
    semaphore.undo = True
    memory = sysv_ipc.SharedMemory(memory_key)
    view = memoryview(memory).cast("Q")
    while True:
        semaphore.acquire()
        view[0] += 1
        semaphore.release()

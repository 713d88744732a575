"""A typical posix_ipc program, checked with `mypy --strict` against the shipped stubs."""

import mmap

import posix_ipc


def exchange(name: str) -> bytes:
    semaphore = posix_ipc.Semaphore(None, posix_ipc.O_CREX, initial_value=1)
    with semaphore as held:
        assert held.value == 0
    semaphore.acquire(timeout=0.5)
    semaphore.release()
    semaphore.unlink()
    semaphore.close()

    memory = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=posix_ipc.PAGE_SIZE)
    view = mmap.mmap(memory.fd, memory.size)
    memory.close_fd()
    view[:2] = b"ok"
    view.close()
    posix_ipc.unlink_shared_memory(memory.name)

    queue = posix_ipc.MessageQueue(None, posix_ipc.O_CREX, max_messages=2)
    queue.block = False
    queue.send("text", timeout=0, priority=posix_ipc.QUEUE_PRIORITY_MAX)
    queue.request_notification((print, "arrived"))
    queue.request_notification(None)
    message, priority = queue.receive(0)
    fd: int = queue.fileno()
    queue.close()
    queue.unlink()
    try:
        posix_ipc.unlink_message_queue(queue.name)
    except posix_ipc.ExistentialError:
        pass
    return message + bytes([priority % 256, fd % 256])

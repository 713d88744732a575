"""A typical sysv_ipc program, checked with `mypy --strict` against the shipped stubs."""

import sysv_ipc


def exchange() -> bytes:
    semaphore = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1)
    semaphore.undo = True
    with semaphore:
        semaphore.block = False
    semaphore.acquire(timeout=0.5, delta=1)
    semaphore.release()
    semaphore.value = 2
    waiting: int = semaphore.waiting_for_nonzero
    semaphore.remove()

    memory = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=sysv_ipc.PAGE_SIZE)
    memory.write("text", offset=2)
    view = memoryview(memory)
    view[0] = 65
    view.release()
    data = memory.read(4) + bytes(memory)[:2]
    memory.detach()
    memory.remove()
    other = sysv_ipc.attach(memory.id) if memory.attached else None
    if other is not None:
        other.detach()

    queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=64)
    queue.send(b"payload", block=False, type=3)
    message, kind = queue.receive(type=-5)
    queue.max_size = 1024
    sysv_ipc.remove_message_queue(queue.id)
    key = sysv_ipc.ftok(".", 1, silence_warning=True)
    return data + message + bytes([kind, waiting % 256, key % 256])

"""asyncio waits for posix_ipc and sysv_ipc objects (the *_async methods; docs/guide.md).

posix_ipc and sysv_ipc attach the methods to their classes at import through
`ipcxx.aio.posix.install` and `ipcxx.aio.sysv.install`; nothing here needs importing directly.

How each object waits, and why:

- POSIX message queues: on their descriptor through the event loop (`mq.mqd` is pollable on
  Linux), then a non-blocking call inside the awaiting task. No thread.
- Semaphores (both kinds): in `ipcxx.aio.pool`, a fixed pool of at most `POOL_THREADS` daemon
  threads that wait in slices of `SLICE_SECONDS`, for any number of pending waits.
- System V message queues: `msgrcv`/`msgsnd` cannot wait with a timeout, so a thread could only
  poll them too; they poll from the awaiting task itself with a capped backoff
  (`ipcxx.aio.waits.POLL_MAX_SECONDS`). No thread.

The modules that import asyncio and threading load when a method is first awaited, so that
`import posix_ipc` stays as fast as before (asyncio alone takes about 40 ms to import).
"""

"""Two processes take turns through a pair of posix_ipc semaphores and report the round trip."""

import os
import sys
import time

import posix_ipc

ROUNDS = 1000


def main() -> int:
    ping = posix_ipc.Semaphore(None, posix_ipc.O_CREX)
    pong = posix_ipc.Semaphore(None, posix_ipc.O_CREX)
    try:
        child = os.fork()
        if child == 0:
            for _ in range(ROUNDS):
                ping.acquire(10)
                pong.release()
            os._exit(0)
        started = time.perf_counter()
        for _ in range(ROUNDS):
            ping.release()
            pong.acquire(10)
        elapsed = time.perf_counter() - started
        _, status = os.waitpid(child, 0)
        print(f"{ROUNDS} round trips, {elapsed / ROUNDS * 1e6:.1f} us each")
        return os.waitstatus_to_exitcode(status)
    finally:
        for semaphore in (ping, pong):
            semaphore.unlink()
            semaphore.close()


if __name__ == "__main__":
    sys.exit(main())

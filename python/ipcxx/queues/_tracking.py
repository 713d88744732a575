"""Anonymous queues' objects registered with multiprocessing's resource tracker, which removes
them when every process of the tree that shares the tracker has exited or been killed."""

from __future__ import annotations

from multiprocessing import resource_tracker


def register_memory(name: str) -> None:
    resource_tracker.register(name, "shared_memory")


def unregister_memory(name: str) -> None:
    resource_tracker.unregister(name, "shared_memory")


def register_semaphore(name: str) -> None:
    resource_tracker.register(name, "semaphore")


def unregister_semaphore(name: str) -> None:
    resource_tracker.unregister(name, "semaphore")

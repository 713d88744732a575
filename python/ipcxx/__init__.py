"""ipcxx: POSIX and System V IPC on a C++20 core; see `python -m ipcxx demo`."""

__version__ = "0.1.0"

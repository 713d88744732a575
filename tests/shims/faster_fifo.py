"""`faster_fifo` for faster-fifo's own test suite run against ipcxx (scripts/faster_fifo_tests.py
puts this folder first on sys.path): every name comes from ipcxx.compat.faster_fifo."""

from ipcxx.compat.faster_fifo import *  # noqa: F403
from ipcxx.compat.faster_fifo import __all__ as __all__

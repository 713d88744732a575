"""Inspection command line of ipcxx: `python -m ipcxx ls | stat | rm` over every IPC object."""

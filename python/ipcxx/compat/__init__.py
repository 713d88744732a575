"""Drop-in replacements for other packages' classes, built on ipcxx.

`ipcxx.compat.faster_fifo` mirrors the faster-fifo package: change
`from faster_fifo import Queue` into `from ipcxx.compat.faster_fifo import Queue` and the program
runs on an ipcxx.Channel (docs/guide.md, "Migrating from faster-fifo", lists the differences).
"""

"""`faster_fifo_reduction` for faster-fifo's test suite run against ipcxx: faster-fifo keeps this
module empty for old code that imports it (queues pickle without it), and so does ipcxx."""

// System limits relevant to POSIX IPC, read from the running system (never frozen at build).
#pragma once

namespace ipcxx::posix {

/// sysconf(_SC_PAGESIZE).
long page_size();
/// The largest semaphore value (SEM_VALUE_MAX).
long semaphore_value_max();
/// Default max_messages for new queues: /proc/sys/fs/mqueue/msg_max, else 100.
long queue_messages_max_default();
/// Default max_message_size for new queues: /proc/sys/fs/mqueue/msgsize_max, else 8192.
long queue_message_size_max_default();
/// The highest message priority: sysconf(_SC_MQ_PRIO_MAX) - 1.
long queue_priority_max();

}  // namespace ipcxx::posix

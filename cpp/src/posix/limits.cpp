// Reads the POSIX IPC limits of the running system.
#include "ipcxx/posix/limits.hpp"

#include <limits.h>
#include <semaphore.h>
#include <unistd.h>

#include <fstream>

#include "ipcxx/posix/message_queue.hpp"

namespace ipcxx::posix {

namespace {
// A positive integer from a /proc file, or `fallback` when it is missing or unreadable.
long read_proc_number(const char* path, long fallback) {
  std::ifstream file(path);
  long value = 0;
  if (file >> value && value > 0) return value;
  return fallback;
}
}  // namespace

long page_size() { return ::sysconf(_SC_PAGESIZE); }

long semaphore_value_max() { return SEM_VALUE_MAX; }

long queue_messages_max_default() { return read_proc_number("/proc/sys/fs/mqueue/msg_max", 100); }

long queue_message_size_max_default() {
  return read_proc_number("/proc/sys/fs/mqueue/msgsize_max", 8192);
}

long queue_priority_max() { return MessageQueue::max_priority(); }

}  // namespace ipcxx::posix

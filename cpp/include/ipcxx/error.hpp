// ipcxx::Error: the one exception type for failed system calls, carrying errno, call and object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace ipcxx {

/// Every system call the core reports in an Error; `unknown` only for a call name the table
/// below does not know (Error built from a free-form string).
enum class Syscall : std::uint8_t {
  unknown,
  // Shared by several classes.
  close,
  fstat,
  ftruncate,
  fallocate,
  mmap,
  munmap,
  pread,
  getrandom,
  ftok,
  // POSIX semaphores.
  sem_open,
  sem_close,
  sem_wait,
  sem_trywait,
  sem_clockwait,
  sem_post,
  sem_getvalue,
  sem_unlink,
  // POSIX shared memory.
  shm_open,
  shm_unlink,
  // POSIX message queues.
  mq_open,
  mq_close,
  mq_getattr,
  mq_setattr,
  mq_send,
  mq_timedsend,
  mq_receive,
  mq_timedreceive,
  mq_notify,
  mq_unlink,
  // System V semaphores.
  semget,
  semop,
  semtimedop,
  semctl_getval,
  semctl_setval,
  semctl_getpid,
  semctl_getncnt,
  semctl_getzcnt,
  semctl_getall,
  semctl_setall,
  semctl_ipc_stat,
  semctl_ipc_set,
  semctl_ipc_rmid,
  // System V shared memory.
  shmget,
  shmat,
  shmdt,
  shmctl_ipc_stat,
  shmctl_ipc_set,
  shmctl_ipc_rmid,
  // System V message queues.
  msgget,
  msgsnd,
  msgrcv,
  msgctl_ipc_stat,
  msgctl_ipc_set,
  msgctl_ipc_rmid,
  // Robust process-shared pthread mutexes (RobustMutex). These return the error number
  // instead of setting errno; the Error carries it all the same.
  pthread_mutexattr_init,
  pthread_mutexattr_setpshared,
  pthread_mutexattr_setrobust,
  pthread_mutexattr_settype,
  pthread_mutex_init,
  pthread_mutex_lock,
  pthread_mutex_trylock,
  pthread_mutex_clocklock,
  pthread_mutex_unlock,
  pthread_mutex_consistent,
};

/// The name used in what(), e.g. "sem_open" or "shmctl(IPC_STAT)"; "" for Syscall::unknown.
std::string_view syscall_name(Syscall call) noexcept;
/// The Syscall whose syscall_name() is `name`, or Syscall::unknown.
Syscall syscall_from_name(std::string_view name) noexcept;

/// A failed system call. code().value() is the errno; what() reads like
/// "sem_open(/jobs): No such file or directory". Invalid arguments detected before any
/// syscall are reported with std::invalid_argument / std::out_of_range instead.
class Error : public std::system_error {
 public:
  /// Builds the error for `call` on `object` (a name, a key or an id as text).
  Error(int errno_value, Syscall call, std::string_view object);
  /// Builds the error from a call name; syscall() is looked up with syscall_from_name().
  Error(int errno_value, std::string_view call, std::string_view object);

  /// The errno value reported by the kernel.
  int errno_value() const noexcept { return code().value(); }
  /// The system call that failed, typed: compare with this rather than with call().
  Syscall syscall() const noexcept { return syscall_; }
  /// The system call that failed as text, e.g. "sem_open".
  const std::string& call() const noexcept { return call_; }
  /// The object the call was about: a name, a key or an id.
  const std::string& object() const noexcept { return object_; }

 private:
  Syscall syscall_;
  std::string call_;
  std::string object_;
};

}  // namespace ipcxx

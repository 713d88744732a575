// ipcxx::Error construction: formats "call(object)" in front of the errno text.
#include "ipcxx/error.hpp"

#include <array>
#include <utility>

namespace ipcxx {

namespace {

using enum Syscall;

// Indexed by the enumerator's value; the static_assert below keeps it complete.
constexpr std::array<std::pair<Syscall, std::string_view>, 65> kNames{{
    {unknown, ""},
    {close, "close"},
    {fstat, "fstat"},
    {ftruncate, "ftruncate"},
    {fallocate, "fallocate"},
    {mmap, "mmap"},
    {munmap, "munmap"},
    {pread, "pread"},
    {getrandom, "getrandom"},
    {ftok, "ftok"},
    {sem_open, "sem_open"},
    {sem_close, "sem_close"},
    {sem_wait, "sem_wait"},
    {sem_trywait, "sem_trywait"},
    {sem_clockwait, "sem_clockwait"},
    {sem_post, "sem_post"},
    {sem_getvalue, "sem_getvalue"},
    {sem_unlink, "sem_unlink"},
    {shm_open, "shm_open"},
    {shm_unlink, "shm_unlink"},
    {mq_open, "mq_open"},
    {mq_close, "mq_close"},
    {mq_getattr, "mq_getattr"},
    {mq_setattr, "mq_setattr"},
    {mq_send, "mq_send"},
    {mq_timedsend, "mq_timedsend"},
    {mq_receive, "mq_receive"},
    {mq_timedreceive, "mq_timedreceive"},
    {mq_notify, "mq_notify"},
    {mq_unlink, "mq_unlink"},
    {semget, "semget"},
    {semop, "semop"},
    {semtimedop, "semtimedop"},
    {semctl_getval, "semctl(GETVAL)"},
    {semctl_setval, "semctl(SETVAL)"},
    {semctl_getpid, "semctl(GETPID)"},
    {semctl_getncnt, "semctl(GETNCNT)"},
    {semctl_getzcnt, "semctl(GETZCNT)"},
    {semctl_getall, "semctl(GETALL)"},
    {semctl_setall, "semctl(SETALL)"},
    {semctl_ipc_stat, "semctl(IPC_STAT)"},
    {semctl_ipc_set, "semctl(IPC_SET)"},
    {semctl_ipc_rmid, "semctl(IPC_RMID)"},
    {shmget, "shmget"},
    {shmat, "shmat"},
    {shmdt, "shmdt"},
    {shmctl_ipc_stat, "shmctl(IPC_STAT)"},
    {shmctl_ipc_set, "shmctl(IPC_SET)"},
    {shmctl_ipc_rmid, "shmctl(IPC_RMID)"},
    {msgget, "msgget"},
    {msgsnd, "msgsnd"},
    {msgrcv, "msgrcv"},
    {msgctl_ipc_stat, "msgctl(IPC_STAT)"},
    {msgctl_ipc_set, "msgctl(IPC_SET)"},
    {msgctl_ipc_rmid, "msgctl(IPC_RMID)"},
    {pthread_mutexattr_init, "pthread_mutexattr_init"},
    {pthread_mutexattr_setpshared, "pthread_mutexattr_setpshared"},
    {pthread_mutexattr_setrobust, "pthread_mutexattr_setrobust"},
    {pthread_mutexattr_settype, "pthread_mutexattr_settype"},
    {pthread_mutex_init, "pthread_mutex_init"},
    {pthread_mutex_lock, "pthread_mutex_lock"},
    {pthread_mutex_trylock, "pthread_mutex_trylock"},
    {pthread_mutex_clocklock, "pthread_mutex_clocklock"},
    {pthread_mutex_unlock, "pthread_mutex_unlock"},
    {pthread_mutex_consistent, "pthread_mutex_consistent"},
}};

constexpr bool table_is_in_order() {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (static_cast<std::size_t>(kNames[i].first) != i) return false;
  return kNames.back().first == pthread_mutex_consistent;
}
static_assert(table_is_in_order(), "kNames must list every Syscall in declaration order");

std::string describe(std::string_view call, std::string_view object) {
  std::string text(call);
  text += '(';
  text += object;
  text += ')';
  return text;
}

}  // namespace

std::string_view syscall_name(Syscall call) noexcept {
  const auto index = static_cast<std::size_t>(call);
  return index < kNames.size() ? kNames[index].second : std::string_view{};
}

Syscall syscall_from_name(std::string_view name) noexcept {
  if (name.empty()) return unknown;
  for (const auto& [call, text] : kNames)
    if (text == name) return call;
  return unknown;
}

Error::Error(int errno_value, Syscall call, std::string_view object)
    : std::system_error(errno_value, std::generic_category(), describe(syscall_name(call), object)),
      syscall_(call),
      call_(syscall_name(call)),
      object_(object) {}

Error::Error(int errno_value, std::string_view call, std::string_view object)
    : std::system_error(errno_value, std::generic_category(), describe(call, object)),
      syscall_(syscall_from_name(call)),
      call_(call),
      object_(object) {}

}  // namespace ipcxx

// ipcxx::sysv::Semaphore on top of semget/semop/semtimedop/semctl.
#include "ipcxx/sysv/semaphore.hpp"

#include <sys/ipc.h>
#include <sys/sem.h>

#include <cerrno>
#include <stdexcept>

#include "detail/deadline.hpp"
#include "detail/syscall.hpp"
#include "detail/unique_key.hpp"
#include "ipcxx/sysv/keys.hpp"

namespace ipcxx::sysv {

namespace {

// semctl's fourth argument; the caller must define it (semctl(2)).
union SemaphoreArgument {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

int get(key_t key, int flags, int mode) {
  return detail::check(::semget(key, 1, (mode & 0777) | flags), Syscall::semget, describe_key(key));
}

struct Got {
  int id;
  bool created;
};

// With IPC_CREAT alone semget does not say whether it created the semaphore; asking with the
// two exclusive forms tells, so a failed SETVAL removes only what this call made (DC-7).
Got get_and_learn_if_created(key_t key, int flags, int mode) {
  if (!(flags & IPC_CREAT) || key == IPC_PRIVATE)
    return {get(key, flags, mode), key == IPC_PRIVATE};
  if (flags & IPC_EXCL) return {get(key, flags, mode), true};
  for (;;) {
    const int existing = ::semget(key, 1, mode & 0777);
    if (existing >= 0) return {existing, false};
    if (errno != ENOENT) detail::throw_errno(Syscall::semget, describe_key(key));
    const int created = ::semget(key, 1, (mode & 0777) | IPC_CREAT | IPC_EXCL);
    if (created >= 0) return {created, true};
    if (errno != EEXIST) detail::throw_errno(Syscall::semget, describe_key(key));
  }
}

}  // namespace

Semaphore::Semaphore(key_t key, int flags, int mode, int initial_value) : key_(key) {
  validate_get_flags(flags);
  flags &= IPC_CREAT | IPC_EXCL;  // mode bits above 0777 never act as flags (DC-28)
  const Got got = get_and_learn_if_created(key, flags, mode);
  id_ = got.id;
  if ((flags & IPC_CREAT) && (mode & 0200)) {
    try {
      set_value(initial_value);
    } catch (const Error&) {
      if (got.created) ::semctl(id_, 0, IPC_RMID);
      throw;
    }
  }
}

Semaphore Semaphore::create_unique(int flags, int mode, int initial_value) {
  return detail::create_with_unique_key(
      [&](key_t key) { return Semaphore(key, flags | IPC_CREAT | IPC_EXCL, mode, initial_value); });
}

bool Semaphore::operate(short sem_op, bool wait, bool undo,
                        std::optional<std::chrono::nanoseconds> timeout) const {
  sembuf operation{};
  operation.sem_num = 0;
  operation.sem_op = sem_op;
  operation.sem_flg = static_cast<short>((wait ? 0 : IPC_NOWAIT) | (undo ? SEM_UNDO : 0));
  int result = 0;
  if (wait && timeout) {
    const timespec relative = detail::to_timespec(timeout->count() > 0 ? timeout->count() : 0);
    result = ::semtimedop(id_, &operation, 1, &relative);
  } else {
    result = ::semop(id_, &operation, 1);
  }
  if (result == 0) return true;
  if (errno == EAGAIN) return false;
  detail::throw_errno(timeout ? Syscall::semtimedop : Syscall::semop, describe_id(id_));
}

namespace {
// A zero count is "wait for zero" to the kernel and a negative one flips the direction;
// neither is what acquire/release promise (wait_for_zero() says it by name).
short checked_count(short count) {
  if (count <= 0) throw std::invalid_argument("the count must be positive");
  return count;
}
}  // namespace

void Semaphore::acquire(short count, bool undo) const {
  operate(static_cast<short>(-checked_count(count)), true, undo);
}

bool Semaphore::try_acquire(short count, bool undo) const {
  return operate(static_cast<short>(-checked_count(count)), false, undo);
}

bool Semaphore::acquire_for(std::chrono::nanoseconds timeout, short count, bool undo) const {
  return operate(static_cast<short>(-checked_count(count)), true, undo, timeout);
}

void Semaphore::release(short count, bool undo) const {
  operate(checked_count(count), false, undo);
}

int Semaphore::control(int command, int argument, Syscall call) const {
  SemaphoreArgument value{};
  value.val = argument;
  return detail::check(::semctl(id_, 0, command, value), call, describe_id(id_));
}

int Semaphore::value() const { return control(GETVAL, 0, Syscall::semctl_getval); }

void Semaphore::set_value(int value) const { control(SETVAL, value, Syscall::semctl_setval); }

SemaphoreStatus Semaphore::status() const {
  semid_ds info{};
  SemaphoreArgument argument{};
  argument.buf = &info;
  detail::check(::semctl(id_, 0, IPC_STAT, argument), Syscall::semctl_ipc_stat, describe_id(id_));
  return {info.sem_perm.uid,
          info.sem_perm.gid,
          info.sem_perm.cuid,
          info.sem_perm.cgid,
          static_cast<int>(info.sem_perm.mode & 0777),
          info.sem_otime};
}

void Semaphore::set_owner(uid_t uid, gid_t gid, int mode) const {
  semid_ds info{};
  SemaphoreArgument argument{};
  argument.buf = &info;
  detail::check(::semctl(id_, 0, IPC_STAT, argument), Syscall::semctl_ipc_stat, describe_id(id_));
  info.sem_perm.uid = uid;
  info.sem_perm.gid = gid;
  info.sem_perm.mode = static_cast<decltype(info.sem_perm.mode)>(mode);
  detail::check(::semctl(id_, 0, IPC_SET, argument), Syscall::semctl_ipc_set, describe_id(id_));
}

pid_t Semaphore::last_pid() const { return control(GETPID, 0, Syscall::semctl_getpid); }

int Semaphore::waiting_for_nonzero() const { return control(GETNCNT, 0, Syscall::semctl_getncnt); }

int Semaphore::waiting_for_zero() const { return control(GETZCNT, 0, Syscall::semctl_getzcnt); }

void Semaphore::remove(int id) {
  detail::check(::semctl(id, 0, IPC_RMID), Syscall::semctl_ipc_rmid, describe_id(id));
}

}  // namespace ipcxx::sysv

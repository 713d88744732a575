// ipcxx::sysv::SemaphoreSet on top of semget/semop/semtimedop/semctl.
#include "ipcxx/sysv/semaphore_set.hpp"

#include <sys/ipc.h>
#include <sys/sem.h>

#include <array>
#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <string>

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

// The kernel's SEMMSL (first field of /proc/sys/kernel/sem), or 0 when it cannot be read.
std::size_t members_per_set_limit() {
  std::ifstream limits("/proc/sys/kernel/sem");
  long semmsl = 0;
  if (!(limits >> semmsl) || semmsl <= 0) return 0;
  return static_cast<std::size_t>(semmsl);
}

int get(key_t key, std::size_t count, int flags, int mode) {
  return detail::check(::semget(key, static_cast<int>(count), (mode & 0777) | flags),
                       Syscall::semget, describe_key(key));
}

struct Got {
  int id;
  bool created;
};

// With IPC_CREAT alone semget does not say whether it created the set; asking with the two
// exclusive forms tells, so only a set this call made gets initial values (and is removed
// again if that fails).
Got get_and_learn_if_created(key_t key, std::size_t count, int flags, int mode) {
  if (!(flags & IPC_CREAT) || key == IPC_PRIVATE)
    return {get(key, count, flags, mode), key == IPC_PRIVATE};
  if (flags & IPC_EXCL) return {get(key, count, flags, mode), true};
  for (;;) {
    const int existing = ::semget(key, static_cast<int>(count), mode & 0777);
    if (existing >= 0) return {existing, false};
    if (errno != ENOENT) detail::throw_errno(Syscall::semget, describe_key(key));
    const int created =
        ::semget(key, static_cast<int>(count), (mode & 0777) | IPC_CREAT | IPC_EXCL);
    if (created >= 0) return {created, true};
    if (errno != EEXIST) detail::throw_errno(Syscall::semget, describe_key(key));
  }
}

std::size_t member_count(int id) {
  semid_ds info{};
  SemaphoreArgument argument{};
  argument.buf = &info;
  detail::check(::semctl(id, 0, IPC_STAT, argument), Syscall::semctl_ipc_stat, describe_id(id));
  return static_cast<std::size_t>(info.sem_nsems);
}

}  // namespace

SemaphoreSet::SemaphoreSet(key_t key, int flags, int mode, std::size_t count, int initial_value)
    : key_(key) {
  validate_get_flags(flags);
  if (count < 1) throw std::invalid_argument("the count must be at least 1");
  const std::size_t limit = members_per_set_limit();
  if (limit != 0 && count > limit)
    throw std::length_error("the count exceeds the kernel's limit (SEMMSL " +
                            std::to_string(limit) + ")");
  flags &= IPC_CREAT | IPC_EXCL;  // mode bits above 0777 never act as flags (DC-28)
  const Got got = get_and_learn_if_created(key, count, flags, mode);
  id_ = got.id;
  try {
    count_ = got.created ? count : member_count(id_);
    if (got.created && (mode & 0200)) {
      const std::vector<int> initial(count_, initial_value);
      set_values(initial);
    }
  } catch (const Error&) {
    if (got.created) ::semctl(id_, 0, IPC_RMID);
    throw;
  }
}

SemaphoreSet SemaphoreSet::create_unique(int flags, int mode, std::size_t count,
                                         int initial_value) {
  return detail::create_with_unique_key([&](key_t key) {
    return SemaphoreSet(key, flags | IPC_CREAT | IPC_EXCL, mode, count, initial_value);
  });
}

bool SemaphoreSet::apply(std::span<const SemaphoreOperation> operations, int extra_flags,
                         std::optional<std::chrono::nanoseconds> timeout) const {
  if (operations.empty()) throw std::invalid_argument("the operation list is empty");
  // A few operations fit on the stack; the hot path allocates nothing.
  std::array<sembuf, 8> small{};
  std::vector<sembuf> large;
  sembuf* buffer = small.data();
  if (operations.size() > small.size()) {
    large.resize(operations.size());
    buffer = large.data();
  }
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const SemaphoreOperation& operation = operations[i];
    if (operation.index >= count_) throw std::out_of_range("semaphore index out of range");
    if (operation.flags & ~(IPC_NOWAIT | SEM_UNDO))
      throw std::invalid_argument("operation flags may only be IPC_NOWAIT and SEM_UNDO");
    buffer[i].sem_num = static_cast<unsigned short>(operation.index);
    buffer[i].sem_op = operation.delta;
    buffer[i].sem_flg = static_cast<short>(operation.flags | extra_flags);
  }
  int result = 0;
  if (timeout) {
    const timespec relative = detail::to_timespec(timeout->count() > 0 ? timeout->count() : 0);
    result = ::semtimedop(id_, buffer, operations.size(), &relative);
  } else {
    result = ::semop(id_, buffer, operations.size());
  }
  if (result == 0) return true;
  if (errno == EAGAIN) return false;
  detail::throw_errno(timeout ? Syscall::semtimedop : Syscall::semop, describe_id(id_));
}

bool SemaphoreSet::try_op(std::span<const SemaphoreOperation> operations) const {
  return apply(operations, IPC_NOWAIT, std::nullopt);
}

bool SemaphoreSet::op(std::span<const SemaphoreOperation> operations) const {
  return apply(operations, 0, std::nullopt);
}

bool SemaphoreSet::op_for(std::span<const SemaphoreOperation> operations,
                          std::chrono::nanoseconds timeout) const {
  return apply(operations, 0, timeout);
}

int SemaphoreSet::member_control(std::size_t index, int command, int argument, Syscall call) const {
  if (index >= count_) throw std::out_of_range("semaphore index out of range");
  SemaphoreArgument value{};
  value.val = argument;
  return detail::check(::semctl(id_, static_cast<int>(index), command, value), call,
                       describe_id(id_));
}

int SemaphoreSet::value(std::size_t index) const {
  return member_control(index, GETVAL, 0, Syscall::semctl_getval);
}

std::vector<int> SemaphoreSet::values() const {
  // GETALL writes as many values as the kernel's set has: size the buffer by that, not by a
  // count from_id() was told.
  std::vector<unsigned short> raw(member_count(id_));
  SemaphoreArgument argument{};
  argument.array = raw.data();
  detail::check(::semctl(id_, 0, GETALL, argument), Syscall::semctl_getall, describe_id(id_));
  return std::vector<int>(raw.begin(), raw.end());
}

void SemaphoreSet::set_value(std::size_t index, int value) const {
  member_control(index, SETVAL, value, Syscall::semctl_setval);
}

void SemaphoreSet::set_values(std::span<const int> values) const {
  if (values.size() != count_) throw std::invalid_argument("set_values needs one value per member");
  std::vector<unsigned short> raw(count_);
  for (std::size_t i = 0; i < count_; ++i) {
    // SETALL takes unsigned shorts: refuse what would wrap into range (the kernel says ERANGE
    // for what it sees above 32767).
    if (values[i] < 0 || values[i] > 32767) {
      errno = ERANGE;
      detail::throw_errno(Syscall::semctl_setall, describe_id(id_));
    }
    raw[i] = static_cast<unsigned short>(values[i]);
  }
  SemaphoreArgument argument{};
  argument.array = raw.data();
  detail::check(::semctl(id_, 0, SETALL, argument), Syscall::semctl_setall, describe_id(id_));
}

pid_t SemaphoreSet::last_pid(std::size_t index) const {
  return member_control(index, GETPID, 0, Syscall::semctl_getpid);
}

int SemaphoreSet::waiting_for_nonzero(std::size_t index) const {
  return member_control(index, GETNCNT, 0, Syscall::semctl_getncnt);
}

int SemaphoreSet::waiting_for_zero(std::size_t index) const {
  return member_control(index, GETZCNT, 0, Syscall::semctl_getzcnt);
}

SemaphoreStatus SemaphoreSet::status() const { return Semaphore::from_id(id_, key_).status(); }

void SemaphoreSet::set_owner(uid_t uid, gid_t gid, int mode) const {
  Semaphore::from_id(id_, key_).set_owner(uid, gid, mode);
}

}  // namespace ipcxx::sysv

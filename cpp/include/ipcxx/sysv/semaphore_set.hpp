// ipcxx::sysv::SemaphoreSet: a System V semaphore set, with atomic operations over its members.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "ipcxx/error.hpp"
#include "ipcxx/sysv/semaphore.hpp"

namespace ipcxx::sysv {

/// One member's part of an atomic operation (a struct sembuf with a checked index).
struct SemaphoreOperation {
  std::size_t index = 0;  ///< the member, 0..count()-1
  short delta = 0;        ///< < 0 takes |delta|, > 0 gives delta, 0 waits until the member is 0
  int flags = 0;          ///< IPC_NOWAIT and/or SEM_UNDO, for this member only
};

/// A handle to a System V semaphore set: its key, id and member count (the kernel object needs
/// no closing, so copies are cheap and every call is safe from any thread). An operation over
/// several members is applied by one semop: all of it or none of it. A set of one is the
/// object sysv::Semaphore uses. remove() destroys the set for every process; waiters then fail
/// with Error(EIDRM).
class SemaphoreSet {
 public:
  /// semget(key, count, (mode & 0777) | (flags & (IPC_CREAT | IPC_EXCL))). When this call
  /// created the set and `mode` grants write (0200), every member is set to initial_value
  /// (SETALL); an existing set keeps its values, even with IPC_CREAT (unlike Semaphore's
  /// upstream rule, compatibility.md sysv DC-6). If setting them fails the new set is removed
  /// again. count() is the kernel's member count (an existing set may have more than `count`).
  /// Throws std::invalid_argument for IPC_EXCL without IPC_CREAT or count < 1,
  /// std::length_error for count above the kernel's SEMMSL, Error for the syscalls (EINVAL
  /// when an existing set has fewer than `count` members).
  SemaphoreSet(key_t key, int flags, int mode = 0600, std::size_t count = 1, int initial_value = 0);
  /// Creates a set under a random key in 1..32766 (flags must hold IPC_CREAT|IPC_EXCL).
  static SemaphoreSet create_unique(int flags, int mode = 0600, std::size_t count = 1,
                                    int initial_value = 0);
  /// Refers to an existing set by id, trusting `count`; no syscall.
  static SemaphoreSet from_id(int id, std::size_t count, key_t key = 0) {
    return SemaphoreSet(id, count, key, Tag{});
  }

  key_t key() const noexcept { return key_; }
  int id() const noexcept { return id_; }
  std::size_t count() const noexcept { return count_; }

  /// Applies every operation atomically if all can proceed now (IPC_NOWAIT added to each);
  /// false, and nothing changed, otherwise. Throws std::invalid_argument for an empty list or
  /// flags other than IPC_NOWAIT|SEM_UNDO, std::out_of_range for an index >= count() (both
  /// before any syscall), Error(ERANGE) past a member's maximum, Error(E2BIG) beyond SEMOPM.
  bool try_op(std::span<const SemaphoreOperation> operations) const;
  /// Applies every operation atomically, waiting without limit until all can proceed. Returns
  /// false only when an operation carrying its own IPC_NOWAIT could not. Throws as try_op(),
  /// and Error(EINTR) on a signal, Error(EIDRM) when the set is removed while waiting.
  bool op(std::span<const SemaphoreOperation> operations) const;
  /// As op(), waiting at most `timeout` (semtimedop, CLOCK_MONOTONIC); false when it expired.
  bool op_for(std::span<const SemaphoreOperation> operations,
              std::chrono::nanoseconds timeout) const;

  /// Member `index`'s value (GETVAL). Throws std::out_of_range for a bad index.
  int value(std::size_t index) const;
  /// Every member's value in one atomic snapshot (GETALL).
  std::vector<int> values() const;
  /// Sets member `index` (SETVAL); clears every process's undo adjustments of that member.
  /// Throws std::out_of_range for a bad index, Error(ERANGE) outside 0..32767.
  void set_value(std::size_t index, int value) const;
  /// Sets every member at once (SETALL). Throws std::invalid_argument unless values has
  /// count() entries, Error(ERANGE) when one is outside 0..32767.
  void set_values(std::span<const int> values) const;
  /// Pid of the last semop on member `index` (GETPID). Throws std::out_of_range.
  pid_t last_pid(std::size_t index) const;
  /// Threads waiting for member `index` to grow (GETNCNT) / to reach zero (GETZCNT).
  int waiting_for_nonzero(std::size_t index) const;
  int waiting_for_zero(std::size_t index) const;
  /// Owner, mode and o_time of the set (IPC_STAT).
  SemaphoreStatus status() const;
  /// Changes owner and permission bits (IPC_STAT then IPC_SET).
  void set_owner(uid_t uid, gid_t gid, int mode) const;

  /// Destroys the set (IPC_RMID).
  void remove() const { Semaphore::remove(id_); }

 private:
  struct Tag {};
  SemaphoreSet(int id, std::size_t count, key_t key, Tag) : key_(key), id_(id), count_(count) {}
  int member_control(std::size_t index, int command, int argument, Syscall call) const;
  bool apply(std::span<const SemaphoreOperation> operations, int extra_flags,
             std::optional<std::chrono::nanoseconds> timeout) const;

  key_t key_ = 0;
  int id_ = -1;
  std::size_t count_ = 0;
};

}  // namespace ipcxx::sysv

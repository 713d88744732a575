// ipcxx::sysv::Semaphore: one System V semaphore (member 0 of a set of one), by key or id.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <ctime>
#include <optional>

#include "ipcxx/error.hpp"

namespace ipcxx::sysv {

/// Owner and times of a System V object (IPC_STAT), read live.
struct SemaphoreStatus {
  uid_t uid;
  gid_t gid;
  uid_t cuid;
  gid_t cgid;
  int mode;  ///< permission bits
  std::time_t o_time;
};

/// A handle to a System V semaphore: just its key and id (the kernel object needs no closing,
/// so copies are cheap and every call is safe from any thread). remove() destroys the kernel
/// object for every process; waiters then fail with Error(EIDRM).
class Semaphore {
 public:
  /// semget(key, 1, (mode & 0777) | (flags & (IPC_CREAT | IPC_EXCL))). With IPC_CREAT and a
  /// mode granting write (0200) the value is set to initial_value, even when the semaphore
  /// existed (sysv_ipc's rule, compatibility.md sysv DC-6); if that fails, a semaphore this call
  /// created is removed again. Throws std::invalid_argument for IPC_EXCL without IPC_CREAT.
  Semaphore(key_t key, int flags, int mode = 0600, int initial_value = 0);
  /// Creates a semaphore under a random key in 1..32766 (flags must hold IPC_CREAT|IPC_EXCL).
  static Semaphore create_unique(int flags, int mode = 0600, int initial_value = 0);
  /// Refers to an existing semaphore by id; no syscall.
  static Semaphore from_id(int id, key_t key = 0) { return Semaphore(id, key, Tag{}); }

  key_t key() const noexcept { return key_; }
  int id() const noexcept { return id_; }

  /// One semop on member 0: sem_op < 0 takes, > 0 gives, 0 waits for zero. `wait` false means
  /// IPC_NOWAIT; `undo` adds SEM_UNDO; `timeout` bounds the wait (semtimedop, monotonic).
  /// Returns false when the operation could not proceed (IPC_NOWAIT, or the timeout expired).
  /// Throws Error(EINTR) on a signal, Error(EIDRM) when removed while waiting. The raw form:
  /// prefer the named calls below, which check their count.
  bool operate(short sem_op, bool wait, bool undo,
               std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const;
  /// Takes `count` units, waiting without limit. Throws std::invalid_argument unless
  /// count > 0 (a zero semop would mean "wait for zero": use wait_for_zero()).
  void acquire(short count = 1, bool undo = false) const;
  /// Takes `count` units only if available now; false otherwise. Same count rule as acquire().
  bool try_acquire(short count = 1, bool undo = false) const;
  /// Takes `count` units, waiting at most `timeout`; false when it expired. Same count rule.
  bool acquire_for(std::chrono::nanoseconds timeout, short count = 1, bool undo = false) const;
  /// Adds `count` units; never waits. Throws std::invalid_argument unless count > 0,
  /// Error(ERANGE) past the maximum (32767).
  void release(short count = 1, bool undo = false) const;

  /// Waits without limit until the value is zero (a zero semop). Throws like acquire().
  void wait_for_zero() const { operate(0, true, false); }
  /// True if the value is zero now; never blocks.
  bool try_wait_for_zero() const { return operate(0, false, false); }
  /// Waits at most `timeout` for the value to be zero; false when it expired.
  bool wait_for_zero_for(std::chrono::nanoseconds timeout) const {
    return operate(0, true, false, timeout);
  }

  /// The value (GETVAL).
  int value() const;
  /// Sets the value (SETVAL); clears every process's undo adjustments. Error(ERANGE) outside
  /// 0..32767.
  void set_value(int value) const;
  /// Owner, mode and o_time (IPC_STAT).
  SemaphoreStatus status() const;
  /// Changes owner and permission bits (IPC_STAT then IPC_SET).
  void set_owner(uid_t uid, gid_t gid, int mode) const;
  /// Pid of the last semop (GETPID).
  pid_t last_pid() const;
  /// Threads waiting for the value to grow (GETNCNT) / to reach zero (GETZCNT).
  int waiting_for_nonzero() const;
  int waiting_for_zero() const;

  /// Destroys the semaphore (IPC_RMID).
  void remove() const { remove(id_); }
  static void remove(int id);

 private:
  struct Tag {};
  Semaphore(int id, key_t key, Tag) : key_(key), id_(id) {}
  int control(int command, int argument, Syscall call) const;

  key_t key_ = 0;
  int id_ = -1;
};

}  // namespace ipcxx::sysv

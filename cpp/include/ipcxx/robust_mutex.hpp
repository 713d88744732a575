// ipcxx::RobustMutex: a named, process-shared, crash-robust mutex in a POSIX shared memory segment.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ipcxx/error.hpp"
#include "ipcxx/posix/mapping.hpp"

namespace ipcxx {

/// What an acquisition produced. `owner_died`: the caller now holds the lock, but the previous
/// holder died holding it; call make_consistent() before release() to keep the lock usable.
enum class LockOutcome : std::uint8_t { timed_out, acquired, owner_died };

/// True when `outcome` means the caller holds the lock (acquired or owner_died).
constexpr bool holds(LockOutcome outcome) noexcept { return outcome != LockOutcome::timed_out; }

/// The named segment exists but is not a lock of this layout: wrong size, magic or version,
/// or its creator never finished initialising it within the open deadline.
class NotALockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A mutex any process can open by name (a shared memory segment holding a small header and a
/// pthread mutex that is PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST and ERRORCHECK). A thread
/// holds it: release() by another thread fails with EPERM. When a holder dies, the next
/// acquisition returns LockOutcome::owner_died exactly once; releasing without make_consistent()
/// makes the lock ENOTRECOVERABLE for everyone, and every later call throws
/// Error(ENOTRECOVERABLE) instead of waiting. Thread-safe except for close() and moves. The
/// destructor unmaps (never unlinks); while a thread still holds the lock through this object
/// the mapping is deliberately kept, so that the kernel can still report that thread's death.
/// An object releases only its own acquisition, and that acquisition ends with its release, the
/// death of its thread, or (in a fork child) the fork: see held_by_this_object().
class RobustMutex {
 public:
  /// How long open() waits by default for a creator to finish initialising.
  static constexpr std::chrono::milliseconds kDefaultOpenWait{1000};

  /// Opens the lock `name`; with `create`, creates it first when it does not exist (the creator
  /// initialises it under O_EXCL, openers wait up to `open_wait` for it to be ready). Throws
  /// ipcxx::Error (shm_open, fstat, mmap, ...), NotALockError for a segment that is not a lock.
  explicit RobustMutex(std::string name, bool create = false, mode_t mode = 0600,
                       std::chrono::nanoseconds open_wait = kDefaultOpenWait);
  /// Opens an existing lock.
  static RobustMutex open(std::string name) { return RobustMutex(std::move(name)); }
  /// Creates a new lock; throws Error(EEXIST) when the name is taken.
  static RobustMutex create(std::string name, mode_t mode = 0600);
  /// Creates a new lock under a fresh random name.
  static RobustMutex create_unique(mode_t mode = 0600);

  RobustMutex(RobustMutex&& other) noexcept;
  RobustMutex& operator=(RobustMutex&& other) noexcept;
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;
  ~RobustMutex();

  /// Waits without limit (pthread_mutex_lock); never returns timed_out. Throws Error: EDEADLK
  /// when this thread holds it already, ENOTRECOVERABLE, EBADF once closed.
  LockOutcome acquire();
  /// Never waits: timed_out when another thread holds it. Throws like acquire().
  LockOutcome try_acquire();
  /// Waits at most `timeout`, measured on CLOCK_MONOTONIC (pthread_mutex_clocklock).
  LockOutcome acquire_for(std::chrono::nanoseconds timeout);
  /// Waits at most `timeout` until the lock is free, without keeping it: true when it was
  /// (taken and given back at once; a dead holder found is recorded for the next acquisition to
  /// report, as locked() does), false when it stayed held. For waiters that must acquire on
  /// another thread (asyncio). Throws like acquire(); Error(EDEADLK) when this thread holds it.
  bool wait_free(std::chrono::nanoseconds timeout);
  /// Releases; never blocks. Throws Error(EPERM) when this thread does not hold it through this
  /// object. After an owner_died acquisition without make_consistent(), this makes the lock not
  /// recoverable.
  void release();
  /// Marks the state protected by the lock repaired after owner_died (pthread_mutex_consistent).
  /// Throws Error(EINVAL) when there is nothing to repair, EPERM when this thread does not hold it.
  void make_consistent();
  /// Whether some thread holds the lock, or its holder died and no one has acquired it since.
  /// Never waits, never takes the lock for good. Throws Error(ENOTRECOVERABLE) once unusable.
  bool locked();
  /// Whether the lock has become permanently unusable (never throws for that reason).
  bool not_recoverable() const;
  /// Whether a live thread of this process holds the lock through this object: false once that
  /// acquisition was released, its thread died (reported or not), or in a fork child. Never
  /// waits; like locked(), it takes the lock for an instant to find a dead holder. Never throws.
  bool held_by_this_object() noexcept;
  /// Unmaps (kept mapped while held_by_this_object(), see the class comment).
  void close() noexcept;
  bool is_open() const noexcept { return shared_ != nullptr; }

  /// Removes the name (shm_unlink); holders and openers keep their mapping.
  void unlink() const;
  /// Removes the lock `name` (shm_unlink): Error(ENOENT) when there is none.
  static void unlink(std::string_view name);

  const std::string& name() const noexcept { return name_; }

  /// The segment's layout, public for tests that build bad segments; sizeof is its size.
  struct Layout;

 private:
  RobustMutex(std::string name, posix::Mapping mapping);
  Layout& layout() const;
  LockOutcome finish_lock(int result, Syscall call);
  void check_usable(Syscall call) const;
  std::uint64_t own_acquisition() const noexcept;

  // This object's latest acquisition: its number (Layout::acquisitions, unique per lock; 0 for
  // none) and the fork generation that made it. It holds the lock while the lock's latest
  // acquisition is this one, in this process, and its thread lives (held_by_this_object()).
  struct Hold {
    std::atomic<std::uint64_t> number{0};
    std::atomic<std::uint64_t> generation{0};
  };

  std::string name_;
  posix::Mapping mapping_;
  Layout* shared_ = nullptr;
  std::unique_ptr<Hold> hold_ = std::make_unique<Hold>();  // boxed: the class stays movable
};

/// The segment size of a lock (for tests and tools).
std::size_t robust_mutex_segment_size() noexcept;

}  // namespace ipcxx

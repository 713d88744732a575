// Counts this process's threads that wait on an object's pinned handle, so close() knows
// whether to close now or leave it to the last waiter. A fork child inherits the parent's
// count but none of its threads: a count from another fork generation reads as zero there.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "common/object_lock.hpp"
#include "ipcxx/process.hpp"

namespace ipcxx::python {

/// Only touched under the owning object's ObjectLock (the GIL, on a regular build).
class WaiterCount {
 public:
  void add() noexcept {
    refresh();
    ++count_;
  }
  void remove() noexcept {
    if (generation_ == fork_generation() && count_ > 0) --count_;
  }
  bool any() noexcept {
    refresh();
    return count_ > 0;
  }

 private:
  void refresh() noexcept {
    const std::uint64_t now = fork_generation();
    if (generation_ != now) {
      generation_ = now;
      count_ = 0;
    }
  }

  std::uint64_t generation_ = 0;
  long count_ = 0;
};

/// A handle pinned for one wait: shares ownership and counts as a waiter until destroyed
/// (with the GIL held, after the wait). Made by pin_handle(), under the object's lock.
template <typename Handle>
class PinnedHandle {
 public:
  /// `lock` is held by the caller.
  PinnedHandle(std::shared_ptr<Handle> handle, WaiterCount& waiters, ObjectLock& lock)
      : handle_(std::move(handle)), waiters_(&waiters), lock_(&lock) {
    waiters_->add();
  }
  PinnedHandle(PinnedHandle&& other) noexcept
      : handle_(std::move(other.handle_)),
        waiters_(std::exchange(other.waiters_, nullptr)),
        lock_(other.lock_) {}
  PinnedHandle(const PinnedHandle&) = delete;
  PinnedHandle& operator=(const PinnedHandle&) = delete;
  PinnedHandle& operator=(PinnedHandle&&) = delete;
  ~PinnedHandle() {
    if (waiters_) {
      ObjectLockGuard guard(*lock_);
      waiters_->remove();
    }
    // handle_ is released after the lock: the last reference closes (a syscall).
  }
  Handle* operator->() const noexcept { return handle_.get(); }

 private:
  std::shared_ptr<Handle> handle_;
  WaiterCount* waiters_;
  ObjectLock* lock_;
};

/// `slot` pinned for a wait, or std::nullopt when it is empty (the object is closed).
template <typename Handle>
std::optional<PinnedHandle<Handle>> pin_handle(const std::shared_ptr<Handle>& slot,
                                               WaiterCount& waiters, ObjectLock& lock) {
  ObjectLockGuard guard(lock);
  if (!slot) return std::nullopt;
  return PinnedHandle<Handle>(slot, waiters, lock);
}

/// The handle one non-blocking call uses. With object locks on it is a pin like a wait's, so
/// close() on another thread defers to it instead of closing under it. On a regular build it
/// is the raw pointer: the GIL is held from this read to the end of the call's use (no Python
/// code runs in between), so no close() can interleave, and the hot path pays no reference
/// count or lock.
template <typename Handle>
class UsedHandle {
 public:
  UsedHandle(const std::shared_ptr<Handle>& slot, WaiterCount& waiters, ObjectLock& lock)
#if IPCXX_OBJECT_LOCKS_ON
      : pin_(pin_handle(slot, waiters, lock)){}
#else
      : raw_(slot.get()) {
    (void)waiters;
    (void)lock;
  }
#endif
        explicit
        operator bool() const noexcept {
#if IPCXX_OBJECT_LOCKS_ON
    return pin_.has_value();
#else
    return raw_ != nullptr;
#endif
  }
  Handle* operator->() const noexcept {
#if IPCXX_OBJECT_LOCKS_ON
    return pin_->operator->();
#else
    return raw_;
#endif
  }

 private:
#if IPCXX_OBJECT_LOCKS_ON
  std::optional<PinnedHandle<Handle>> pin_;
#else
  Handle* raw_;
#endif
};

/// Takes the handle out of `slot` under `lock` (close()): returns it, and whether any thread
/// of this process still pins it (then the last pin's release closes it).
template <typename Handle>
std::pair<std::shared_ptr<Handle>, bool> take_handle(std::shared_ptr<Handle>& slot,
                                                     WaiterCount& waiters, ObjectLock& lock) {
  ObjectLockGuard guard(lock);
  std::shared_ptr<Handle> taken = std::move(slot);
  slot.reset();
  return {std::move(taken), waiters.any()};
}

/// Puts `fresh` into `slot` under `lock` (__init__) and returns what it replaced, to be
/// released by the caller after the lock (its release may run Python code).
template <typename Handle>
std::shared_ptr<Handle> replace_handle(std::shared_ptr<Handle>& slot, std::shared_ptr<Handle> fresh,
                                       ObjectLock& lock) {
  ObjectLockGuard guard(lock);
  return std::exchange(slot, std::move(fresh));
}

}  // namespace ipcxx::python

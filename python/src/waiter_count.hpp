// Counts this process's threads that wait on an object's pinned handle, so close() knows
// whether to close now or leave it to the last waiter. A fork child inherits the parent's
// count but none of its threads: a count from another fork generation reads as zero there.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "ipcxx/process.hpp"

namespace ipcxx::python {

/// Only touched with the GIL held.
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
/// (with the GIL held, after the wait).
template <typename Handle>
class PinnedHandle {
 public:
  PinnedHandle(std::shared_ptr<Handle> handle, WaiterCount& waiters)
      : handle_(std::move(handle)), waiters_(&waiters) {
    waiters_->add();
  }
  PinnedHandle(PinnedHandle&& other) noexcept
      : handle_(std::move(other.handle_)), waiters_(std::exchange(other.waiters_, nullptr)) {}
  PinnedHandle(const PinnedHandle&) = delete;
  PinnedHandle& operator=(const PinnedHandle&) = delete;
  PinnedHandle& operator=(PinnedHandle&&) = delete;
  ~PinnedHandle() {
    if (waiters_) waiters_->remove();
  }
  Handle* operator->() const noexcept { return handle_.get(); }

 private:
  std::shared_ptr<Handle> handle_;
  WaiterCount* waiters_;
};

}  // namespace ipcxx::python

// Process-wide facts the classes need to survive fork(): a counter of fork generations.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipcxx {

namespace detail {
// Bumped by a pthread_atfork child handler that cpp/src/process.cpp registers at load time.
extern std::atomic<std::uint64_t> fork_generation_count;
}  // namespace detail

/// How many fork() calls separate this process from the one that loaded ipcxx: 0 there, one
/// more in each fork child (counted by a pthread_atfork child handler). Compare a value saved
/// with a handle against it to learn that the handle was inherited across a fork (threads that
/// pinned it in the parent do not exist here). Never blocks, never throws; inline, one relaxed
/// load, cheap enough for a lock's fast path.
inline std::uint64_t fork_generation() noexcept {
  return detail::fork_generation_count.load(std::memory_order_relaxed);
}

}  // namespace ipcxx

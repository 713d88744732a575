// The fork generation counter, bumped by a pthread_atfork child handler.
#include "ipcxx/process.hpp"

#include <pthread.h>

#include <atomic>

namespace ipcxx {

namespace {

std::atomic<std::uint64_t> generation{0};

void count_fork_in_child() noexcept { generation.fetch_add(1, std::memory_order_relaxed); }

bool register_handler() noexcept {
  static const bool registered = ::pthread_atfork(nullptr, nullptr, count_fork_in_child) == 0;
  return registered;
}

// Registered at load time as well, so forks before the first fork_generation() call count.
[[maybe_unused]] const bool registered_at_load = register_handler();

}  // namespace

std::uint64_t fork_generation() noexcept {
  register_handler();
  return generation.load(std::memory_order_relaxed);
}

}  // namespace ipcxx

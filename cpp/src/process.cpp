// The fork generation counter, bumped by a pthread_atfork child handler.
#include "ipcxx/process.hpp"

#include <pthread.h>

namespace ipcxx {

namespace detail {
// Constant-initialised: readable before any static initialiser runs.
constinit std::atomic<std::uint64_t> fork_generation_count{0};
}  // namespace detail

namespace {

void count_fork_in_child() noexcept {
  detail::fork_generation_count.fetch_add(1, std::memory_order_relaxed);
}

// Registered when the library is loaded: every user of fork_generation() references the
// counter defined in this file, so this file (and this initialiser) is always linked in, and
// no fork can happen before it in a program that has not started yet.
[[maybe_unused]] const bool registered_at_load =
    ::pthread_atfork(nullptr, nullptr, count_fork_in_child) == 0;

}  // namespace

}  // namespace ipcxx

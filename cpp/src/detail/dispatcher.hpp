// One long-lived thread per process that runs posted tasks one at a time, in the order posted:
// how notification callbacks reach code that must not see a new thread per event. Fork-safe.
#pragma once

#include <functional>

namespace ipcxx::detail {

/// Queues `task` for the process's dispatcher thread and returns without running it; blocks
/// only on a short internal lock. Starts the thread when none serves (first use, in a fork
/// child); a task that ends the thread (pthread_exit) hands the queue to a new one. If no
/// thread can be started, tasks wait for the next post. The thread runs with every signal
/// blocked and is never joined.
/// A fork child starts with no thread and no pending tasks: the parent's are never run there
/// (abandoned, not destroyed). Throws std::bad_alloc.
void post_to_dispatcher(std::function<void()> task);

/// Starts a detached thread running entry(argument) with every signal blocked; false when
/// pthread_create fails.
bool start_detached_thread(void* (*entry)(void*), void* argument) noexcept;

/// Runs `task`, swallowing what it throws except a forced unwind (abi::__forced_unwind, from
/// pthread_exit or cancellation), which it lets through: hence not noexcept.
void run_swallowing_errors(const std::function<void()>& task);

}  // namespace ipcxx::detail

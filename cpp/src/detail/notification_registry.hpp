// Callbacks waiting for an mq_notify(SIGEV_THREAD) event, reached by token, not by pointer,
// so a cancelled or closed registration can never be run through a dangling pointer. The
// table is fork-safe: a fork child starts with an unlocked, empty table (pthread_atfork).
// A callback runs on glibc's notification thread (run_notification_callback) or on the
// dispatcher thread (notification_listener.hpp).
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>

namespace ipcxx::detail {

/// Stores `callback` and returns the token to pass as the notification's sigval.
std::uint64_t store_notification_callback(std::function<void()> callback);
/// Removes and destroys the callback stored under `token`, if it is still there.
void drop_notification_callback(std::uint64_t token) noexcept;
/// Takes the callback stored under `token` (nothing when it was dropped) and runs it once.
/// Swallows the callback's exceptions except a forced unwind (abi::__forced_unwind, from
/// pthread_exit or cancellation), which it lets through: hence not noexcept.
void run_stored_callback(std::uint64_t token);
/// glibc's SIGEV_THREAD entry point: run_stored_callback(sigval's token) on this thread.
void run_notification_callback(sigval value);

}  // namespace ipcxx::detail

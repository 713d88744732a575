// The kernel side of dispatcher-thread callbacks: mq_notify(SIGEV_THREAD) through a netlink
// socket of this process's own and one long-lived thread that reads it, instead of glibc's
// helper (which spawns a thread per event and shares its socket with fork children).
#pragma once

#include <mqueue.h>

#include <cstdint>

namespace ipcxx::detail {

/// Registers `token` for the next notification of `mqd` (the raw mq_notify syscall, with the
/// token in the cookie): when it fires, the listener thread hands run_stored_callback(token)
/// to the dispatcher thread (dispatcher.hpp). Makes the socket and starts the listener on
/// first use, and again in a fork child, which never reads the parent's socket (it closes its
/// copy at the fork). Returns 0, or -1 with errno set (from socket(), pthread_create() as
/// EAGAIN, or mq_notify()). Never throws.
int notify_through_listener(mqd_t mqd, std::uint64_t token) noexcept;

}  // namespace ipcxx::detail

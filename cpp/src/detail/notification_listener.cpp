// The process's netlink socket for mq_notify(SIGEV_THREAD) and its listener thread; fork-safe.
#include "detail/notification_listener.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "detail/dispatcher.hpp"
#include "detail/notification_registry.hpp"

namespace ipcxx::detail {

namespace {

// From linux/mqueue.h, which cannot be included beside <mqueue.h> (both define mq_attr).
constexpr std::size_t kCookieLength = 32;  // NOTIFY_COOKIE_LEN
constexpr unsigned char kWokenUp = 1;      // NOTIFY_WOKENUP (NOTIFY_REMOVED is 2)

struct Listener {
  std::mutex mutex;
  int socket = -1;         // this process's: -1 before first use and in a fork child
  bool listening = false;  // a thread reads `socket`
};

Listener& listener();

void lock_before_fork() noexcept { listener().mutex.lock(); }
void unlock_in_parent() noexcept { listener().mutex.unlock(); }

void reset_in_child() noexcept {
  Listener& state = listener();
  // The socket is shared with the parent, whose registrations send their events there: a
  // reader in the child would take the parent's events (glibc's helper does: its child reuses
  // the socket), and the parent would never see them. The child closes its copy (the
  // parent's registrations hold the socket themselves) and makes its own on first use.
  if (state.socket >= 0) ::close(state.socket);
  state.socket = -1;
  state.listening = false;  // the listener thread is the parent's
  state.mutex.unlock();     // locked by this thread in lock_before_fork()
}

// Deliberately never destroyed: the listener thread reads it until the process ends.
Listener& listener() {
  static Listener* instance = [] {
    auto* created = new Listener;
    ::pthread_atfork(lock_before_fork, unlock_in_parent, reset_in_child);
    return created;
  }();
  return *instance;
}

// Built at load time, so the fork handlers exist before any thread can be using the socket.
[[maybe_unused]] Listener& listener_at_load = listener();

void* listen(void* argument) {
  const int socket = static_cast<int>(reinterpret_cast<std::intptr_t>(argument));
  for (;;) {
    unsigned char cookie[kCookieLength];
    const ssize_t got = ::recv(socket, cookie, sizeof cookie, MSG_NOSIGNAL | MSG_WAITALL);
    if (got < 0) {
      if (errno == EINTR || errno == ENOBUFS || errno == ENOMEM) continue;
      break;  // the socket is unusable: the next registration makes a new one
    }
    // NOTIFY_REMOVED: a registration was cancelled or its queue closed; nothing to run.
    if (got != sizeof cookie || cookie[kCookieLength - 1] != kWokenUp) continue;
    std::uint64_t token = 0;
    std::memcpy(&token, cookie, sizeof token);
    try {
      post_to_dispatcher([token] { run_stored_callback(token); });
    } catch (...) {
      // Out of memory: nobody to report to; this event is lost.
    }
  }
  Listener& state = listener();
  std::lock_guard lock(state.mutex);
  if (state.socket == socket) {
    state.socket = -1;  // not closed: after an EBADF the number may be someone else's
    state.listening = false;
  }
  return nullptr;
}

}  // namespace

int notify_through_listener(mqd_t mqd, std::uint64_t token) noexcept {
  int socket = -1;
  {
    Listener& state = listener();
    std::lock_guard lock(state.mutex);
    if (state.socket < 0) {
      // Unbound is enough (linux/mqueue.h); glibc makes its own the same way.
      state.socket = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
      if (state.socket < 0) return -1;
    }
    if (!state.listening) {
      void* argument = reinterpret_cast<void*>(static_cast<std::intptr_t>(state.socket));
      if (!start_detached_thread(listen, argument)) {
        errno = EAGAIN;
        return -1;
      }
      state.listening = true;
    }
    socket = state.socket;
  }
  // The kernel copies the cookie now and sends it back, last byte set to NOTIFY_WOKENUP or
  // NOTIFY_REMOVED. Only a token travels (glibc sends a pointer to its own data).
  unsigned char cookie[kCookieLength] = {};
  std::memcpy(cookie, &token, sizeof token);
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_signo = socket;
  event.sigev_value.sival_ptr = cookie;
  // The raw call: glibc's mq_notify() would route SIGEV_THREAD through its own helper.
  return static_cast<int>(::syscall(SYS_mq_notify, mqd, &event));
}

}  // namespace ipcxx::detail

// The process-wide table behind mq_notify(SIGEV_THREAD) callbacks; fork-safe.
#include "detail/notification_registry.hpp"

#include <pthread.h>

#include <mutex>
#include <unordered_map>
#include <utility>

#include "detail/dispatcher.hpp"

namespace ipcxx::detail {

namespace {

using Callbacks = std::unordered_map<std::uint64_t, std::function<void()>>;

struct Registry {
  std::mutex mutex;
  Callbacks* callbacks = new Callbacks;  // a pointer so a fork child can abandon the table
  std::uint64_t next_token = 1;
};

Registry& registry();

// fork() while another thread holds the mutex would leave it locked forever in the child, so
// the forking thread takes it first and both sides let go of it afterwards.
void lock_before_fork() noexcept { registry().mutex.lock(); }
void unlock_in_parent() noexcept { registry().mutex.unlock(); }

void reset_in_child() noexcept {
  Registry& table = registry();
  // The child has none of the parent's mq_notify registrations (mq_notify(3): not inherited
  // across fork), so no stored callback can ever run here: start empty. The old table is
  // abandoned, not destroyed: a callback's destructor may run arbitrary code (the Python
  // layer's drops references), which must not happen inside an atfork handler. Tokens keep
  // counting up, so a stale token from the parent can never name a new callback.
  table.callbacks = new Callbacks;
  // This thread locked the mutex in lock_before_fork() and is the only thread here.
  table.mutex.unlock();
}

// Deliberately never destroyed: a notification thread may still fire while the process exits.
Registry& registry() {
  static Registry* instance = [] {
    auto* created = new Registry;
    ::pthread_atfork(lock_before_fork, unlock_in_parent, reset_in_child);
    return created;
  }();
  return *instance;
}

// Built at load time, so the fork handlers exist before any thread can be using the table.
[[maybe_unused]] Registry& registry_at_load = registry();

std::uint64_t token_of(sigval value) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(value.sival_ptr));
}

}  // namespace

std::uint64_t store_notification_callback(std::function<void()> callback) {
  Registry& table = registry();
  std::lock_guard lock(table.mutex);
  const std::uint64_t token = table.next_token++;
  table.callbacks->emplace(token, std::move(callback));
  return token;
}

void drop_notification_callback(std::uint64_t token) noexcept {
  std::function<void()> dropped;  // destroyed outside the lock: it may run arbitrary code
  {
    Registry& table = registry();
    std::lock_guard lock(table.mutex);
    auto found = table.callbacks->find(token);
    if (found == table.callbacks->end()) return;
    dropped = std::move(found->second);
    table.callbacks->erase(found);
  }
}

// Not noexcept: a forced unwind must be able to leave through here (see the header).
void run_notification_callback(sigval value) { run_stored_callback(token_of(value)); }

void run_stored_callback(std::uint64_t token) {
  std::function<void()> callback;
  {
    Registry& table = registry();
    std::lock_guard lock(table.mutex);
    auto found = table.callbacks->find(token);
    if (found == table.callbacks->end()) return;  // cancelled after the kernel fired
    callback = std::move(found->second);
    table.callbacks->erase(found);
  }
  run_swallowing_errors(callback);
}

}  // namespace ipcxx::detail

// The process-wide table behind mq_notify(SIGEV_THREAD) callbacks.
#include "detail/notification_registry.hpp"

#include <mutex>
#include <unordered_map>
#include <utility>

namespace ipcxx::detail {

namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::function<void()>> callbacks;
  std::uint64_t next_token = 1;
};

// Deliberately never destroyed: a notification thread may still fire while the process exits.
Registry& registry() {
  static Registry* instance = new Registry;
  return *instance;
}

}  // namespace

std::uint64_t store_notification_callback(std::function<void()> callback) {
  Registry& table = registry();
  std::lock_guard lock(table.mutex);
  const std::uint64_t token = table.next_token++;
  table.callbacks.emplace(token, std::move(callback));
  return token;
}

void drop_notification_callback(std::uint64_t token) noexcept {
  std::function<void()> dropped;  // destroyed outside the lock: it may run arbitrary code
  {
    Registry& table = registry();
    std::lock_guard lock(table.mutex);
    auto found = table.callbacks.find(token);
    if (found == table.callbacks.end()) return;
    dropped = std::move(found->second);
    table.callbacks.erase(found);
  }
}

void run_notification_callback(sigval value) noexcept {
  const auto token = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(value.sival_ptr));
  std::function<void()> callback;
  {
    Registry& table = registry();
    std::lock_guard lock(table.mutex);
    auto found = table.callbacks.find(token);
    if (found == table.callbacks.end()) return;  // cancelled after the kernel fired
    callback = std::move(found->second);
    table.callbacks.erase(found);
  }
  try {
    callback();
  } catch (...) {
    // A notification thread has nobody to report to; callbacks handle their own errors.
  }
}

}  // namespace ipcxx::detail

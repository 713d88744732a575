// Retry helper for System V objects created under a random key (key=None).
#pragma once

#include <sys/ipc.h>

#include <cerrno>

#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"

namespace ipcxx::detail {

/// Calls get(key) with random keys until it does not fail with EEXIST. After as many
/// attempts as there are keys (32766) it gives up with Error(EEXIST) instead of spinning
/// forever like upstream (compatibility.md, sysv DC-29).
template <typename Get>
auto create_with_unique_key(Get&& get) {
  for (int attempt = 1;; ++attempt) {
    try {
      return get(sysv::random_key());
    } catch (const Error& error) {
      if (error.errno_value() != EEXIST || attempt >= 32766) throw;
    }
  }
}

}  // namespace ipcxx::detail

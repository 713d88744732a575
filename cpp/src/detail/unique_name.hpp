// Retry helper for objects created under a random name: draw again while the name is taken.
#pragma once

#include <cerrno>
#include <string>

#include "ipcxx/error.hpp"
#include "ipcxx/posix/open_flags.hpp"

namespace ipcxx::detail {

/// Calls open(name) with fresh random names until it does not fail with EEXIST.
template <typename Open>
auto create_with_unique_name(Open&& open) {
  for (;;) {
    try {
      return open(posix::random_name());
    } catch (const Error& error) {
      if (error.errno_value() != EEXIST) throw;
    }
  }
}

}  // namespace ipcxx::detail

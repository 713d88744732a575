// The one helper every syscall result goes through: reads errno at once and throws ipcxx::Error.
#pragma once

#include <cerrno>
#include <string_view>

#include "ipcxx/error.hpp"

namespace ipcxx::detail {

/// Throws Error for the current errno; call it right after the failing syscall.
[[noreturn]] inline void throw_errno(std::string_view call, std::string_view object) {
  const int saved = errno;
  throw Error(saved, call, object);
}

/// Returns `result` unless it equals `failure` (the syscall's error return), else throws Error.
template <typename T>
T check(T result, T failure, std::string_view call, std::string_view object) {
  if (result == failure) throw_errno(call, object);
  return result;
}

/// check() for the common "-1 on error" convention.
inline int check(int result, std::string_view call, std::string_view object) {
  return check<int>(result, -1, call, object);
}

}  // namespace ipcxx::detail

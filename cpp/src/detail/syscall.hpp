// The one helper every syscall result goes through: reads errno at once and throws ipcxx::Error.
#pragma once

#include <cerrno>
#include <string_view>

#include "ipcxx/error.hpp"

namespace ipcxx::detail {

/// Throws Error for the current errno; call it right after the failing syscall.
[[noreturn]] inline void throw_errno(Syscall call, std::string_view object) {
  const int saved = errno;
  throw Error(saved, call, object);
}

/// Returns `result` unless it equals `failure` (the syscall's error return), else throws Error.
template <typename T>
T check(T result, T failure, Syscall call, std::string_view object) {
  if (result == failure) throw_errno(call, object);
  return result;
}

/// check() for the common "-1 on error" convention.
inline int check(int result, Syscall call, std::string_view object) {
  return check<int>(result, -1, call, object);
}

// The string forms, kept for callers that name the call as text; Error::syscall() is then
// found by name (syscall_from_name), so it is typed all the same.

/// Throws Error for the current errno, naming the call as text.
[[noreturn]] inline void throw_errno(std::string_view call, std::string_view object) {
  const int saved = errno;
  throw Error(saved, call, object);
}

/// check() naming the call as text.
template <typename T>
T check(T result, T failure, std::string_view call, std::string_view object) {
  if (result == failure) throw_errno(call, object);
  return result;
}

/// check() for "-1 on error", naming the call as text.
inline int check(int result, std::string_view call, std::string_view object) {
  return check<int>(result, -1, call, object);
}

}  // namespace ipcxx::detail

// ipcxx::Error: the one exception type for failed system calls, carrying errno, call and object.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace ipcxx {

/// A failed system call. code().value() is the errno; what() reads like
/// "sem_open(/jobs): No such file or directory". Invalid arguments detected before any
/// syscall are reported with std::invalid_argument / std::out_of_range instead.
class Error : public std::system_error {
 public:
  /// Builds the error for `call` on `object` (a name, a key or an id as text).
  Error(int errno_value, std::string_view call, std::string_view object);

  /// The errno value reported by the kernel.
  int errno_value() const noexcept { return code().value(); }
  /// The system call that failed, e.g. "sem_open".
  const std::string& call() const noexcept { return call_; }
  /// The object the call was about: a name, a key or an id.
  const std::string& object() const noexcept { return object_; }

 private:
  std::string call_;
  std::string object_;
};

}  // namespace ipcxx

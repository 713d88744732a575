// Test helper: run a function in a forked child and collect its exit status; unique names.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ipcxx::testing {

/// A name no other test run uses: "/ipcxx_gt<pid>_<counter><random>".
std::string unique_name();

/// Unlinks `name` at scope exit through `Unlink` (a static unlink of a POSIX core class); a
/// name that is already gone is fine.
template <void (*Unlink)(std::string_view)>
struct NameGuard {
  std::string name;
  ~NameGuard() {
    try {
      Unlink(name);
    } catch (const std::exception&) {
    }
  }
};

/// Removes a System V object (anything with remove()) at scope exit; already gone is fine.
template <typename Handle>
struct Removal {
  const Handle& handle;
  ~Removal() {
    try {
      handle.remove();
    } catch (const std::exception&) {
    }
  }
};

/// A forked child running `body`; its return value is the exit code (exceptions give 99).
class ChildProcess {
 public:
  explicit ChildProcess(std::function<int()> body);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // kills and reaps a child still running

  /// Waits for the child; returns its exit code, or 128 + signal when killed.
  int wait();
  /// Sends SIGKILL.
  void kill();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

/// The exit code of a child that could not run its test here (enter_small_dev_shm refused).
inline constexpr int kChildSkipped = 77;

/// For a forked child: moves it into private IPC and mount namespaces whose /dev/shm is a new
/// tmpfs of `bytes`, filled until exactly `leave_free` bytes are free (a file "filler").
/// Returns false when not permitted (not root); throws std::runtime_error on other failures.
bool enter_small_dev_shm(std::size_t bytes, std::size_t leave_free);

/// Bytes free on /dev/shm (statvfs).
std::size_t dev_shm_free_bytes();

/// The names in /dev/shm, sorted.
std::vector<std::string> dev_shm_names();

/// A one-byte pipe for "I am ready" style handshakes between parent and child.
class Signal {
 public:
  Signal();
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  void notify();  ///< writes one byte
  bool wait();    ///< reads one byte; false at end of file

 private:
  int fds_[2] = {-1, -1};
};

}  // namespace ipcxx::testing

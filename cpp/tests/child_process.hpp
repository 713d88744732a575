// Test helper: run a function in a forked child and collect its exit status; unique names.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace ipcxx::testing {

/// A name no other test run uses: "/ipcxx_gt<pid>_<counter><random>".
std::string unique_name();

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

// Fork-based child processes and pipe handshakes for the cross-process GoogleTests.
#include "child_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <random>
#include <stdexcept>

namespace ipcxx::testing {

std::string unique_name() {
  static std::atomic<int> counter{0};
  std::random_device random;
  return "/ipcxx_gt" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(random() % 100000);
}

ChildProcess::ChildProcess(std::function<int()> body) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill();
    wait();
  }
}

int ChildProcess::wait() {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  }
  reaped_ = true;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

void ChildProcess::kill() { ::kill(pid_, SIGKILL); }

Signal::Signal() {
  if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
}

Signal::~Signal() {
  ::close(fds_[0]);
  ::close(fds_[1]);
}

void Signal::notify() {
  const char byte = 1;
  if (::write(fds_[1], &byte, 1) != 1) throw std::runtime_error("pipe write failed");
}

bool Signal::wait() {
  char byte = 0;
  return ::read(fds_[0], &byte, 1) == 1;
}

}  // namespace ipcxx::testing

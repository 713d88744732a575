// Fork-based child processes and pipe handshakes for the cross-process GoogleTests.
#include "child_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace ipcxx::testing {

std::string unique_name() {
  static std::atomic<int> counter{0};
  std::random_device random;
  return "/ipcxx_gt" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(random() % 100000);
}

std::size_t dev_shm_free_bytes() {
  struct statvfs info {};
  if (::statvfs("/dev/shm", &info) != 0) throw std::runtime_error("statvfs(/dev/shm) failed");
  return static_cast<std::size_t>(info.f_bavail) * info.f_frsize;
}

std::vector<std::string> dev_shm_names() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm"))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool enter_small_dev_shm(std::size_t bytes, std::size_t leave_free) {
  if (::unshare(CLONE_NEWIPC | CLONE_NEWNS) != 0) {
    if (errno == EPERM) return false;
    throw std::runtime_error("unshare failed");
  }
  // Without this our mount would propagate back to the parent's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    throw std::runtime_error("making / private failed");
  const std::string options = "size=" + std::to_string(bytes);
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, options.c_str()) != 0) {
    if (errno == EPERM) return false;
    throw std::runtime_error("mounting a tmpfs on /dev/shm failed");
  }
  const int fd = ::open("/dev/shm/filler", O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("creating /dev/shm/filler failed");
  const std::size_t free = dev_shm_free_bytes();
  const int error =
      free > leave_free ? ::posix_fallocate(fd, 0, static_cast<off_t>(free - leave_free)) : 0;
  ::close(fd);
  if (error != 0 || dev_shm_free_bytes() != leave_free)
    throw std::runtime_error("filling /dev/shm failed");
  return true;
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

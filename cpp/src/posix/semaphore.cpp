// ipcxx::posix::Semaphore on top of glibc's sem_* calls.
#include "ipcxx/posix/semaphore.hpp"

#include <fcntl.h>
#include <semaphore.h>
#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/syscall.hpp"
#include "detail/unique_name.hpp"
#include "ipcxx/posix/open_flags.hpp"

namespace ipcxx::posix {

namespace {

// glibc maps /dev/shm/sem.<name> and touches it on every call; a file that is too short to
// hold a sem_t (made by a foreign program, or truncated) turns acquire/release into SIGBUS
// (upstream #51, compatibility.md DC-23). Refuse such a file before sem_open maps it.
void reject_truncated_backing_file(const std::string& name) {
  std::string_view bare = name;
  while (!bare.empty() && bare.front() == '/') bare.remove_prefix(1);
  if (bare.empty() || bare.find('/') != std::string_view::npos) return;  // sem_open decides
  const std::string path = "/dev/shm/sem." + std::string(bare);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return;  // absent: nothing mapped yet
  if (S_ISREG(info.st_mode) && info.st_size < static_cast<off_t>(sizeof(sem_t))) {
    errno = EINVAL;
    detail::throw_errno(Syscall::sem_open, name);
  }
}

}  // namespace

Semaphore::Semaphore(std::string name, int flags, mode_t mode, unsigned initial_value)
    : name_(std::move(name)) {
  validate_open_flags(flags);
  validate_name(name_);
  if (!(flags & O_EXCL)) reject_truncated_backing_file(name_);
  handle_.reset(detail::check<sem_t*>(::sem_open(name_.c_str(), flags, mode, initial_value),
                                      SEM_FAILED, Syscall::sem_open, name_));
}

Semaphore Semaphore::create(std::string name, unsigned initial_value, mode_t mode) {
  return Semaphore(std::move(name), O_CREAT | O_EXCL, mode, initial_value);
}

Semaphore Semaphore::create_unique(int flags, mode_t mode, unsigned initial_value) {
  return detail::create_with_unique_name([&](std::string name) {
    return Semaphore(std::move(name), flags | O_CREAT | O_EXCL, mode, initial_value);
  });
}

void Semaphore::throw_closed() { throw std::logic_error("the semaphore has been closed"); }

void Semaphore::acquire() { detail::check(::sem_wait(checked_handle()), Syscall::sem_wait, name_); }

void Semaphore::throw_failure(Syscall call) const { detail::throw_errno(call, name_); }

bool Semaphore::acquire_for(std::chrono::nanoseconds timeout) {
  sem_t* handle = checked_handle();
  if (timeout.count() <= 0) return try_acquire();
  const timespec deadline = detail::Deadline(timeout).monotonic();
  if (::sem_clockwait(handle, CLOCK_MONOTONIC, &deadline) == 0) return true;
  if (errno == ETIMEDOUT) return false;
  detail::throw_errno(Syscall::sem_clockwait, name_);
}

int Semaphore::value() const {
  int value = 0;
  detail::check(::sem_getvalue(checked_handle(), &value), Syscall::sem_getvalue, name_);
  return value;
}

void Semaphore::unlink() const { unlink(name_); }

void Semaphore::unlink(std::string_view name) {
  const std::string text(name);
  validate_name(text);
  detail::check(::sem_unlink(text.c_str()), Syscall::sem_unlink, text);
}

}  // namespace ipcxx::posix

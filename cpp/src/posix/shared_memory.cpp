// ipcxx::posix::SharedMemory on top of shm_open/ftruncate/fstat/mmap.
#include "ipcxx/posix/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "detail/syscall.hpp"
#include "detail/unique_name.hpp"
#include "ipcxx/posix/open_flags.hpp"

namespace ipcxx::posix {

namespace {

struct Opened {
  int fd;
  bool created;
};

// With O_CREAT but no O_EXCL, shm_open does not say whether it created the object. Asking
// with two exclusive forms tells, so a failed resize never unlinks a pre-existing segment
// (upstream does: compatibility.md DC-7).
Opened open_and_learn_if_created(const std::string& name, int flags, mode_t mode) {
  if (!(flags & O_CREAT))
    return {detail::check(::shm_open(name.c_str(), flags, mode), "shm_open", name), false};
  if (flags & O_EXCL)
    return {detail::check(::shm_open(name.c_str(), flags, mode), "shm_open", name), true};
  for (;;) {
    const int fd = ::shm_open(name.c_str(), flags & ~O_CREAT, mode);
    if (fd >= 0) return {fd, false};
    if (errno != ENOENT) detail::throw_errno("shm_open", name);
    const int created = ::shm_open(name.c_str(), flags | O_EXCL, mode);
    if (created >= 0) return {created, true};
    if (errno != EEXIST) detail::throw_errno("shm_open", name);
    // Someone created it between the two calls: open it as existing.
  }
}

}  // namespace

SharedMemory::SharedMemory(std::string name, int flags, mode_t mode, std::size_t size,
                           bool read_only)
    : name_(std::move(name)), read_only_(read_only) {
  validate_open_flags(flags);
  validate_name(name_);
  const Opened opened =
      open_and_learn_if_created(name_, flags | (read_only ? O_RDONLY : O_RDWR), mode);
  fd_ = opened.fd;
  if (size == 0) return;
  if (::ftruncate(fd_, static_cast<off_t>(size)) == 0) return;
  const int saved = errno;
  ::close(std::exchange(fd_, -1));
  if (opened.created) ::shm_unlink(name_.c_str());
  errno = saved;
  detail::throw_errno("ftruncate", name_);
}

SharedMemory SharedMemory::create(std::string name, std::size_t size, mode_t mode) {
  return SharedMemory(std::move(name), O_CREAT | O_EXCL, mode, size);
}

SharedMemory SharedMemory::create_unique(int flags, mode_t mode, std::size_t size, bool read_only) {
  return detail::create_with_unique_name([&](std::string name) {
    return SharedMemory(std::move(name), flags | O_CREAT | O_EXCL, mode, size, read_only);
  });
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      fd_(std::exchange(other.fd_, -1)),
      read_only_(other.read_only_) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    name_ = std::move(other.name_);
    fd_ = std::exchange(other.fd_, -1);
    read_only_ = other.read_only_;
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t SharedMemory::size() const {
  struct stat info {};
  if (fd_ < 0) {
    errno = EBADF;
    detail::throw_errno("fstat", name_);
  }
  detail::check(::fstat(fd_, &info), "fstat", name_);
  return static_cast<std::size_t>(info.st_size);
}

void SharedMemory::resize(std::size_t size) {
  detail::check(::ftruncate(fd_, static_cast<off_t>(size)), "ftruncate", name_);
}

Mapping SharedMemory::map() const {
  const std::size_t length = size();
  if (length == 0) return Mapping(nullptr, 0, !read_only_);
  const int protection = read_only_ ? PROT_READ : PROT_READ | PROT_WRITE;
  void* address = ::mmap(nullptr, length, protection, MAP_SHARED, fd_, 0);
  if (address == MAP_FAILED) detail::throw_errno("mmap", name_);
  return Mapping(address, length, !read_only_);
}

void SharedMemory::close_fd() {
  if (fd_ < 0) return;
  // Keep the descriptor number when close() fails with EBADF: the caller closed it behind
  // our back and may want to know (upstream leaves `fd` unchanged then).
  detail::check(::close(fd_), "close", name_);
  fd_ = -1;
}

int SharedMemory::release_fd() noexcept { return std::exchange(fd_, -1); }

void SharedMemory::unlink() const { unlink(name_); }

void SharedMemory::unlink(std::string_view name) {
  const std::string text(name);
  validate_name(text);
  detail::check(::shm_unlink(text.c_str()), "shm_unlink", text);
}

}  // namespace ipcxx::posix

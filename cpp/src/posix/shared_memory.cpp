// ipcxx::posix::SharedMemory on top of shm_open/ftruncate/fstat/mmap.
#include "ipcxx/posix/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
    return {detail::check(::shm_open(name.c_str(), flags, mode), Syscall::shm_open, name), false};
  if (flags & O_EXCL)
    return {detail::check(::shm_open(name.c_str(), flags, mode), Syscall::shm_open, name), true};
  for (;;) {
    const int fd = ::shm_open(name.c_str(), flags & ~O_CREAT, mode);
    if (fd >= 0) return {fd, false};
    if (errno != ENOENT) detail::throw_errno(Syscall::shm_open, name);
    const int created = ::shm_open(name.c_str(), flags | O_EXCL, mode);
    if (created >= 0) return {created, true};
    if (errno != EEXIST) detail::throw_errno(Syscall::shm_open, name);
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
  fd_.reset(opened.fd);
  if (size == 0) return;
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) == 0) return;
  const int saved = errno;
  fd_.reset();
  if (opened.created) ::shm_unlink(name_.c_str());
  errno = saved;
  detail::throw_errno(Syscall::ftruncate, name_);
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
      fd_(std::move(other.fd_)),
      stale_fd_(std::exchange(other.stale_fd_, -1)),
      read_only_(other.read_only_) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    name_ = std::move(other.name_);
    fd_ = std::move(other.fd_);
    stale_fd_ = std::exchange(other.stale_fd_, -1);
    read_only_ = other.read_only_;
  }
  return *this;
}

std::size_t SharedMemory::size() const {
  struct stat info {};
  if (!fd_) throw Error(EBADF, Syscall::fstat, name_);
  detail::check(::fstat(fd_.get(), &info), Syscall::fstat, name_);
  return static_cast<std::size_t>(info.st_size);
}

void SharedMemory::resize(std::size_t size) {
  // Without a descriptor the kernel answers -1 with EBADF, as it did before close_fd().
  detail::check(::ftruncate(fd_.get(), static_cast<off_t>(size)), Syscall::ftruncate, name_);
}

void SharedMemory::allocate(std::size_t size) {
  if (!fd_) throw Error(EBADF, Syscall::fallocate, name_);
  // The pages are allocated past the end first (KEEP_SIZE) and the size is set last, so a
  // peer that waits for a non-zero size (Channel, RobustMutex) never maps a missing page.
  // tmpfs gives back everything one call allocated when a signal interrupts it (EINTR), so a
  // large object is allocated in steps short enough to finish between signals.
  constexpr std::size_t kStep = std::size_t{64} << 20;
  for (std::size_t offset = 0; offset < size;) {
    const std::size_t length = std::min(kStep, size - offset);
    if (::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0) {
      offset += length;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EOPNOTSUPP) detail::throw_errno(Syscall::fallocate, name_);
    // A filesystem without fallocate: glibc's posix_fallocate writes each block instead (the
    // size is set first, so a fast peer may map a page before it is written). It returns
    // the error number rather than setting errno.
    resize(size);
    int error = 0;
    do error = ::posix_fallocate(fd_.get(), 0, static_cast<off_t>(size));
    while (error == EINTR);
    if (error) throw Error(error, Syscall::fallocate, name_);
    return;
  }
  resize(size);
}

Mapping SharedMemory::map() const {
  const std::size_t length = size();
  if (length == 0) return Mapping(nullptr, 0, !read_only_);
  const int protection = read_only_ ? PROT_READ : PROT_READ | PROT_WRITE;
  void* address = ::mmap(nullptr, length, protection, MAP_SHARED, fd_.get(), 0);
  if (address == MAP_FAILED) detail::throw_errno(Syscall::mmap, name_);
  return Mapping(address, length, !read_only_);
}

void SharedMemory::close_fd() {
  // A stale number is reported again, never closed again: it may be someone else's file now.
  if (!fd_) {
    if (stale_fd_ >= 0) throw Error(EBADF, Syscall::close, name_);
    return;
  }
  const int number = fd_.get();
  const int failure = fd_.reset();
  if (failure == 0) return;
  // EBADF: the caller closed the number behind our back; upstream leaves `fd` showing it.
  if (failure == EBADF) stale_fd_ = number;
  throw Error(failure, Syscall::close, name_);
}

int SharedMemory::release_fd() noexcept {
  stale_fd_ = -1;
  return fd_.release();
}

void SharedMemory::unlink() const { unlink(name_); }

void SharedMemory::unlink(std::string_view name) {
  const std::string text(name);
  validate_name(text);
  detail::check(::shm_unlink(text.c_str()), Syscall::shm_unlink, text);
}

}  // namespace ipcxx::posix

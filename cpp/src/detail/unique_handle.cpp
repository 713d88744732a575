// The close calls behind the small handle owners: each reports errno and leaves errno alone.
#include "ipcxx/detail/unique_handle.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace ipcxx::detail {

namespace {
// Runs `close_call`, returning 0 or its errno, with the caller's errno restored: owners are
// reset on error paths that still have to report the errno of the call that failed first.
template <typename Close>
int errno_of(Close close_call) noexcept {
  const int saved = errno;
  const int failure = close_call() == 0 ? 0 : errno;
  errno = saved;
  return failure;
}
}  // namespace

int FdTraits::close(Handle handle) noexcept {
  // Never retried on EINTR: Linux has released the number already (close(2), "Dealing with
  // error returns from close()").
  return errno_of([handle] { return ::close(handle); });
}

int MqdTraits::close(Handle handle) noexcept {
  return errno_of([handle] { return ::mq_close(handle); });
}

int SemaphoreTraits::close(Handle handle) noexcept {
  return errno_of([handle] { return ::sem_close(handle); });
}

int UniqueMapping::reset() noexcept {
  void* address = std::exchange(address_, nullptr);
  const std::size_t length = std::exchange(length_, 0);
  if (address == nullptr || length == 0) return 0;
  return errno_of([address, length] { return ::munmap(address, length); });
}

}  // namespace ipcxx::detail

// Small move-only owners of raw handles (fd, mqd_t, sem_t*, a mapping), composed by the classes.
#pragma once

#include <mqueue.h>
#include <semaphore.h>

#include <cstddef>
#include <string_view>
#include <utility>

#include "ipcxx/error.hpp"

// These live under include/ because the public classes hold them as members (the POSIX
// semaphore's hot path is inline); they are not part of the supported API.
namespace ipcxx::detail {

/// How to close a plain file descriptor. close() returns 0 or the errno of the failure and
/// leaves errno as it found it.
struct FdTraits {
  using Handle = int;
  static constexpr Handle invalid() noexcept { return -1; }
  static int close(Handle handle) noexcept;
  static constexpr Syscall syscall = Syscall::close;
};

/// How to close a message queue descriptor (mq_close).
struct MqdTraits {
  using Handle = mqd_t;
  static constexpr Handle invalid() noexcept { return static_cast<mqd_t>(-1); }
  static int close(Handle handle) noexcept;
  static constexpr Syscall syscall = Syscall::mq_close;
};

/// How to close a named semaphore handle (sem_close).
struct SemaphoreTraits {
  using Handle = sem_t*;
  static constexpr Handle invalid() noexcept { return nullptr; }
  static int close(Handle handle) noexcept;
  static constexpr Syscall syscall = Syscall::sem_close;
};

/// Owns one handle; the destructor closes it. reset() and close() always FORGET the handle,
/// also when the close call fails: a close is never retried, because after it the number
/// may already belong to a file someone else opened (Linux releases a descriptor even when
/// close() reports EINTR or EIO; on EBADF it was not ours to begin with). Not thread-safe.
template <typename Traits>
class UniqueHandle {
 public:
  using Handle = typename Traits::Handle;

  UniqueHandle() noexcept = default;
  /// Takes ownership of `handle` (which may be invalid()).
  explicit UniqueHandle(Handle handle) noexcept : handle_(handle) {}
  UniqueHandle(UniqueHandle&& other) noexcept : handle_(other.release()) {}
  /// Closes the handle held (errors ignored), then takes other's.
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { reset(); }

  /// The handle, or Traits::invalid().
  Handle get() const noexcept { return handle_; }
  bool valid() const noexcept { return handle_ != Traits::invalid(); }
  explicit operator bool() const noexcept { return valid(); }

  /// Gives the handle up without closing it.
  [[nodiscard]] Handle release() noexcept { return std::exchange(handle_, Traits::invalid()); }

  /// Closes the handle held, if any, and takes `replacement`. The old handle is forgotten
  /// whatever the close says. Returns 0, or the errno of the failed close; errno is unchanged.
  int reset(Handle replacement = Traits::invalid()) noexcept {
    const Handle old = std::exchange(handle_, replacement);
    return old == Traits::invalid() ? 0 : Traits::close(old);
  }

  /// reset() that throws Error(errno, Traits::syscall, object) when the close failed; the
  /// handle is forgotten either way. Does nothing without a handle.
  void close(std::string_view object) {
    if (const int failure = reset(); failure != 0) throw Error(failure, Traits::syscall, object);
  }

 private:
  Handle handle_ = Traits::invalid();
};

using UniqueFd = UniqueHandle<FdTraits>;
using UniqueMqd = UniqueHandle<MqdTraits>;
using UniqueSemaphore = UniqueHandle<SemaphoreTraits>;

/// Owns one mmap()ed region (address + length); the destructor unmaps it. Same forgetting rule
/// as UniqueHandle: a failed munmap is reported once and never retried. Not thread-safe.
class UniqueMapping {
 public:
  UniqueMapping() noexcept = default;
  /// Takes ownership of `length` bytes mapped at `address` (nullptr or 0: nothing to unmap).
  UniqueMapping(void* address, std::size_t length) noexcept : address_(address), length_(length) {}
  UniqueMapping(UniqueMapping&& other) noexcept
      : address_(std::exchange(other.address_, nullptr)),
        length_(std::exchange(other.length_, 0)) {}
  /// Unmaps the region held (errors ignored), then takes other's.
  UniqueMapping& operator=(UniqueMapping&& other) noexcept {
    if (this != &other) {
      reset();
      address_ = std::exchange(other.address_, nullptr);
      length_ = std::exchange(other.length_, 0);
    }
    return *this;
  }
  UniqueMapping(const UniqueMapping&) = delete;
  UniqueMapping& operator=(const UniqueMapping&) = delete;
  ~UniqueMapping() { reset(); }

  void* address() const noexcept { return address_; }
  std::size_t length() const noexcept { return length_; }
  bool valid() const noexcept { return address_ != nullptr && length_ != 0; }

  /// Gives the region up without unmapping it; the caller must munmap(address, length).
  [[nodiscard]] std::pair<void*, std::size_t> release() noexcept {
    return {std::exchange(address_, nullptr), std::exchange(length_, 0)};
  }
  /// Unmaps and forgets the region, whatever munmap says. Returns 0 or munmap's errno;
  /// errno is unchanged.
  int reset() noexcept;
  /// reset() that throws Error(errno, Syscall::munmap, object) when munmap failed.
  void close(std::string_view object) {
    if (const int failure = reset(); failure != 0) throw Error(failure, Syscall::munmap, object);
  }

 private:
  void* address_ = nullptr;
  std::size_t length_ = 0;
};

}  // namespace ipcxx::detail

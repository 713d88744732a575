// ipcxx::posix::SharedMemory: a named POSIX shared memory object (shm_open) as an RAII owner.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "ipcxx/detail/unique_handle.hpp"
#include "ipcxx/posix/mapping.hpp"

namespace ipcxx::posix {

/// One open descriptor of a shared memory object. Not thread-safe for concurrent close_fd();
/// other calls may run concurrently. The destructor closes the descriptor, never unlinks.
///
/// A failed close_fd() never leaves a number behind that a later call (or the destructor)
/// would close or use again: by then it may belong to another file. One exception to what
/// fd() shows: when close() says EBADF, somebody closed the number behind our back and
/// upstream posix_ipc leaves `fd` unchanged, so fd() keeps showing that number (a "stale"
/// number, no longer owned: nothing closes, fstats or maps it, and close_fd() reports EBADF
/// again without calling close()). Any other close() failure (EINTR, EIO) has released the
/// number on Linux, so fd() reads -1 after it.
class SharedMemory {
 public:
  /// shm_open(name, flags | O_RDONLY or O_RDWR, mode), then ftruncate(size) when size != 0,
  /// whether the object is new or not. If that resize fails, an object this call created is
  /// unlinked again; an existing one is left alone. Throws std::invalid_argument for bad
  /// flags or a NUL in the name, ipcxx::Error (call "shm_open" or "ftruncate") otherwise.
  SharedMemory(std::string name, int flags, mode_t mode = 0600, std::size_t size = 0,
               bool read_only = false);

  /// Opens an existing object read-write.
  static SharedMemory open(std::string name) { return SharedMemory(std::move(name), 0); }
  /// Creates a new object of `size` bytes; throws Error(EEXIST) when the name is taken.
  static SharedMemory create(std::string name, std::size_t size, mode_t mode = 0600);
  /// Creates an object under a fresh random name, retrying on EEXIST.
  static SharedMemory create_unique(int flags = 0, mode_t mode = 0600, std::size_t size = 0,
                                    bool read_only = false);

  SharedMemory(SharedMemory&& other) noexcept;
  /// Closes the descriptor held (errors ignored), then takes other's.
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory() = default;

  /// The descriptor, or -1 after close_fd()/release_fd(); the stale number after a close_fd()
  /// that failed with EBADF (see the class comment).
  int fd() const noexcept { return fd_.valid() ? fd_.get() : stale_fd_; }
  /// True while this object owns an open descriptor (false once close_fd() ran, even failed).
  bool has_fd() const noexcept { return fd_.valid(); }
  /// The current size from fstat (reflects resizes by anyone). Throws Error(EBADF) when closed
  /// (call "fstat", without a syscall).
  std::size_t size() const;
  /// Grows or shrinks the object (ftruncate).
  void resize(std::size_t size);
  /// Grows the object to `size` bytes with every page allocated first (fallocate), so touching
  /// a mapping of it never raises SIGBUS for want of space. Throws Error (call "fallocate";
  /// ENOSPC when the filesystem is full, and then the size is left as it was).
  void allocate(std::size_t size);
  /// Maps the whole object (size() bytes); writable unless opened read-only.
  Mapping map() const;
  /// Closes the descriptor; mappings stay valid. Idempotent once it succeeded. Throws Error
  /// (call "close") when close() fails; the descriptor is forgotten either way (see above).
  void close_fd();
  /// Gives the descriptor up without closing it (the caller now owns it); returns it, or -1
  /// when none is owned (a stale number is not handed out).
  int release_fd() noexcept;
  /// Removes the name; memory is freed once every mapping and descriptor is gone.
  void unlink() const;
  /// shm_unlink(name).
  static void unlink(std::string_view name);

  const std::string& name() const noexcept { return name_; }
  bool read_only() const noexcept { return read_only_; }

 private:
  std::string name_;
  detail::UniqueFd fd_;
  int stale_fd_ = -1;  // shown by fd() after close() said EBADF; never used
  bool read_only_ = false;
};

}  // namespace ipcxx::posix

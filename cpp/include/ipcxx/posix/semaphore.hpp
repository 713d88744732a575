// ipcxx::posix::Semaphore: a named POSIX semaphore (sem_open family) as a move-only RAII owner.
#pragma once

#include <semaphore.h>
#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

#include "ipcxx/detail/unique_handle.hpp"

namespace ipcxx::posix {

/// One open handle to a named semaphore. Not safe for concurrent close() and use from two
/// threads (pin it, e.g. with a shared_ptr, if a waiter may outlive a closer); every other
/// call may run concurrently. The destructor closes the handle; it never unlinks the name.
class Semaphore {
 public:
  /// sem_open(name, flags, mode, initial_value). Throws std::invalid_argument for O_EXCL
  /// without O_CREAT or a name with a NUL byte, ipcxx::Error when the kernel refuses.
  Semaphore(std::string name, int flags, mode_t mode = 0600, unsigned initial_value = 0);

  /// Opens an existing semaphore; throws Error(ENOENT) when there is none.
  static Semaphore open(std::string name) { return Semaphore(std::move(name), 0); }
  /// Creates a new semaphore; throws Error(EEXIST) when the name is taken.
  static Semaphore create(std::string name, unsigned initial_value, mode_t mode = 0600);
  /// Creates a semaphore under a fresh random name ("/" + 5..12 letters), retrying on EEXIST.
  /// `flags` may add bits to O_CREAT | O_EXCL.
  static Semaphore create_unique(int flags = 0, mode_t mode = 0600, unsigned initial_value = 0);

  Semaphore(Semaphore&& other) noexcept = default;
  /// Closes the handle held (errors ignored), then takes other's.
  Semaphore& operator=(Semaphore&& other) noexcept = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore() = default;

  /// Waits without limit, then decrements. Throws Error(EINTR) when a signal interrupts.
  void acquire();
  /// Decrements if the value is positive; never blocks. Returns false when it is zero.
  bool try_acquire() {
    // Inline: the uncontended path is one glibc call; failures are handled out of line.
    if (::sem_trywait(checked_handle()) == 0) [[likely]]
      return true;
    if (errno == EAGAIN) return false;
    throw_failure(Syscall::sem_trywait);
  }
  /// Waits at most `timeout` (measured on CLOCK_MONOTONIC); false when it expired.
  /// A zero or negative timeout never blocks. Throws Error(EINTR) on a signal.
  bool acquire_for(std::chrono::nanoseconds timeout);
  /// Increments the value, waking one waiter; never blocks. Throws Error(EOVERFLOW) at the max.
  void release() {
    if (::sem_post(checked_handle()) != 0) [[unlikely]]
      throw_failure(Syscall::sem_post);
  }
  /// The current value (0 while waiters exist on Linux); never blocks.
  int value() const;

  /// Closes the handle (sem_close); the semaphore itself lives on. Idempotent. When sem_close
  /// fails (Error "sem_close") the handle is forgotten all the same, never closed twice.
  void close() { handle_.close(name_); }
  /// True until close().
  bool is_open() const noexcept { return handle_.valid(); }
  /// Removes the name; the semaphore is destroyed once every process has closed it.
  void unlink() const;
  /// Removes the semaphore named `name` (sem_unlink).
  static void unlink(std::string_view name);

  /// The name as passed to sem_open (or the generated one).
  const std::string& name() const noexcept { return name_; }

 private:
  sem_t* checked_handle() const {
    sem_t* handle = handle_.get();
    if (handle == nullptr) [[unlikely]]
      throw_closed();
    return handle;
  }
  [[noreturn]] static void throw_closed();
  [[noreturn]] void throw_failure(Syscall call) const;  // Error for errno and `call`

  std::string name_;
  detail::UniqueSemaphore handle_;
};

}  // namespace ipcxx::posix

// ipcxx::posix::Mapping: an mmap()ed view of a shared memory object, unmapped on destruction.
#pragma once

#include <cstddef>
#include <span>

namespace ipcxx::posix {

/// A mapped region. Move-only; the destructor unmaps. Safe to read and write from any thread
/// (the bytes are shared memory: synchronise with a semaphore).
class Mapping {
 public:
  Mapping() = default;
  /// Takes ownership of an existing mapping of `size` bytes at `address`.
  Mapping(void* address, std::size_t size, bool writable) noexcept
      : address_(address), size_(size), writable_(writable) {}
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  /// The mapped bytes; writing through them is allowed only when writable().
  std::span<std::byte> bytes() const noexcept { return {static_cast<std::byte*>(address_), size_}; }
  std::size_t size() const noexcept { return size_; }
  bool writable() const noexcept { return writable_; }
  /// Unmaps now (idempotent); bytes() is empty afterwards.
  void unmap() noexcept;

 private:
  void* address_ = nullptr;
  std::size_t size_ = 0;
  bool writable_ = false;
};

}  // namespace ipcxx::posix

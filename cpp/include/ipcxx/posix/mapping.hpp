// ipcxx::posix::Mapping: an mmap()ed view of a shared memory object, unmapped on destruction.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "ipcxx/detail/unique_handle.hpp"

namespace ipcxx::posix {

/// A mapped region. Move-only; the destructor unmaps. Safe to read and write from any thread
/// (the bytes are shared memory: synchronise with a semaphore).
class Mapping {
 public:
  Mapping() = default;
  /// Takes ownership of an existing mapping of `size` bytes at `address`.
  Mapping(void* address, std::size_t size, bool writable) noexcept
      : region_(address, size), writable_(writable) {}
  Mapping(Mapping&& other) noexcept = default;
  /// Unmaps the region held, then takes other's.
  Mapping& operator=(Mapping&& other) noexcept = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() = default;

  /// The mapped bytes; writing through them is allowed only when writable().
  std::span<std::byte> bytes() const noexcept {
    return {static_cast<std::byte*>(region_.address()), region_.length()};
  }
  std::size_t size() const noexcept { return region_.length(); }
  bool writable() const noexcept { return writable_; }
  /// Unmaps now (idempotent); bytes() is empty afterwards, even if munmap failed.
  void unmap() noexcept { region_.reset(); }
  /// Like unmap(), but throws Error (call "munmap") when munmap fails; forgotten either way.
  void unmap_or_throw() { region_.close("mapping"); }

 private:
  detail::UniqueMapping region_;
  bool writable_ = false;
};

}  // namespace ipcxx::posix

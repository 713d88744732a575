// ipcxx::posix::Mapping: munmap on destruction.
#include "ipcxx/posix/mapping.hpp"

#include <sys/mman.h>

#include <utility>

namespace ipcxx::posix {

Mapping::Mapping(Mapping&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      writable_(other.writable_) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    unmap();
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
    writable_ = other.writable_;
  }
  return *this;
}

Mapping::~Mapping() { unmap(); }

void Mapping::unmap() noexcept {
  if (address_ && size_) ::munmap(address_, size_);
  address_ = nullptr;
  size_ = 0;
}

}  // namespace ipcxx::posix

// This thread's reusable receive buffer, taken out of its slot for the length of one call: a
// receive nested in that call (a signal handler, a __del__, a GC callback) gets a buffer of its
// own instead of reallocating the one the outer call is about to receive into.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace ipcxx::python {

class BorrowedScratch {
 public:
  /// Buffers above this capacity are not kept by an idle thread.
  static constexpr std::size_t kKeptCapacity = 1024 * 1024;

  BorrowedScratch() : buffer_(std::move(slot())) {}
  BorrowedScratch(const BorrowedScratch&) = delete;
  BorrowedScratch& operator=(const BorrowedScratch&) = delete;
  ~BorrowedScratch() {
    std::vector<std::byte>& kept = slot();
    if (buffer_.capacity() <= kKeptCapacity && buffer_.capacity() > kept.capacity())
      kept = std::move(buffer_);
  }

  std::vector<std::byte>& get() noexcept { return buffer_; }

 private:
  static std::vector<std::byte>& slot() {
    thread_local std::vector<std::byte> kept;
    return kept;
  }

  std::vector<std::byte> buffer_;
};

}  // namespace ipcxx::python

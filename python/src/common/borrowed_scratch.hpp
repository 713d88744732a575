// This thread's reusable receive buffer, taken out of its slot for the length of one call: a
// receive nested in that call (a signal handler, a __del__, a GC callback) gets a buffer of its
// own instead of reallocating the one the outer call is about to receive into.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace ipcxx::python {

/// `Buffer` is default-constructible, movable and has capacity() (std::vector<std::byte>,
/// sysv::ReceiveBuffer).
template <typename Buffer>
class BasicBorrowedScratch {
 public:
  /// Buffers above this capacity are not kept by an idle thread.
  static constexpr std::size_t kKeptCapacity = 1024 * 1024;

  BasicBorrowedScratch() : buffer_(std::exchange(slot(), Buffer())) {}
  BasicBorrowedScratch(const BasicBorrowedScratch&) = delete;
  BasicBorrowedScratch& operator=(const BasicBorrowedScratch&) = delete;
  ~BasicBorrowedScratch() {
    Buffer& kept = slot();
    if (buffer_.capacity() <= kKeptCapacity && buffer_.capacity() > kept.capacity())
      kept = std::move(buffer_);
  }

  Buffer& get() noexcept { return buffer_; }

 private:
  static Buffer& slot() {
    thread_local Buffer kept;
    return kept;
  }

  Buffer buffer_;
};

using BorrowedScratch = BasicBorrowedScratch<std::vector<std::byte>>;

}  // namespace ipcxx::python

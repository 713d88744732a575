// The futex calls the channel's waits use, on a 32-bit word inside the shared segment.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>

namespace ipcxx::channel {

/// Sleeps while `word` holds `expected`, at most `timeout`. Returns false on EINTR (a signal:
/// the caller's handlers must run), true otherwise (woken, value changed, or timed out). Not
/// FUTEX_PRIVATE: the word is shared between processes.
inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout) {
  const auto ns = timeout.count() > 0 ? timeout.count() : 0;
  timespec relative{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  const long result = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT,
                                expected, &relative, nullptr, 0);
  return !(result < 0 && errno == EINTR);
}

/// Wakes every sleeper on `word`.
inline void futex_wake_all(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

/// The waking side of docs/channel.md "Waiting": after the state change (seq_cst), if a sleeper
/// announced itself (bit 0), move the sequence on and clear the bit, then wake. One load when
/// nobody sleeps.
inline void wake_if_waiting(std::atomic<std::uint32_t>& word) {
  std::uint32_t value = word.load(std::memory_order_seq_cst);
  if (!(value & 1)) return;
  while (!word.compare_exchange_weak(value, (value + 2) & ~1u, std::memory_order_seq_cst)) {
  }
  futex_wake_all(word);
}

/// The sleeping side: announce (set bit 0), returning the value to sleep on.
inline std::uint32_t announce_waiting(std::atomic<std::uint32_t>& word) {
  std::uint32_t value = word.load(std::memory_order_seq_cst);
  while (!(value & 1)) {
    if (word.compare_exchange_weak(value, value | 1, std::memory_order_seq_cst)) return value | 1;
  }
  return value;
}

}  // namespace ipcxx::channel

// Absolute deadlines for timed waits: monotonic by default, converted to CLOCK_REALTIME
// only for the calls (mq_timed*) that accept nothing else.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace ipcxx::detail {

inline constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

/// Reads `clock` as nanoseconds.
inline std::int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

/// Adds without overflowing: the result saturates at INT64_MAX (about 292 years).
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  return a + b;
}

inline timespec to_timespec(std::int64_t ns) {
  return timespec{static_cast<time_t>(ns / kNanosPerSecond),
                  static_cast<long>(ns % kNanosPerSecond)};
}

/// A point in time on CLOCK_MONOTONIC, so wall-clock jumps do not shorten or stretch waits.
class Deadline {
 public:
  explicit Deadline(std::chrono::nanoseconds timeout)
      : at_ns_(saturating_add(now_ns(CLOCK_MONOTONIC), timeout.count() > 0 ? timeout.count() : 0)) {
  }

  /// The deadline as an absolute CLOCK_MONOTONIC timespec.
  timespec monotonic() const { return to_timespec(at_ns_); }

  /// The same deadline expressed on CLOCK_REALTIME, for APIs that only take that clock.
  timespec realtime() const {
    const std::int64_t left = remaining_ns();
    return to_timespec(saturating_add(now_ns(CLOCK_REALTIME), left));
  }

  /// Nanoseconds left (0 once passed).
  std::int64_t remaining_ns() const {
    const std::int64_t left = at_ns_ - now_ns(CLOCK_MONOTONIC);
    return left > 0 ? left : 0;
  }

  bool expired() const { return remaining_ns() == 0; }

 private:
  std::int64_t at_ns_;
};

/// A CLOCK_REALTIME instant already passed: a timed mq call with it never sleeps.
inline constexpr timespec kPastDeadline{0, 0};

}  // namespace ipcxx::detail

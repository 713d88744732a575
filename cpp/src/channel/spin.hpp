// The adaptive spin's rule (docs/channel.md, "Waiting"): how long the next wait spins.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ipcxx::channel {

inline constexpr std::int64_t kMinSpinNs = 1000;
// A wait that slept but was ready within this many spin limits counts as short: a futex
// wake-up and the sleeper's return to its core take tens of microseconds by themselves, so
// such a wait says a full spin would probably have caught the event.
inline constexpr std::int64_t kShortWaitLimits = 2;

/// The spin after a wait that spun `spin` ns (of at most `limit`) and was ready while spinning:
/// twice as long, at most `limit`.
constexpr std::int64_t spin_after_caught(std::int64_t spin, std::int64_t limit) {
  return std::min(limit, spin * 2);
}

/// The spin after a wait that spun `spin` ns in vain, then slept: `waited` is the time from the
/// wait's start until it was ready (negative when it timed out or a signal ended it). A short
/// wait restores the full `limit` (learning only from spins that succeed would never grow a
/// spin that waits outlast: once short, it would stay short and every wait would sleep); a
/// long one halves the spin, down to 1 µs.
constexpr std::int64_t spin_after_sleep(std::int64_t spin, std::int64_t limit,
                                        std::int64_t waited) {
  if (waited >= 0 && waited <= kShortWaitLimits * limit) return limit;
  return std::min(limit, std::max(kMinSpinNs, spin / 2));
}

}  // namespace ipcxx::channel

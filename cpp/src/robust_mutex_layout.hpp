// The robust mutex segment's layout, shared by RobustMutex and the read-only inspection.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipcxx/robust_mutex.hpp"

namespace ipcxx::robust_mutex {

// "IPCXXRLK": written before `ready`, so an opener that sees kReady sees the magic too.
inline constexpr std::uint64_t kMagic = 0x4b4c525858435049ULL;
inline constexpr std::uint32_t kVersion = 2;         // 2: the acquisition counter
inline constexpr std::uint32_t kReady = 0x59444552;  // "REDY"; 0 while the creator initialises

// Lock state kept beside the pthread mutex. Written only by the thread holding the mutex.
enum State : std::uint32_t { kConsistent = 0, kInconsistent = 1, kNotRecoverable = 2 };

}  // namespace ipcxx::robust_mutex

namespace ipcxx {

// The segment: a header, then the mutex. Fields other than `ready` are read only after
// `ready == kReady` was observed with acquire ordering.
struct RobustMutex::Layout {
  std::atomic<std::uint32_t> ready;
  std::uint32_t version;
  std::uint64_t magic;  // at offset 8: the inspection reads it with pread before mapping
  // kInconsistent from an owner_died acquisition until make_consistent(); kNotRecoverable
  // once released without it (sticky: every later call reports it).
  std::atomic<std::uint32_t> state;
  // A death that locked() found (it had to take the lock to look) and left for the next
  // acquisition to report.
  std::atomic<std::uint32_t> unreported_death;
  // Numbers the acquisitions (written by each new holder, so unique): an object knows whether
  // the lock's latest acquisition is its own (RobustMutex::Hold).
  std::atomic<std::uint64_t> acquisitions;
  pthread_mutex_t mutex;
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(offsetof(RobustMutex::Layout, magic) == 8);

}  // namespace ipcxx

// The channel segment's layout (version 2) and its record headers; docs/channel.md is the spec.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ipcxx::channel {

inline constexpr char kMagic[8] = {'I', 'P', 'C', 'X', 'X', 'C', 'H', '\0'};
inline constexpr std::uint32_t kVersion = 2;         // 2: the end-of-stream words
inline constexpr std::uint32_t kReady = 0x59444552;  // "REDY"; 0 while the creator initialises
inline constexpr std::uint32_t kParticipants = 512;
inline constexpr std::size_t kHeaderBytes = 4096;
inline constexpr std::size_t kSlotBytes = 16;
inline constexpr std::size_t kRingOffset = kHeaderBytes + kParticipants * kSlotBytes;
inline constexpr std::size_t kRecordHeader = 16;
inline constexpr std::size_t kAlign = 16;

// Record states: the low 4 bits of a header's word0 (positions are multiples of 16).
enum State : std::uint64_t {
  kReserved = 1,
  kCommitted = 2,
  kClaimed = 3,
  kConsumed = 4,
  kPad = 5,
  kAbandoned = 6,
};
inline constexpr std::uint64_t kStateMask = 15;

// The fixed header at offset 0. Every hot word on its own cache line.
struct Header {
  char magic[8];
  std::uint32_t version;
  std::atomic<std::uint32_t> ready;
  std::uint64_t capacity;
  std::uint32_t participants;
  std::uint32_t unused;
  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint32_t> producer_lock;
  alignas(64) std::atomic<std::uint64_t> rhead;
  alignas(64) std::atomic<std::uint32_t> consumer_lock;
  alignas(64) std::atomic<std::uint64_t> head;
  alignas(64) std::atomic<std::uint32_t> data_word;
  alignas(64) std::atomic<std::uint32_t> space_word;
  alignas(64) std::atomic<std::uint64_t> lost;
  std::atomic<std::uint64_t> abandoned;
  // End of stream: producers declared and not finished (low 32 bits; never below the true
  // number, may stay above it after a death) | declarations ever made (high 32 bits).
  alignas(64) std::atomic<std::uint64_t> stream;
};
static_assert(sizeof(Header) <= kHeaderBytes);
static_assert(offsetof(Header, tail) == 64 && offsetof(Header, lost) == 512);
static_assert(offsetof(Header, stream) == 576);

inline constexpr std::uint64_t kDeclaration = std::uint64_t{1} << 32 | 1;  // one fetch_add
constexpr std::uint32_t producers_of(std::uint64_t stream) {
  return static_cast<std::uint32_t>(stream);
}
constexpr std::uint32_t declarations_of(std::uint64_t stream) {
  return static_cast<std::uint32_t>(stream >> 32);
}
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// One registered process: identity = pid << 42 | start time; 0 when free. `producer` is the
// registration's producer mark: 0, or incarnation << 2 | kMarked | kCounted (docs/channel.md,
// "End of stream"); a mark of another incarnation is a dead registration's.
struct Slot {
  std::atomic<std::uint64_t> identity;
  std::atomic<std::uint32_t> incarnation;
  std::atomic<std::uint32_t> producer;
};
inline constexpr std::uint32_t kMarked = 2;
inline constexpr std::uint32_t kCounted = 1;
static_assert(sizeof(Slot) == kSlotBytes);

// A record header inside the ring: word0 = position | state, word1 = length | owner << 32.
struct Record {
  std::atomic<std::uint64_t> word0;
  std::atomic<std::uint64_t> word1;
};
static_assert(sizeof(Record) == kRecordHeader);

/// Bytes a message of `size` occupies: header plus payload, rounded up to 16.
constexpr std::uint64_t record_bytes(std::uint64_t size) {
  return (kRecordHeader + size + kAlign - 1) & ~std::uint64_t{kAlign - 1};
}
constexpr std::uint64_t word1(std::uint64_t length, std::uint32_t owner) {
  return length | std::uint64_t{owner} << 32;
}
constexpr std::uint32_t length_of(std::uint64_t word1) { return static_cast<std::uint32_t>(word1); }
constexpr std::uint32_t owner_of(std::uint64_t word1) {
  return static_cast<std::uint32_t>(word1 >> 32);
}

}  // namespace ipcxx::channel

// ipcxx::Channel: the ring protocol of docs/channel.md (locks, records, waits, death recovery).
#include "ipcxx/channel.hpp"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

#include "channel/futex.hpp"
#include "channel/layout.hpp"
#include "channel/participants.hpp"
#include "channel/segment.hpp"
#include "channel/spin.hpp"
#include "detail/unique_name.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "ipcxx/process.hpp"

namespace ipcxx {

using namespace channel;

namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a lock may stay busy before a non-blocking step gives up (the holder is stopped or
// preempted; a dead one is taken over long before).
constexpr std::chrono::milliseconds kLockPatience{2};

}  // namespace

struct Channel::Local {
  std::string name;
  posix::Mapping mapping;
  Header* header = nullptr;
  Slot* slots = nullptr;
  std::byte* ring = nullptr;
  std::uint64_t capacity = 0;
  std::uint64_t mask = 0;
  std::uint64_t max_message = 0;

  // This process's registration: the tag is valid in the fork generation it was made in.
  std::atomic<std::uint64_t> tag_generation{~std::uint64_t{0}};
  std::atomic<std::uint32_t> tag{0};
  // End of stream: the fork generation in which this registration declared itself a producer
  // (and has not finished), and the one in which it finished (no more sends).
  std::atomic<std::uint64_t> producer_generation{~std::uint64_t{0}};
  std::atomic<std::uint64_t> finished_generation{~std::uint64_t{0}};
  // The stream word for which this object's last scan found no live producer (the stream has
  // ended as long as the word stays the same), and when the next scan is due.
  std::atomic<std::uint64_t> ended_stream{0};
  std::atomic<std::int64_t> next_scan_ns{0};
  // 0 when free, else the holder's fork generation + 1 (a fork child takes over a lock that a
  // parent's thread held at fork time: that thread does not exist in the child).
  std::atomic<std::uint64_t> register_lock{0};

  // Hints, refreshed when they say "full" or "empty".
  std::atomic<std::uint64_t> cached_head{0};
  std::atomic<std::uint64_t> cached_tail{0};

  std::atomic<std::int64_t> spin_limit_ns{std::chrono::nanoseconds(kDefaultSpin).count()};
  std::atomic<std::int64_t> spin_now_ns{std::chrono::nanoseconds(kDefaultSpin).count()};
  std::atomic<bool> spin_adaptive{true};

  // Set when a step gave up on a lock held too long (its holder is stopped or preempted):
  // until a step takes it again, the wait conditions count that lock as "not ready", so a
  // waiter sleeps in slices (and checks the holder) instead of retrying in a busy loop.
  std::atomic<bool> producer_lock_stalled{false};
  std::atomic<bool> consumer_lock_stalled{false};

  // Positions come from shared memory, which another process may have corrupted: the low bits
  // are masked so that a header read always lies inside the ring (a misaligned position then
  // fails the header's position check instead of reading past the mapping).
  Record* at(std::uint64_t position) const {
    return reinterpret_cast<Record*>(ring + (position & mask & ~std::uint64_t{kAlign - 1}));
  }
  std::byte* payload(std::uint64_t position) const {
    return ring + (position & mask) + kRecordHeader;
  }

  std::uint32_t own_tag();
  void release_tag() noexcept;

  std::uint32_t producer_tag() {
    if (producer_generation.load(std::memory_order_acquire) == fork_generation())
      return tag.load(std::memory_order_relaxed);
    return declare();
  }
  std::uint32_t declare();
  void finish() noexcept;
  void drop_producers(std::uint32_t count) noexcept;
  bool producers_ended();
  bool scan_producers();
  bool drained() const;
  bool end_reached() const;

  enum class Locked : std::uint8_t { taken, taken_over, busy };
  Locked take(std::atomic<std::uint32_t>& lock, std::uint32_t self);
  void take_consumer_lock_over() noexcept;
  bool take_consumer_lock(std::uint32_t self);
  void revert_claims() noexcept;

  std::size_t reserve(const std::size_t* sizes, std::size_t count, ChannelReservation* out);
  void commit(const ChannelReservation* reservations, std::size_t count) noexcept;
  void discard(const ChannelReservation& reservation) noexcept;
  // `fits` (optional): message i must fit fits[i] (else max_size applies to all).
  ChannelStatus claim(ChannelDelivery* out, std::size_t max_count, std::size_t max_size,
                      std::size_t& claimed, const std::span<std::byte>* fits = nullptr);
  void consume(const ChannelDelivery* deliveries, std::size_t count) noexcept;
  void advance_head() noexcept;

  bool readable() const;
  bool writable(std::size_t size) const;
  template <typename Ready>
  bool wait(std::atomic<std::uint32_t>& word, Ready&& ready, std::chrono::nanoseconds timeout,
            bool first_wait);
  void recover(bool for_data);
  bool recover_reserved(std::uint64_t position, std::uint32_t self);

  [[noreturn]] void corrupted(std::uint64_t position) const {
    throw ChannelError(name + ": corrupted record header at position " + std::to_string(position));
  }
};

// --- registration -------------------------------------------------------------------------

std::uint32_t Channel::Local::own_tag() {
  const std::uint64_t generation = fork_generation();
  if (tag_generation.load(std::memory_order_acquire) == generation)
    return tag.load(std::memory_order_relaxed);
  for (;;) {
    std::uint64_t holder = register_lock.load(std::memory_order_acquire);
    if (holder == generation + 1) {
      sched_yield();  // another thread of this process registers
    } else if (register_lock.compare_exchange_weak(holder, generation + 1,
                                                   std::memory_order_acquire)) {
      break;
    }
    if (tag_generation.load(std::memory_order_acquire) == generation)
      return tag.load(std::memory_order_relaxed);
  }
  struct Unlock {
    std::atomic<std::uint64_t>& lock;
    ~Unlock() { lock.store(0, std::memory_order_release); }
  } unlock{register_lock};
  if (tag_generation.load(std::memory_order_acquire) != generation) {
    tag.store(register_participant(slots, own_identity()), std::memory_order_relaxed);
    tag_generation.store(generation, std::memory_order_release);
  }
  return tag.load(std::memory_order_relaxed);
}

void Channel::Local::release_tag() noexcept {
  // Only the process that registered gives the slot back (not a fork child that inherited it).
  if (tag_generation.load(std::memory_order_acquire) != fork_generation()) return;
  finish();  // closing a producer finishes it
  unregister_participant(slots, tag.load(std::memory_order_relaxed));
  tag_generation.store(~std::uint64_t{0}, std::memory_order_release);
}

// --- end of stream (docs/channel.md, "End of stream") -------------------------------------

// Marks this registration's slot, then counts it (producers + 1 and declarations + 1 in one
// step), then marks it counted: a death between the steps leaves the count high, never low.
std::uint32_t Channel::Local::declare() {
  const std::uint64_t generation = fork_generation();
  if (finished_generation.load(std::memory_order_acquire) == generation)
    throw ChannelError(name + ": this Channel object has finished sending (finish() or close)");
  const std::uint32_t self = own_tag();
  for (;;) {  // one declaration per registration: the registration lock serialises threads
    std::uint64_t holder = register_lock.load(std::memory_order_acquire);
    if (holder == generation + 1) {
      sched_yield();
    } else if (register_lock.compare_exchange_weak(holder, generation + 1,
                                                   std::memory_order_acquire)) {
      break;
    }
  }
  struct Unlock {
    std::atomic<std::uint64_t>& lock;
    ~Unlock() { lock.store(0, std::memory_order_release); }
  } unlock{register_lock};
  if (producer_generation.load(std::memory_order_acquire) == generation) return self;
  if (finished_generation.load(std::memory_order_acquire) == generation)
    throw ChannelError(name + ": this Channel object has finished sending (finish() or close)");
  Slot& slot = slots[(self & 1023) - 1];
  const std::uint32_t mark = (self >> 10) << 2 | kMarked;
  // The slot's previous owner (dead: the slot is ours now) may have left a counted mark.
  const std::uint32_t old = slot.producer.exchange(mark, std::memory_order_seq_cst);
  if (old & kCounted) drop_producers(1);
  header->stream.fetch_add(kDeclaration, std::memory_order_seq_cst);
  slot.producer.store(mark | kCounted, std::memory_order_seq_cst);
  producer_generation.store(generation, std::memory_order_release);
  return self;
}

void Channel::Local::finish() noexcept {
  const std::uint64_t generation = fork_generation();
  finished_generation.store(generation, std::memory_order_release);
  if (producer_generation.load(std::memory_order_acquire) != generation) return;
  producer_generation.store(~std::uint64_t{0}, std::memory_order_release);
  const std::uint32_t self = tag.load(std::memory_order_relaxed);
  std::uint32_t mark = (self >> 10) << 2 | kMarked | kCounted;
  if (slots[(self & 1023) - 1].producer.compare_exchange_strong(mark, 0, std::memory_order_seq_cst))
    drop_producers(1);
  wake_if_waiting(header->data_word);
}

// producers - count, never below 0 (a corrupting process could otherwise borrow from the
// declarations).
void Channel::Local::drop_producers(std::uint32_t count) noexcept {
  std::uint64_t stream = header->stream.load(std::memory_order_seq_cst);
  while (producers_of(stream) >= count &&
         !header->stream.compare_exchange_weak(stream, stream - count, std::memory_order_seq_cst)) {
  }
}

// The fast check: one load. True when some producer declared and none is counted, or this
// object's last scan found none alive and nobody declared or finished since.
bool Channel::Local::producers_ended() {
  const std::uint64_t stream = header->stream.load(std::memory_order_seq_cst);
  if (declarations_of(stream) == 0) return false;
  return producers_of(stream) == 0 || stream == ended_stream.load(std::memory_order_relaxed);
}

// The exact check: every marked slot's owner is looked up (/proc); a dead one's mark is retired
// (and its count dropped). Ended when none is alive and no declaration happened meanwhile.
bool Channel::Local::scan_producers() {
  const std::uint32_t self = own_tag();
  const std::uint64_t before = header->stream.load(std::memory_order_seq_cst);
  if (declarations_of(before) == 0) return false;
  if (producers_of(before) == 0) return true;
  bool ended = true;
  for (std::uint32_t index = 0; index < kParticipants; ++index) {
    std::uint32_t mark = slots[index].producer.load(std::memory_order_seq_cst);
    if (mark == 0) continue;
    if (tag_alive(slots, make_tag(index, mark >> 2), self)) {
      ended = false;  // a live producer (or one declaring); the dead are still retired
      continue;
    }
    const std::uint32_t seen = mark;
    if (slots[index].producer.compare_exchange_strong(mark, 0, std::memory_order_seq_cst) &&
        (seen & kCounted)) {
      drop_producers(1);
      wake_if_waiting(header->data_word);
    }
  }
  const std::uint64_t after = header->stream.load(std::memory_order_seq_cst);
  if (!ended || declarations_of(after) != declarations_of(before)) return false;
  ended_stream.store(after, std::memory_order_relaxed);
  return true;
}

// Read after the producers' check: nothing left to claim (rhead, then tail).
bool Channel::Local::drained() const {
  const std::uint64_t rhead = header->rhead.load(std::memory_order_seq_cst);
  return rhead >= header->tail.load(std::memory_order_seq_cst);
}

bool Channel::Local::end_reached() const {
  const std::uint64_t stream = header->stream.load(std::memory_order_seq_cst);
  if (declarations_of(stream) == 0) return false;
  if (producers_of(stream) != 0 && stream != ended_stream.load(std::memory_order_relaxed))
    return false;
  return drained();
}

// --- locks --------------------------------------------------------------------------------

Channel::Local::Locked Channel::Local::take(std::atomic<std::uint32_t>& lock, std::uint32_t self) {
  Clock::time_point started{};
  for (unsigned round = 0;; ++round) {
    std::uint32_t holder = lock.load(std::memory_order_relaxed);
    if (holder == 0) {
      if (lock.compare_exchange_weak(holder, self, std::memory_order_acquire,
                                     std::memory_order_relaxed))
        return Locked::taken;
      continue;
    }
    if (round < 128) {
      cpu_relax();
      continue;
    }
    // The clock every round (a yield may cost a whole time slice on a loaded machine), the
    // holder's liveness (a /proc read) every 32nd.
    if (round % 32 == 0 && !tag_alive(slots, holder, self)) {
      if (lock.compare_exchange_strong(holder, self, std::memory_order_acquire))
        return Locked::taken_over;
      continue;
    }
    const auto now = Clock::now();
    if (started == Clock::time_point{}) started = now;
    if (now - started > kLockPatience) return Locked::busy;
    sched_yield();
  }
}

// The dead holder may have marked records CLAIMED without moving rhead: they were never
// handed out, so they become deliverable again (docs/channel.md, "The locks").
void Channel::Local::revert_claims() noexcept {
  std::uint64_t position = header->rhead.load(std::memory_order_relaxed);
  const std::uint64_t tail = header->tail.load(std::memory_order_acquire);
  while (position < tail) {
    Record* record = at(position);
    const std::uint64_t word0 = record->word0.load(std::memory_order_acquire);
    if ((word0 & ~kStateMask) != position) return;
    const std::uint64_t length = length_of(record->word1.load(std::memory_order_relaxed));
    const std::uint64_t state = word0 & kStateMask;
    if (state == kClaimed) {
      record->word0.store(position | kCommitted, std::memory_order_release);
    } else if (state != kPad && state != kAbandoned) {
      return;
    }
    const std::uint64_t span = state == kPad ? length : record_bytes(length);
    if (span == 0 || span > capacity) return;
    position += span;
  }
}

bool Channel::Local::take_consumer_lock(std::uint32_t self) {
  const Locked locked = take(header->consumer_lock, self);
  consumer_lock_stalled.store(locked == Locked::busy, std::memory_order_relaxed);
  if (locked == Locked::busy) return false;
  if (locked == Locked::taken_over) revert_claims();
  return true;
}

// --- producer -----------------------------------------------------------------------------

std::size_t Channel::Local::reserve(const std::size_t* sizes, std::size_t count,
                                    ChannelReservation* out) {
  const std::uint32_t self = producer_tag();
  const Locked locked = take(header->producer_lock, self);
  producer_lock_stalled.store(locked == Locked::busy, std::memory_order_relaxed);
  if (locked == Locked::busy) return 0;
  // Nothing to repair after a takeover: a dead holder's headers at or beyond tail are
  // unreachable, and tail moved only over complete RESERVED headers.
  const std::uint64_t tail = header->tail.load(std::memory_order_relaxed);
  if (tail % kAlign != 0) {  // a corrupting process: a PAD written there would cross the end
    header->producer_lock.store(0, std::memory_order_release);
    corrupted(tail);
  }
  std::uint64_t head = cached_head.load(std::memory_order_relaxed);
  std::uint64_t position = tail;
  std::size_t reserved = 0;
  for (; reserved < count; ++reserved) {
    const std::uint64_t bytes = record_bytes(sizes[reserved]);
    const std::uint64_t offset = position & mask;
    const std::uint64_t pad = offset + bytes > capacity ? capacity - offset : 0;
    const std::uint64_t end = position + pad + bytes;
    if (end - head > capacity) {
      head = header->head.load(std::memory_order_acquire);
      cached_head.store(head, std::memory_order_relaxed);
      if (end - head > capacity) break;
    }
    if (pad) {
      Record* filler = at(position);
      filler->word1.store(word1(pad, self), std::memory_order_relaxed);
      filler->word0.store(position | kPad, std::memory_order_relaxed);
      position += pad;
    }
    Record* record = at(position);
    record->word1.store(word1(sizes[reserved], self), std::memory_order_relaxed);
    record->word0.store(position | kReserved, std::memory_order_relaxed);
    out[reserved] = {position, payload(position), sizes[reserved]};
    position += bytes;
  }
  if (reserved) header->tail.store(position, std::memory_order_release);
  header->producer_lock.store(0, std::memory_order_release);
  return reserved;
}

void Channel::Local::commit(const ChannelReservation* reservations, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i)
    at(reservations[i].position)
        ->word0.store(reservations[i].position | kCommitted, std::memory_order_seq_cst);
  wake_if_waiting(header->data_word);
}

void Channel::Local::discard(const ChannelReservation& reservation) noexcept {
  Record* record = at(reservation.position);
  std::uint64_t expected = reservation.position | kReserved;
  if (record->word0.compare_exchange_strong(expected, reservation.position | kAbandoned,
                                            std::memory_order_seq_cst))
    header->abandoned.fetch_add(1, std::memory_order_relaxed);
  wake_if_waiting(header->data_word);
}

// --- consumer -----------------------------------------------------------------------------

ChannelStatus Channel::Local::claim(ChannelDelivery* out, std::size_t max_count,
                                    std::size_t max_size, std::size_t& claimed,
                                    const std::span<std::byte>* fits) {
  claimed = 0;
  const std::uint32_t self = own_tag();
  if (!take_consumer_lock(self)) return ChannelStatus::would_block;
  const std::uint64_t start = header->rhead.load(std::memory_order_relaxed);
  std::uint64_t position = start;
  std::uint64_t tail = cached_tail.load(std::memory_order_relaxed);
  ChannelStatus status = ChannelStatus::would_block;
  bool skipped = false;
  std::uint64_t bad = UINT64_MAX;
  while (claimed < max_count) {
    if (position >= tail) {
      tail = header->tail.load(std::memory_order_acquire);
      cached_tail.store(tail, std::memory_order_relaxed);
      if (position >= tail) break;
    }
    Record* record = at(position);
    const std::uint64_t word0 = record->word0.load(std::memory_order_acquire);
    const std::uint64_t length = length_of(record->word1.load(std::memory_order_relaxed));
    const std::uint64_t state = word0 & kStateMask;
    if ((word0 & ~kStateMask) != position) {
      bad = position;
      break;
    }
    if (state == kReserved) break;  // FIFO: nothing behind an uncommitted record
    if (state == kPad) {
      if (length < kRecordHeader || length > capacity - (position & mask)) {
        bad = position;
        break;
      }
      position += length;
      skipped = true;
      continue;
    }
    // A record never straddles the end of the ring: a length that would is corrupted (and
    // copying it would read past the mapping).
    if (length > max_message || (position & mask) + record_bytes(length) > capacity ||
        (state != kCommitted && state != kAbandoned)) {
      bad = position;
      break;
    }
    if (state == kAbandoned) {
      position += record_bytes(length);
      skipped = true;
      continue;
    }
    if (length > (fits ? fits[claimed].size() : max_size)) {
      if (claimed == 0) {
        status = ChannelStatus::too_large;
        out[0] = {position, nullptr, length};
      }
      break;
    }
    record->word1.store(word1(length, self), std::memory_order_relaxed);
    record->word0.store(position | kClaimed, std::memory_order_relaxed);
    out[claimed++] = {position, payload(position), length};
    position += record_bytes(length);
  }
  if (position != start) header->rhead.store(position, std::memory_order_seq_cst);
  header->consumer_lock.store(0, std::memory_order_release);
  if (skipped) advance_head();
  if (claimed) return ChannelStatus::done;
  if (bad != UINT64_MAX) corrupted(bad);
  return status;
}

void Channel::Local::consume(const ChannelDelivery* deliveries, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i)
    at(deliveries[i].position)
        ->word0.store(deliveries[i].position | kConsumed, std::memory_order_seq_cst);
  advance_head();
}

// Frees every finished record at head. Consumers finishing out of order cooperate: each marks
// CONSUMED then tries; seq_cst on both sides means one of two racing consumers sees the other's
// mark (docs/channel.md, "Consumer").
void Channel::Local::advance_head() noexcept {
  std::uint64_t head = header->head.load(std::memory_order_seq_cst);
  bool moved = false;
  for (;;) {
    if (head >= header->rhead.load(std::memory_order_seq_cst)) break;
    Record* record = at(head);
    const std::uint64_t word0 = record->word0.load(std::memory_order_seq_cst);
    if ((word0 & ~kStateMask) != head) break;  // head moved on and the space was reused
    const std::uint64_t state = word0 & kStateMask;
    if (state != kConsumed && state != kPad && state != kAbandoned) break;
    const std::uint64_t length = length_of(record->word1.load(std::memory_order_relaxed));
    const std::uint64_t span = state == kPad ? length : record_bytes(length);
    if (span == 0 || span > capacity) break;  // stale read; the CAS below would fail anyway
    if (header->head.compare_exchange_strong(head, head + span, std::memory_order_seq_cst)) {
      head += span;
      moved = true;
    }
  }
  if (moved) wake_if_waiting(header->space_word);
}

// --- waits --------------------------------------------------------------------------------

bool Channel::Local::readable() const {
  if (consumer_lock_stalled.load(std::memory_order_relaxed) &&
      header->consumer_lock.load(std::memory_order_relaxed) != 0)
    return false;
  const std::uint64_t position = header->rhead.load(std::memory_order_acquire);
  if (position >= header->tail.load(std::memory_order_acquire)) return false;
  const std::uint64_t word0 = at(position)->word0.load(std::memory_order_acquire);
  return (word0 & ~kStateMask) != position || (word0 & kStateMask) != kReserved;
}

bool Channel::Local::writable(std::size_t size) const {
  if (producer_lock_stalled.load(std::memory_order_relaxed) &&
      header->producer_lock.load(std::memory_order_relaxed) != 0)
    return false;
  const std::uint64_t tail = header->tail.load(std::memory_order_acquire);
  const std::uint64_t head = header->head.load(std::memory_order_acquire);
  const std::uint64_t bytes = record_bytes(size);
  const std::uint64_t offset = tail & mask;
  const std::uint64_t pad = offset + bytes > capacity ? capacity - offset : 0;
  return tail + pad + bytes - head <= capacity;
}

template <typename Ready>
bool Channel::Local::wait(std::atomic<std::uint32_t>& word, Ready&& ready,
                          std::chrono::nanoseconds timeout, bool first_wait) {
  const auto started = Clock::now();
  // An adaptive first wait that spun in vain learns from how long it slept (spin.hpp).
  std::int64_t spun = -1;
  std::int64_t limit = 0;
  if (first_wait) {
    const std::chrono::nanoseconds spin(spin_now_ns.load(std::memory_order_relaxed));
    limit = spin_limit_ns.load(std::memory_order_relaxed);
    const bool adaptive = spin_adaptive.load(std::memory_order_relaxed);
    if (spin.count() > 0) {
      const auto spin_end = started + std::min(spin, timeout);
      do {
        if (ready()) {
          if (adaptive)
            spin_now_ns.store(spin_after_caught(spin.count(), limit), std::memory_order_relaxed);
          return true;
        }
        for (int i = 0; i < 8; ++i) cpu_relax();
      } while (Clock::now() < spin_end);
      if (adaptive) spun = spin.count();
    }
  }
  const auto learn = [&](bool was_ready) {
    if (spun < 0) return was_ready;
    const std::int64_t waited =
        was_ready ? std::chrono::nanoseconds(Clock::now() - started).count() : -1;
    spin_now_ns.store(spin_after_sleep(spun, limit, waited), std::memory_order_relaxed);
    return was_ready;
  };
  for (;;) {
    const std::uint32_t expected = announce_waiting(word);
    if (ready()) return learn(true);
    const auto elapsed = Clock::now() - started;
    if (elapsed >= timeout) return learn(false);
    const std::chrono::nanoseconds slice =
        std::min<std::chrono::nanoseconds>(timeout - elapsed, kSlice);
    const auto slept_from = Clock::now();
    if (!futex_wait(word, expected, slice)) return learn(false);  // a signal: let handlers run
    if (ready()) return learn(true);
    // A whole slice without a wake-up: maybe a participant died holding what we wait for.
    if (Clock::now() - slept_from >= slice) {
      recover(&word == &header->data_word);
      if (ready()) return learn(true);
    }
  }
}

// Returns true when the record at `position` was RESERVED by a dead producer and is now
// ABANDONED.
bool Channel::Local::recover_reserved(std::uint64_t position, std::uint32_t self) {
  if (position >= header->tail.load(std::memory_order_acquire)) return false;
  Record* record = at(position);
  std::uint64_t word0 = record->word0.load(std::memory_order_acquire);
  if (word0 != (position | kReserved)) return false;
  if (tag_alive(slots, owner_of(record->word1.load(std::memory_order_acquire)), self)) return false;
  if (!record->word0.compare_exchange_strong(word0, position | kAbandoned,
                                             std::memory_order_seq_cst))
    return false;
  header->abandoned.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Channel::Local::recover(bool for_data) {
  const std::uint32_t self = own_tag();
  bool changed = false;
  // Locks held by the dead: taken over and released, so that waiters not contending for them
  // (a consumer waiting for data while a dead consumer holds the lock) move on too.
  std::uint32_t holder = header->producer_lock.load(std::memory_order_acquire);
  if (holder && !tag_alive(slots, holder, self) &&
      header->producer_lock.compare_exchange_strong(holder, self, std::memory_order_acquire)) {
    header->producer_lock.store(0, std::memory_order_release);
    changed = true;
  }
  holder = header->consumer_lock.load(std::memory_order_acquire);
  if (holder && !tag_alive(slots, holder, self) &&
      header->consumer_lock.compare_exchange_strong(holder, self, std::memory_order_acquire)) {
    revert_claims();
    header->consumer_lock.store(0, std::memory_order_release);
    changed = true;
  }
  // A consumer waits at rhead: its producer may be dead.
  changed |= recover_reserved(header->rhead.load(std::memory_order_acquire), self);
  // A consumer waits for the end: producers may have died.
  if (for_data && !producers_ended()) scan_producers();
  // A producer waits for head: records claimed by dead consumers are lost.
  advance_head();
  for (int step = 0; step < 4096; ++step) {
    const std::uint64_t head = header->head.load(std::memory_order_acquire);
    if (head >= header->rhead.load(std::memory_order_acquire)) break;
    Record* record = at(head);
    std::uint64_t word0 = record->word0.load(std::memory_order_acquire);
    if (word0 != (head | kClaimed) ||
        tag_alive(slots, owner_of(record->word1.load(std::memory_order_acquire)), self))
      break;
    if (record->word0.compare_exchange_strong(word0, head | kConsumed, std::memory_order_seq_cst))
      header->lost.fetch_add(1, std::memory_order_relaxed);
    advance_head();
    changed = true;
  }
  if (changed) {
    wake_if_waiting(header->data_word);
    wake_if_waiting(header->space_word);
  }
}

// --- Channel ------------------------------------------------------------------------------

namespace {

std::unique_ptr<Channel::Local> make_local(std::string name, posix::Mapping mapping) {
  auto local = std::make_unique<Channel::Local>();
  local->name = std::move(name);
  local->mapping = std::move(mapping);
  std::byte* base = local->mapping.bytes().data();
  local->header = reinterpret_cast<Header*>(base);
  local->slots = reinterpret_cast<Slot*>(base + kHeaderBytes);
  local->ring = base + kRingOffset;
  // From the mapping's own size, not from the header again: another process may rewrite the
  // header between the opener's validation and this read (the size was checked to match).
  local->capacity = local->mapping.size() - kRingOffset;
  local->mask = local->capacity - 1;
  local->max_message = local->capacity / 2 - kRecordHeader;
  const std::uint64_t head = local->header->head.load(std::memory_order_acquire);
  local->cached_head.store(head, std::memory_order_relaxed);
  local->cached_tail.store(head, std::memory_order_relaxed);
  return local;
}

}  // namespace

Channel::Channel(std::unique_ptr<Local> local) : local_(std::move(local)) {}

Channel::Channel(std::string name, bool create, std::size_t capacity, mode_t mode) {
  posix::validate_name(name);
  const std::size_t ring = ring_capacity(capacity);
  posix::Mapping mapping = channel::open_or_create(name, create, ring, mode);
  local_ = make_local(std::move(name), std::move(mapping));
}

Channel Channel::create(std::string name, std::size_t capacity, mode_t mode) {
  posix::validate_name(name);
  const std::size_t ring = channel::ring_capacity(capacity);
  posix::Mapping mapping = channel::create(name, ring, mode);
  return Channel(make_local(std::move(name), std::move(mapping)));
}

std::size_t Channel::ring_capacity(std::size_t capacity) {
  return channel::ring_capacity(capacity);
}

std::size_t Channel::capacity_for_message(std::size_t size) noexcept {
  // max_message_size() == capacity / 2 - kRecordHeader.
  if (size > kMaxCapacity / 2 - kRecordHeader) return 0;
  return std::max(kMinCapacity, std::bit_ceil(2 * (size + kRecordHeader)));
}

Channel Channel::create_unique(std::size_t capacity, mode_t mode) {
  const std::size_t ring = ring_capacity(capacity);
  return detail::create_with_unique_name([&](std::string name) {
    posix::Mapping mapping = channel::create(name, ring, mode);
    return Channel(make_local(std::move(name), std::move(mapping)));
  });
}

Channel::Channel(Channel&& other) noexcept = default;

Channel& Channel::operator=(Channel&& other) noexcept {
  if (this != &other) {
    if (local_) local_->release_tag();
    local_ = std::move(other.local_);
  }
  return *this;
}

Channel::~Channel() {
  if (local_) local_->release_tag();
}

const std::string& Channel::name() const noexcept { return local_->name; }
std::size_t Channel::capacity() const noexcept { return local_->capacity; }
std::size_t Channel::max_message_size() const noexcept { return local_->max_message; }
std::uint64_t Channel::lost() const noexcept {
  return local_->header->lost.load(std::memory_order_relaxed);
}
std::uint64_t Channel::abandoned() const noexcept {
  return local_->header->abandoned.load(std::memory_order_relaxed);
}

void Channel::set_spin(std::chrono::nanoseconds spin, bool adaptive) {
  if (spin.count() < 0) throw std::invalid_argument("spin must not be negative");
  local_->spin_limit_ns.store(spin.count(), std::memory_order_relaxed);
  local_->spin_now_ns.store(spin.count(), std::memory_order_relaxed);
  local_->spin_adaptive.store(adaptive, std::memory_order_relaxed);
}

bool Channel::spin_adaptive() const noexcept {
  return local_->spin_adaptive.load(std::memory_order_relaxed);
}

std::chrono::nanoseconds Channel::spin() const noexcept {
  return std::chrono::nanoseconds(local_->spin_limit_ns.load(std::memory_order_relaxed));
}

std::chrono::nanoseconds Channel::spin_current() const noexcept {
  return std::chrono::nanoseconds(local_->spin_now_ns.load(std::memory_order_relaxed));
}

namespace {

void check_size(std::size_t size, std::size_t max_message) {
  if (size <= max_message) [[likely]]
    return;
  const std::size_t fits = Channel::capacity_for_message(size);
  throw std::length_error(
      "a message of " + std::to_string(size) + " bytes can never fit in this channel (at most " +
      std::to_string(max_message) + " bytes; " +
      (fits ? "a channel of capacity " + std::to_string(fits) + " or more would hold it)"
            : "no channel can hold it: the largest capacity is " +
                  std::to_string(Channel::kMaxCapacity) + ")"));
}

}  // namespace

ChannelStatus Channel::try_reserve(std::size_t size, ChannelReservation& out) {
  check_size(size, local_->max_message);
  return local_->reserve(&size, 1, &out) ? ChannelStatus::done : ChannelStatus::would_block;
}

ChannelStatus Channel::try_send(std::span<const std::byte> data) {
  ChannelReservation reservation;
  const ChannelStatus status = try_reserve(data.size(), reservation);
  if (status != ChannelStatus::done) return status;
  if (!data.empty()) std::memcpy(reservation.data, data.data(), data.size());
  local_->commit(&reservation, 1);
  return ChannelStatus::done;
}

std::size_t Channel::try_send_many(std::span<const std::span<const std::byte>> messages) {
  constexpr std::size_t kBatch = 64;
  std::size_t sizes[kBatch];
  ChannelReservation reservations[kBatch];
  // Every size first: a message that can never fit is refused before any is sent.
  for (const auto& message : messages) check_size(message.size(), local_->max_message);
  std::size_t sent = 0;
  while (sent < messages.size()) {
    const std::size_t batch = std::min(kBatch, messages.size() - sent);
    for (std::size_t i = 0; i < batch; ++i) sizes[i] = messages[sent + i].size();
    const std::size_t reserved = local_->reserve(sizes, batch, reservations);
    for (std::size_t i = 0; i < reserved; ++i)
      if (sizes[i]) std::memcpy(reservations[i].data, messages[sent + i].data(), sizes[i]);
    local_->commit(reservations, reserved);
    sent += reserved;
    if (reserved < batch) break;
  }
  return sent;
}

void Channel::commit(const ChannelReservation& reservation) noexcept {
  local_->commit(&reservation, 1);
}

void Channel::discard(const ChannelReservation& reservation) noexcept {
  local_->discard(reservation);
}

ChannelStatus Channel::try_claim(ChannelDelivery& out, std::size_t max_size) {
  std::size_t claimed = 0;
  return local_->claim(&out, 1, max_size, claimed);
}

std::size_t Channel::try_claim_many(std::span<ChannelDelivery> out) {
  std::size_t claimed = 0;
  if (out.empty()) return 0;
  local_->claim(out.data(), out.size(), SIZE_MAX, claimed);
  return claimed;
}

void Channel::consume(std::span<const ChannelDelivery> deliveries) noexcept {
  local_->consume(deliveries.data(), deliveries.size());
}

void Channel::consume_lost(const ChannelDelivery& delivery) noexcept {
  local_->header->lost.fetch_add(1, std::memory_order_relaxed);
  consume(delivery);
}

bool Channel::wait_readable(std::chrono::nanoseconds timeout, bool first_wait) {
  Local& local = *local_;
  return local.wait(
      local.header->data_word, [&] { return local.readable() || local.end_reached(); }, timeout,
      first_wait);
}

void Channel::declare_producer() { local_->producer_tag(); }

void Channel::finish() noexcept { local_->finish(); }

bool Channel::finished() const noexcept {
  return local_->finished_generation.load(std::memory_order_acquire) == fork_generation();
}

bool Channel::ended() {
  Local& local = *local_;
  if (!local.producers_ended()) {
    // The exact check reads /proc for every live producer: at most once per slice per object
    // (a waiter's recovery also runs it after every slice without a wake-up).
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    const std::int64_t now_ns = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
    if (now_ns < local.next_scan_ns.load(std::memory_order_relaxed)) return false;
    local.next_scan_ns.store(now_ns + std::chrono::nanoseconds(kSlice).count(),
                             std::memory_order_relaxed);
    if (!local.scan_producers()) return false;
  }
  return local.drained();
}

bool Channel::wait_writable(std::size_t size, std::chrono::nanoseconds timeout, bool first_wait) {
  check_size(size, local_->max_message);
  Local& local = *local_;
  return local.wait(
      local.header->space_word, [&] { return local.writable(size); }, timeout, first_wait);
}

namespace {

// Deadline bookkeeping of the blocking conveniences.
struct Budget {
  std::optional<Clock::time_point> deadline;
  explicit Budget(std::optional<std::chrono::nanoseconds> timeout) {
    if (!timeout) return;
    const auto now = Clock::now();
    // A timeout beyond the clock's range (nanoseconds::max()) waits without limit instead of
    // overflowing into the past.
    if (*timeout <= Clock::time_point::max() - now) deadline = now + *timeout;
  }
  // nullopt once expired.
  std::optional<std::chrono::nanoseconds> left() const {
    if (!deadline) return std::chrono::hours(24);
    const auto now = Clock::now();
    if (now >= *deadline) return std::nullopt;
    return *deadline - now;
  }
};

}  // namespace

bool Channel::send(std::span<const std::byte> data,
                   std::optional<std::chrono::nanoseconds> timeout) {
  const Budget budget(timeout);
  for (bool first = true;; first = false) {
    if (try_send(data) == ChannelStatus::done) return true;
    const auto left = budget.left();
    if (!left) return false;
    wait_writable(data.size(), *left, first);
  }
}

std::optional<std::vector<std::byte>> Channel::receive(
    std::optional<std::chrono::nanoseconds> timeout) {
  const Budget budget(timeout);
  for (bool first = true;; first = false) {
    ChannelDelivery delivery;
    if (try_claim(delivery) == ChannelStatus::done) {
      try {
        std::vector<std::byte> message(delivery.data, delivery.data + delivery.size);
        consume(delivery);
        return message;
      } catch (...) {
        consume_lost(delivery);  // claimed but not handed out: never left blocking head
        throw;
      }
    }
    if (ended()) return std::nullopt;
    const auto left = budget.left();
    if (!left) return std::nullopt;
    wait_readable(*left, first);
  }
}

namespace {

// The loop of every blocking form: attempt() until it returns true, with a wait between
// attempts, or until the budget is spent (false). The guards are made once, after it (a
// guard's construction samples std::uncaught_exceptions(), a TLS call in libstdc++).
template <typename Attempt, typename Wait>
bool retry(std::optional<std::chrono::nanoseconds> timeout, Attempt&& attempt, Wait&& wait) {
  const Budget budget(timeout);
  for (bool first = true;; first = false) {
    if (attempt()) return true;
    const auto left = budget.left();
    if (!left) return false;
    wait(*left, first);
  }
}

}  // namespace

std::optional<ChannelReservationGuard> Channel::try_reserve(std::size_t size) {
  ChannelReservation reservation;
  if (try_reserve(size, reservation) != ChannelStatus::done) return std::nullopt;
  return ChannelReservationGuard(local_.get(), reservation);
}

std::optional<ChannelReservationGuard> Channel::reserve_for(std::size_t size,
                                                            std::chrono::nanoseconds timeout) {
  ChannelReservation reservation;
  if (!retry(
          timeout, [&] { return try_reserve(size, reservation) == ChannelStatus::done; },
          [&](std::chrono::nanoseconds left, bool first) { wait_writable(size, left, first); }))
    return std::nullopt;
  return ChannelReservationGuard(local_.get(), reservation);
}

ChannelReservationGuard Channel::reserve(std::size_t size) {
  ChannelReservation reservation;
  retry(
      std::nullopt, [&] { return try_reserve(size, reservation) == ChannelStatus::done; },
      [&](std::chrono::nanoseconds left, bool first) { wait_writable(size, left, first); });
  return ChannelReservationGuard(local_.get(), reservation);
}

std::optional<ChannelDeliveryGuard> Channel::try_claim() {
  ChannelDelivery delivery;
  if (try_claim(delivery) != ChannelStatus::done) return std::nullopt;
  return ChannelDeliveryGuard(local_.get(), delivery);
}

std::optional<ChannelDeliveryGuard> Channel::claim_for(std::chrono::nanoseconds timeout) {
  ChannelDelivery delivery;
  bool at_end = false;  // the loop also stops at the end of the stream
  if (!retry(
          timeout, [&] { return try_claim(delivery) == ChannelStatus::done || (at_end = ended()); },
          [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); }) ||
      at_end)
    return std::nullopt;
  return ChannelDeliveryGuard(local_.get(), delivery);
}

ChannelDeliveryGuard Channel::claim() {
  ChannelDelivery delivery;
  bool at_end = false;
  retry(
      std::nullopt,
      [&] { return try_claim(delivery) == ChannelStatus::done || (at_end = ended()); },
      [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); });
  if (at_end) throw ChannelEndOfStream(local_->name + ": end of stream");
  return ChannelDeliveryGuard(local_.get(), delivery);
}

ChannelReceived Channel::try_receive_into(std::span<std::byte> buffer) {
  ChannelDelivery delivery;
  const ChannelStatus status = try_claim(delivery, buffer.size());
  if (status == ChannelStatus::would_block && ended()) return {ChannelStatus::ended, 0};
  if (status != ChannelStatus::done)
    return {status, status == ChannelStatus::too_large ? delivery.size : 0};
  if (delivery.size) std::memcpy(buffer.data(), delivery.data, delivery.size);
  local_->consume(&delivery, 1);
  return {ChannelStatus::done, delivery.size};
}

ChannelReceivedMany Channel::try_receive_many_into(std::span<const std::span<std::byte>> buffers,
                                                   std::span<std::size_t> sizes) {
  if (buffers.empty()) throw std::invalid_argument("receive_many_into: no buffer");
  if (sizes.size() < buffers.size())
    throw std::invalid_argument("receive_many_into: fewer sizes than buffers");
  constexpr std::size_t kBatch = 64;  // claimed and consumed together, as try_send_many
  ChannelDelivery deliveries[kBatch];
  std::size_t done = 0;
  while (done < buffers.size()) {
    const std::size_t batch = std::min(kBatch, buffers.size() - done);
    std::size_t claimed = 0;
    ChannelStatus status = ChannelStatus::would_block;
    try {
      status = local_->claim(deliveries, batch, SIZE_MAX, claimed, buffers.data() + done);
    } catch (const ChannelError&) {
      if (done == 0) throw;
      break;  // what was copied is handed out; the next call meets the corrupted header
    }
    for (std::size_t i = 0; i < claimed; ++i) {
      if (deliveries[i].size)
        std::memcpy(buffers[done + i].data(), deliveries[i].data, deliveries[i].size);
      sizes[done + i] = deliveries[i].size;
    }
    if (claimed) local_->consume(deliveries, claimed);
    done += claimed;
    if (done == 0) {
      if (status == ChannelStatus::too_large) return {status, 0, deliveries[0].size};
      if (ended()) return {ChannelStatus::ended, 0, 0};
      return {ChannelStatus::would_block, 0, 0};
    }
    if (claimed < batch) break;
  }
  return {ChannelStatus::done, done, 0};
}

ChannelReceivedMany Channel::receive_many_into_for(std::span<const std::span<std::byte>> buffers,
                                                   std::span<std::size_t> sizes,
                                                   std::chrono::nanoseconds timeout) {
  ChannelReceivedMany received;
  retry(
      timeout,
      [&] {
        return (received = try_receive_many_into(buffers, sizes)).status !=
               ChannelStatus::would_block;
      },
      [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); });
  return received;
}

ChannelReceivedMany Channel::receive_many_into(std::span<const std::span<std::byte>> buffers,
                                               std::span<std::size_t> sizes) {
  ChannelReceivedMany received;
  retry(
      std::nullopt,
      [&] {
        return (received = try_receive_many_into(buffers, sizes)).status !=
               ChannelStatus::would_block;
      },
      [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); });
  return received;
}

ChannelReceived Channel::receive_into_for(std::span<std::byte> buffer,
                                          std::chrono::nanoseconds timeout) {
  ChannelReceived received;
  // A too-long message is not waited past: it is there, only the buffer is short.
  retry(
      timeout,
      [&] { return (received = try_receive_into(buffer)).status != ChannelStatus::would_block; },
      [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); });
  return received;
}

ChannelReceived Channel::receive_into(std::span<std::byte> buffer) {
  ChannelReceived received;
  retry(
      std::nullopt,
      [&] { return (received = try_receive_into(buffer)).status != ChannelStatus::would_block; },
      [&](std::chrono::nanoseconds left, bool first) { wait_readable(left, first); });
  return received;
}

// --- guards -------------------------------------------------------------------------------

ChannelReservationGuard::ChannelReservationGuard(Channel::Local* local,
                                                 const ChannelReservation& reservation) noexcept
    : local_(local), reservation_(reservation), uncaught_(std::uncaught_exceptions()) {}

// A moved guard keeps the count of its creation, as the Library Fundamentals TS's scope_fail
// does (and a move costs no TLS call).
ChannelReservationGuard::ChannelReservationGuard(ChannelReservationGuard&& other) noexcept
    : local_(std::exchange(other.local_, nullptr)),
      reservation_(other.reservation_),
      uncaught_(other.uncaught_) {}

ChannelReservationGuard& ChannelReservationGuard::operator=(
    ChannelReservationGuard&& other) noexcept {
  if (this != &other) {
    if (local_) finish();
    local_ = std::exchange(other.local_, nullptr);
    reservation_ = other.reservation_;
    uncaught_ = other.uncaught_;
  }
  return *this;
}

void ChannelReservationGuard::finish() noexcept {
  if (std::uncaught_exceptions() > uncaught_)
    discard();
  else
    commit();
}

void ChannelReservationGuard::commit() noexcept {
  if (Channel::Local* local = std::exchange(local_, nullptr)) local->commit(&reservation_, 1);
}

void ChannelReservationGuard::discard() noexcept {
  if (Channel::Local* local = std::exchange(local_, nullptr)) local->discard(reservation_);
}

ChannelDeliveryGuard::ChannelDeliveryGuard(Channel::Local* local,
                                           const ChannelDelivery& delivery) noexcept
    : local_(local), delivery_(delivery), uncaught_(std::uncaught_exceptions()) {}

ChannelDeliveryGuard::ChannelDeliveryGuard(ChannelDeliveryGuard&& other) noexcept
    : local_(std::exchange(other.local_, nullptr)),
      delivery_(other.delivery_),
      uncaught_(other.uncaught_) {}

ChannelDeliveryGuard& ChannelDeliveryGuard::operator=(ChannelDeliveryGuard&& other) noexcept {
  if (this != &other) {
    if (local_) finish();
    local_ = std::exchange(other.local_, nullptr);
    delivery_ = other.delivery_;
    uncaught_ = other.uncaught_;
  }
  return *this;
}

void ChannelDeliveryGuard::finish() noexcept {
  if (std::uncaught_exceptions() > uncaught_)
    consume_lost();
  else
    consume();
}

void ChannelDeliveryGuard::consume() noexcept {
  if (Channel::Local* local = std::exchange(local_, nullptr)) local->consume(&delivery_, 1);
}

void ChannelDeliveryGuard::consume_lost() noexcept {
  if (Channel::Local* local = std::exchange(local_, nullptr)) {
    local->header->lost.fetch_add(1, std::memory_order_relaxed);
    local->consume(&delivery_, 1);
  }
}

void Channel::unlink() const { posix::SharedMemory::unlink(local_->name); }

void Channel::unlink(std::string_view name) { posix::SharedMemory::unlink(name); }

std::size_t Channel::segment_size(std::size_t capacity) noexcept { return kRingOffset + capacity; }

}  // namespace ipcxx

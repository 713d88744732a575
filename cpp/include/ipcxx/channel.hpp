// ipcxx::Channel: a multi-producer, multi-consumer message ring in a POSIX shared memory segment,
// robust to a participant killed at any instruction (protocol: docs/channel.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ipcxx {

/// The named segment is not a channel of this layout (size, magic, version, bad fields), its
/// creator never finished initialising it, or a record header read from it is corrupted.
class ChannelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A message space taken by try_reserve(): write `size` bytes at `data`, then commit() or
/// discard() it through the channel that reserved it.
struct ChannelReservation {
  std::uint64_t position = 0;
  std::byte* data = nullptr;
  std::size_t size = 0;
};

/// A message taken by try_claim(): read `size` bytes at `data`, then consume() it through the
/// channel that claimed it (the bytes may be overwritten by producers after that).
struct ChannelDelivery {
  std::uint64_t position = 0;
  const std::byte* data = nullptr;
  std::size_t size = 0;
};

/// What a non-blocking attempt found. `would_block`: no space (producer) or no message
/// (consumer) now, or a lock busy for longer than a few milliseconds; `too_large`: the next
/// message does not fit the caller's buffer (it stays queued).
/// `ended` (receive_into() only): the stream has ended and nothing is left (see ended()).
enum class ChannelStatus : std::uint8_t { done, would_block, too_large, ended };

/// claim() found the end of the stream (docs/channel.md, "End of stream"): every producer
/// finished or died and nothing is left to claim.
class ChannelEndOfStream : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a receive_into() found: done (`size` bytes were written to the buffer), would_block (no
/// message in time) or too_large (the next message has `size` bytes, more than the buffer
/// holds; it stays queued). True when done.
struct ChannelReceived {
  ChannelStatus status = ChannelStatus::would_block;
  std::size_t size = 0;
  explicit operator bool() const noexcept { return status == ChannelStatus::done; }
};

/// What a receive_many_into() found: done (`count` messages, message i's `sizes[i]` bytes
/// written to buffer i), would_block, too_large (the next message has `size` bytes, more than
/// the first buffer holds; it stays queued) or ended. True when done.
struct ChannelReceivedMany {
  ChannelStatus status = ChannelStatus::would_block;
  std::size_t count = 0;
  std::size_t size = 0;
  explicit operator bool() const noexcept { return status == ChannelStatus::done; }
};

class ChannelReservationGuard;
class ChannelDeliveryGuard;

/// One process's handle on a channel. Thread-safe: any number of threads may send and receive
/// through one object. Move-only; the destructor unmaps and releases this process's
/// participant slot (never unlinks). Reservations and deliveries must be finished before the
/// object that made them is destroyed (one left over is recovered as a dead participant's).
class Channel {
 public:
  static constexpr std::size_t kDefaultCapacity = std::size_t{1} << 20;
  static constexpr std::size_t kMinCapacity = 4096;
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 32;
  /// The longest sleep between death checks and signal checks of a wait.
  static constexpr std::chrono::milliseconds kSlice{20};
  /// The default spin before sleeping (adaptive below it, see set_spin()).
  static constexpr std::chrono::microseconds kDefaultSpin{50};

  /// Opens the channel `name`; with `create`, creates it (ring of `capacity` bytes, rounded up
  /// to a power of two ≥ 4096) when it does not exist. Throws std::invalid_argument for a bad
  /// name or capacity, ipcxx::Error for a failed syscall, ChannelError for a segment that is
  /// not a channel.
  explicit Channel(std::string name, bool create = false, std::size_t capacity = kDefaultCapacity,
                   mode_t mode = 0600);
  /// Creates a new channel `name`; throws Error(EEXIST) when the name is taken (whatever it
  /// holds), like RobustMutex::create.
  static Channel create(std::string name, std::size_t capacity = kDefaultCapacity,
                        mode_t mode = 0600);
  /// Creates a channel under a fresh random name.
  static Channel create_unique(std::size_t capacity = kDefaultCapacity, mode_t mode = 0600);
  /// The ring a `capacity` argument gives: the next power of two, at least kMinCapacity.
  /// Throws std::invalid_argument beyond kMaxCapacity.
  static std::size_t ring_capacity(std::size_t capacity);
  /// The smallest ring whose max_message_size() holds a message of `size` bytes (0 when none
  /// can: more than kMaxCapacity / 2 - 16).
  static std::size_t capacity_for_message(std::size_t size) noexcept;

  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&& other) noexcept;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();

  const std::string& name() const noexcept;
  /// Ring bytes (a power of two).
  std::size_t capacity() const noexcept;
  /// The longest message that can ever be sent: capacity() / 2 - 16 bytes.
  std::size_t max_message_size() const noexcept;
  /// Messages claimed by consumers that died before consuming them (shared by all openers).
  std::uint64_t lost() const noexcept;
  /// Reservations whose producer died (or discarded) before committing.
  std::uint64_t abandoned() const noexcept;

  /// The spin before sleeping. adaptive: at most `spin`, halved after a wait that slept longer
  /// than twice `spin`, restored after a shorter one, doubled after one that ended while
  /// spinning (docs/channel.md, "Waiting"); fixed otherwise.
  void set_spin(std::chrono::nanoseconds spin, bool adaptive = false);
  /// The spin set last (for an adaptive one, its upper bound).
  std::chrono::nanoseconds spin() const noexcept;
  /// Whether the spin adapts (the default) rather than staying fixed.
  bool spin_adaptive() const noexcept;
  /// The spin the next wait starts with: for an adaptive spin, where the adaptation stands
  /// (1 µs up to spin()); for a fixed one, spin().
  std::chrono::nanoseconds spin_current() const noexcept;

  // Non-blocking steps (never sleep; a busy lock is retried for at most a few ms).

  /// Copies `data` in as one message. Throws std::length_error when it is longer than
  /// max_message_size().
  ChannelStatus try_send(std::span<const std::byte> data);
  /// Sends the longest prefix of `messages` that fits now, as one reservation; returns how
  /// many were sent (0: none fits now). Throws std::length_error for a message too long.
  std::size_t try_send_many(std::span<const std::span<const std::byte>> messages);
  /// Reserves a message of `size` bytes; done fills `out`.
  ChannelStatus try_reserve(std::size_t size, ChannelReservation& out);
  /// Makes a reservation deliverable and wakes sleeping consumers.
  void commit(const ChannelReservation& reservation) noexcept;
  /// Gives a reservation up: it is never delivered (counted in abandoned()).
  void discard(const ChannelReservation& reservation) noexcept;

  /// Claims the next message if its size is at most `max_size`; too_large leaves it queued and
  /// stores its size in out.size. Throws ChannelError for a corrupted header.
  ChannelStatus try_claim(ChannelDelivery& out, std::size_t max_size = SIZE_MAX);
  /// Claims up to `out.size()` messages in order; returns how many (0: none now).
  std::size_t try_claim_many(std::span<ChannelDelivery> out);
  /// Finishes deliveries: frees their space and wakes sleeping producers.
  void consume(std::span<const ChannelDelivery> deliveries) noexcept;
  void consume(const ChannelDelivery& delivery) noexcept { consume({&delivery, 1}); }
  /// Finishes a delivery the caller could not hand on (counted in lost()).
  void consume_lost(const ChannelDelivery& delivery) noexcept;

  // Waits: spin (first_wait only), then sleep on the futex word, for at most `timeout`.
  // True when the step may now succeed, false when the time ran out or a signal arrived
  // (EINTR). A wait that slept without progress runs the death recovery of docs/channel.md.

  /// Waits until a message may be claimable, or the stream may have ended (see ended()).
  bool wait_readable(std::chrono::nanoseconds timeout, bool first_wait = true);
  /// Waits until a message of `size` bytes may fit.
  bool wait_writable(std::size_t size, std::chrono::nanoseconds timeout, bool first_wait = true);

  // Scope guards (zero copy): reserve() waits without limit, try_reserve() never,
  // reserve_for() at most `timeout` (nullopt when it expires); the same for claim(). A wait
  // interrupted by a signal goes on waiting (until the timeout); the lock patience of the
  // non-blocking steps applies. Each throws what try_reserve()/try_claim() throw.

  /// A message space of `size` bytes, committed when the guard goes out of scope (discarded if
  /// an exception leaves it). Throws std::length_error when `size` > max_message_size().
  ChannelReservationGuard reserve(std::size_t size);
  std::optional<ChannelReservationGuard> try_reserve(std::size_t size);
  std::optional<ChannelReservationGuard> reserve_for(std::size_t size,
                                                     std::chrono::nanoseconds timeout);
  /// The next message, consumed when the guard goes out of scope (counted lost if an
  /// exception leaves it). Throws ChannelError for a corrupted header; claim() throws
  /// ChannelEndOfStream at the end of the stream, where claim_for() returns nullopt.
  ChannelDeliveryGuard claim();
  std::optional<ChannelDeliveryGuard> try_claim();
  std::optional<ChannelDeliveryGuard> claim_for(std::chrono::nanoseconds timeout);

  /// Copies the next message into `buffer` (no allocation); waits without limit. A message
  /// longer than the buffer is not waited past: too_large, and it stays queued; at the end of
  /// the stream: ended.
  ChannelReceived receive_into(std::span<std::byte> buffer);
  ChannelReceived try_receive_into(std::span<std::byte> buffer);
  ChannelReceived receive_into_for(std::span<std::byte> buffer, std::chrono::nanoseconds timeout);
  /// Copies the queued messages, up to one per buffer, into `buffers` in order (message i into
  /// buffers[i], its size into sizes[i]; sizes holds at least buffers.size()). No allocation:
  /// reused buffers keep a batch of large messages free of page faults. Waits for the first
  /// message only; stops before a message longer than its buffer (too_large when it is the
  /// first: it stays queued). Throws std::invalid_argument for no buffer or fewer sizes than
  /// buffers, ChannelError for a corrupted header (after the messages before it).
  ChannelReceivedMany receive_many_into(std::span<const std::span<std::byte>> buffers,
                                        std::span<std::size_t> sizes);
  ChannelReceivedMany try_receive_many_into(std::span<const std::span<std::byte>> buffers,
                                            std::span<std::size_t> sizes);
  ChannelReceivedMany receive_many_into_for(std::span<const std::span<std::byte>> buffers,
                                            std::span<std::size_t> sizes,
                                            std::chrono::nanoseconds timeout);

  // End of stream (docs/channel.md, "End of stream"). A registration (this object in this
  // process) is a producer from its first send/reserve or declare_producer() until finish(),
  // its destruction or its process's death. The stream has ended when some producer declared
  // and none is left unfinished and alive; a producer declaring later reopens it.

  /// Declares this object a producer now (the first send does it otherwise), so that the stream
  /// cannot end before it sends. Idempotent. Throws ChannelError after finish().
  void declare_producer();
  /// This object sends no more: when it was the last producer, consumers see the end once
  /// they drained the ring. Idempotent; later sends and reserves throw ChannelError.
  /// Reservations still open are still delivered when committed.
  void finish() noexcept;
  /// Whether finish() was called (in this process).
  bool finished() const noexcept;
  /// True when the stream has ended and nothing is left to claim. One load, and at most once
  /// per kSlice a scan of the producers (a /proc read each) to notice dead ones.
  bool ended();

  // Blocking conveniences for C++ callers (nullopt timeout: without limit).

  /// Sends one message; false when the timeout expired first.
  bool send(std::span<const std::byte> data,
            std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  /// Receives one message; nullopt when the timeout expired first or the stream ended
  /// (ended() tells which).
  std::optional<std::vector<std::byte>> receive(
      std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

  /// Removes the name; processes that have it open keep using it.
  void unlink() const;
  /// Removes the channel `name` (shm_unlink); Error(ENOENT) when there is none.
  static void unlink(std::string_view name);

  /// The segment size of a channel with a ring of `capacity` bytes (for tests and tools).
  static std::size_t segment_size(std::size_t capacity) noexcept;

  struct Local;  // this process's state (mapping, owner tag, caches); public for the tests

 private:
  explicit Channel(std::unique_ptr<Local> local);
  std::unique_ptr<Local> local_;
};

/// A reserved message space (Channel::reserve()): write bytes(), then it is committed at the
/// end of the guard's scope, or discarded (never delivered, counted in abandoned()) when the
/// scope is left by an exception (std::uncaught_exceptions() grew since the guard was made;
/// a move keeps that count). commit()/discard() finish it earlier. Move-only; not thread-safe.
/// Must be finished before its Channel is destroyed (moving the Channel is fine).
class ChannelReservationGuard {
 public:
  ChannelReservationGuard(ChannelReservationGuard&& other) noexcept;
  ChannelReservationGuard& operator=(ChannelReservationGuard&& other) noexcept;
  ChannelReservationGuard(const ChannelReservationGuard&) = delete;
  ChannelReservationGuard& operator=(const ChannelReservationGuard&) = delete;
  ~ChannelReservationGuard() {
    if (local_) finish();
  }

  /// The message's bytes, to be written (empty once finished).
  std::span<std::byte> bytes() const noexcept {
    return local_ ? std::span(reservation_.data, reservation_.size) : std::span<std::byte>();
  }
  std::byte* data() const noexcept { return bytes().data(); }
  std::size_t size() const noexcept { return bytes().size(); }
  /// False once committed, discarded or moved from.
  bool active() const noexcept { return local_ != nullptr; }
  explicit operator bool() const noexcept { return active(); }

  /// Makes the message deliverable now (nothing when not active()).
  void commit() noexcept;
  /// Gives the space up: never delivered, counted in abandoned() (nothing when not active()).
  void discard() noexcept;

 private:
  friend class Channel;
  ChannelReservationGuard(Channel::Local* local, const ChannelReservation& reservation) noexcept;
  void finish() noexcept;  // as at the end of a scope; local_ is set
  Channel::Local* local_;
  ChannelReservation reservation_;
  int uncaught_;
};

/// A claimed message (Channel::claim()): read bytes(), then it is consumed at the end of the
/// guard's scope (its space goes back to producers), or counted in lost() when the scope is
/// left by an exception (a claimed message cannot be put back: other consumers have moved
/// past it). consume()/consume_lost() finish it earlier. Move-only; not thread-safe. Must be
/// finished before its Channel is destroyed (moving the Channel is fine).
class ChannelDeliveryGuard {
 public:
  ChannelDeliveryGuard(ChannelDeliveryGuard&& other) noexcept;
  ChannelDeliveryGuard& operator=(ChannelDeliveryGuard&& other) noexcept;
  ChannelDeliveryGuard(const ChannelDeliveryGuard&) = delete;
  ChannelDeliveryGuard& operator=(const ChannelDeliveryGuard&) = delete;
  ~ChannelDeliveryGuard() {
    if (local_) finish();
  }

  /// The message's bytes, valid until it is finished.
  std::span<const std::byte> bytes() const noexcept {
    return local_ ? std::span(delivery_.data, delivery_.size) : std::span<const std::byte>();
  }
  const std::byte* data() const noexcept { return bytes().data(); }
  std::size_t size() const noexcept { return bytes().size(); }
  /// False once consumed or moved from.
  bool active() const noexcept { return local_ != nullptr; }
  explicit operator bool() const noexcept { return active(); }

  /// Frees the message's space now (nothing when not active()).
  void consume() noexcept;
  /// Frees it and counts it in lost(): the caller could not hand it on.
  void consume_lost() noexcept;

 private:
  friend class Channel;
  ChannelDeliveryGuard(Channel::Local* local, const ChannelDelivery& delivery) noexcept;
  void finish() noexcept;  // as at the end of a scope; local_ is set
  Channel::Local* local_;
  ChannelDelivery delivery_;
  int uncaught_;
};

}  // namespace ipcxx

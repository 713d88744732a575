// ipcxx::Channel: a multi-producer, multi-consumer message ring in a POSIX shared memory segment,
// robust to a participant killed at any instruction (protocol: docs/channel.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
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
enum class ChannelStatus : std::uint8_t { done, would_block, too_large };

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
  /// Creates a channel under a fresh random name.
  static Channel create_unique(std::size_t capacity = kDefaultCapacity, mode_t mode = 0600);

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

  /// The spin before sleeping. adaptive: at most `spin`, shortened after waits that had to
  /// sleep and restored after waits that ended while spinning; fixed otherwise.
  void set_spin(std::chrono::nanoseconds spin, bool adaptive = false);
  /// The spin set last (for an adaptive one, its upper bound).
  std::chrono::nanoseconds spin() const noexcept;
  /// Whether the spin adapts (the default) rather than staying fixed.
  bool spin_adaptive() const noexcept;

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

  /// Waits until a message may be claimable.
  bool wait_readable(std::chrono::nanoseconds timeout, bool first_wait = true);
  /// Waits until a message of `size` bytes may fit.
  bool wait_writable(std::size_t size, std::chrono::nanoseconds timeout, bool first_wait = true);

  // Blocking conveniences for C++ callers (nullopt timeout: without limit).

  /// Sends one message; false when the timeout expired first.
  bool send(std::span<const std::byte> data,
            std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  /// Receives one message; nullopt when the timeout expired first.
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

}  // namespace ipcxx

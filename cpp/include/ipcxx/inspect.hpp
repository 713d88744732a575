// Read-only inspection of ipcxx's own segments (Channel, RobustMutex) for tools such as
// `python -m ipcxx ls`: never joins, locks or writes (docs/guide.md, "ipcxx's own objects").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipcxx {

/// What a segment was recognised as (by its magic number).
enum class SegmentKind : std::uint8_t { other, channel, robust_mutex };

/// Whether a process is alive, seen from the inspecting process's PID namespace.
/// `not_visible`: the id is not in this namespace (or /proc hides it), so nothing can be said.
enum class Liveness : std::uint8_t { alive, dead, not_visible };

/// One registered participant of a channel (a slot of its table with a non-zero identity).
struct ChannelParticipant {
  std::uint32_t slot = 0;
  pid_t pid = 0;          ///< in the participant's own PID namespace
  bool alive = false;     ///< pid exists, is not a zombie and has the registered start time
  bool producer = false;  ///< declared itself a producer and never finished (a dead one too)
};

/// Where a channel's stream stands (docs/channel.md, "End of stream").
enum class StreamState : std::uint8_t {
  no_producer_yet,  ///< no producer has ever declared: consumers wait
  open,             ///< a live producer has not finished
  draining,         ///< every producer finished or died; messages are left to receive
  ended,            ///< every producer finished or died and nothing is left: EndOfStream
};

/// A snapshot of a channel, read without taking part. Fields read at different instants while
/// others use the channel: each is exact at its load, the whole is a snapshot only when idle.
struct ChannelInspection {
  std::uint32_t version = 0;
  std::uint64_t capacity = 0;          ///< ring bytes
  std::uint64_t max_message_size = 0;  ///< capacity / 2 - 16
  std::uint64_t head = 0, rhead = 0, tail = 0;
  std::uint64_t used_bytes = 0;         ///< tail - head: ring bytes not free for producers
  std::uint64_t queued_bytes = 0;       ///< payload bytes of the queued (committed) messages
  std::uint64_t messages = 0;           ///< committed messages no consumer has claimed yet
  std::uint64_t writing = 0;            ///< reservations not yet committed (RESERVED)
  std::uint64_t writing_dead = 0;       ///< of which the producer is dead (to be abandoned)
  std::uint64_t reading = 0;            ///< messages claimed, not yet consumed (CLAIMED)
  std::uint64_t reading_dead = 0;       ///< of which the consumer is dead (to be counted lost)
  bool counts_complete = false;         ///< false: the walk raced with the ring or hit its limit
  std::uint64_t lost = 0;               ///< the shared counter (docs/channel.md)
  std::uint64_t abandoned = 0;          ///< the shared counter
  std::uint32_t declarations = 0;       ///< producer declarations ever made
  std::uint32_t producers_counted = 0;  ///< the stream word's count (may exceed the live ones)
  StreamState stream = StreamState::no_producer_yet;
  std::vector<ChannelParticipant> participants;  ///< slot order
  /// The pid holding the producer/consumer spin lock (0: free), and whether it is alive.
  pid_t producer_lock_pid = 0, consumer_lock_pid = 0;
  bool producer_lock_alive = false, consumer_lock_alive = false;
};

/// Whether a lock's protected state can be trusted (docs/guide.md, "A crash-robust lock").
enum class LockConsistency : std::uint8_t {
  consistent,
  owner_died,       ///< a holder died; the next (or current) holder must make_consistent()
  not_recoverable,  ///< released after a death without make_consistent(): unusable for good
};

/// A snapshot of a robust mutex, read from its lock word without taking it.
struct RobustMutexInspection {
  std::uint32_t version = 0;
  bool locked = false;  ///< held, or its holder died and nobody acquired it since
  /// The holder's thread id (the futex word's TID; glibc: a dead holder's from the mutex's
  /// owner field), 0 when none or unknown; the process it belongs to (0: unknown).
  pid_t holder_tid = 0;
  pid_t holder_pid = 0;
  /// alive: holder_tid is a live thread here; dead: it died holding the lock; not_visible: the
  /// lock word names a thread this PID namespace does not show (the kernel clears the word of
  /// a thread that dies, so it lives in another namespace; a holder there whose id is also a
  /// thread here is indistinguishable from it). Meaningless when the lock is free.
  Liveness holder = Liveness::dead;
  bool waiters = false;  ///< the futex word says threads sleep waiting for it
  LockConsistency consistency = LockConsistency::consistent;
  std::uint64_t acquisitions = 0;  ///< acquisitions since creation
};

/// What inspect_segment() found. `kind` other: not an ipcxx segment (`problem` says why, e.g.
/// "empty"). A channel or lock whose header is not valid (another layout version, a size that
/// does not match, never initialised) keeps its kind, with `problem` set and no details.
struct SegmentInspection {
  SegmentKind kind = SegmentKind::other;
  std::string problem;  ///< empty when the details below are present
  std::uint64_t size = 0;
  std::optional<ChannelInspection> channel;
  std::optional<RobustMutexInspection> robust_mutex;
};

/// Classifies the shared memory object open on `fd` by its magic number and size and reads it
/// read-only (pread, then a PROT_READ mapping after the size checks). Never blocks, joins,
/// locks or writes. Throws Error (fstat, pread, mmap); a foreign or damaged file is a value.
SegmentInspection inspect_segment(int fd);
/// inspect_segment() of the POSIX shared memory object `name`, opened read-only. Throws
/// std::invalid_argument for a bad name, Error (shm_open: ENOENT, EACCES, ...).
SegmentInspection inspect_segment(std::string_view name);

/// Whether thread or process `tid` exists here and is not a zombie; its process id (Tgid) is
/// stored in `pid` when found. Reads /proc/<tid>/status.
Liveness thread_liveness(pid_t tid, pid_t* pid = nullptr);

}  // namespace ipcxx

// Read-only inspection of channel and robust mutex segments: classify by magic, validate, read.
#include "ipcxx/inspect.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "channel/layout.hpp"
#include "channel/participants.hpp"
#include "detail/syscall.hpp"
#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "robust_mutex_layout.hpp"

namespace ipcxx {

namespace {

// Enough bytes to tell the two magic numbers apart: a channel's at 0, a lock's at 8.
constexpr std::size_t kProbeBytes = 16;
// The longest ring walk (records): a full 4 GiB ring of tiny messages would take seconds.
constexpr std::uint64_t kWalkLimit = std::uint64_t{1} << 20;
constexpr int kWalkAttempts = 4;

#if defined(__GLIBC__)
// glibc's futex word of a robust mutex (linux/futex.h).
constexpr std::uint32_t kFutexWaiters = 0x80000000u;
constexpr std::uint32_t kFutexOwnerDied = 0x40000000u;
constexpr std::uint32_t kFutexTidMask = 0x3fffffffu;
#endif

// The whole object mapped read-only; unmapped by the destructor.
struct ReadOnlyMapping {
  void* address = MAP_FAILED;
  std::size_t size = 0;
  ReadOnlyMapping(int fd, std::size_t bytes) : size(bytes) {
    address = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) detail::throw_errno(Syscall::mmap, "inspection");
  }
  ReadOnlyMapping(const ReadOnlyMapping&) = delete;
  ReadOnlyMapping& operator=(const ReadOnlyMapping&) = delete;
  ~ReadOnlyMapping() { ::munmap(address, size); }
  const std::byte* bytes() const { return static_cast<const std::byte*>(address); }
};

// A plain (non-atomic in the type) shared word read the way its writers' atomics pair with.
template <typename T>
T load_shared(const T& word) {
  return std::atomic_ref<T>(const_cast<T&>(word)).load(std::memory_order_acquire);
}

// The tags seen during one inspection, with their liveness (one /proc read per tag).
class TagLiveness {
 public:
  explicit TagLiveness(const channel::Slot* slots) : slots_(slots) {}
  bool alive(std::uint32_t tag) {
    for (const auto& [known, alive] : seen_)
      if (known == tag) return alive;
    bool alive = false;
    try {
      alive = channel::tag_alive(slots_, tag, 0);
    } catch (const std::exception&) {  // no /proc: cannot tell; say dead, as recovery would
    }
    seen_.emplace_back(tag, alive);
    return alive;
  }
  // The pid behind a tag (0 when the tag is not a live registration's).
  pid_t pid(std::uint32_t tag) const {
    const std::uint32_t index = (tag & 1023) - 1;
    if (tag == 0 || index >= channel::kParticipants) return 0;
    const std::uint64_t identity = slots_[index].identity.load(std::memory_order_acquire);
    return static_cast<pid_t>(identity >> 42);
  }

 private:
  const channel::Slot* slots_;
  std::vector<std::pair<std::uint32_t, bool>> seen_;
};

// Counts the records between head and tail. Positions only grow, so a header whose position
// is not where it was expected means the walk raced with producers reusing freed space (or the
// segment is corrupted): the walk starts again from fresh indices, a few times at most.
void walk_ring(const channel::Header& header, const std::byte* ring, ChannelInspection& out,
               TagLiveness& tags) {
  using namespace channel;
  const std::uint64_t capacity = out.capacity;
  for (int attempt = 0; attempt < kWalkAttempts; ++attempt) {
    // head, then rhead, then tail: each only grows, so head <= rhead <= tail holds for these.
    const std::uint64_t head = header.head.load(std::memory_order_acquire);
    const std::uint64_t rhead = header.rhead.load(std::memory_order_acquire);
    const std::uint64_t tail = header.tail.load(std::memory_order_acquire);
    out.head = head;
    out.rhead = rhead;
    out.tail = tail;
    out.used_bytes = tail >= head ? std::min(tail - head, capacity) : 0;
    out.queued_bytes = out.messages = out.writing = out.writing_dead = 0;
    out.reading = out.reading_dead = 0;
    if (head > rhead || rhead > tail || tail - head > capacity) continue;
    std::uint64_t position = head;
    std::uint64_t steps = 0;
    bool consistent = true;
    while (position < tail) {
      if (++steps > kWalkLimit) {
        consistent = false;
        break;
      }
      const std::uint64_t offset = position & (capacity - 1);
      if (position % kAlign != 0 || offset + kRecordHeader > capacity) {
        consistent = false;
        break;
      }
      const auto& record = *reinterpret_cast<const Record*>(ring + offset);
      const std::uint64_t word0 = record.word0.load(std::memory_order_acquire);
      const std::uint64_t word1 = record.word1.load(std::memory_order_acquire);
      if ((word0 & ~kStateMask) != position) {
        consistent = false;
        break;
      }
      const std::uint64_t state = word0 & kStateMask;
      const std::uint64_t length = length_of(word1);
      const std::uint64_t span = state == kPad ? length : record_bytes(length);
      if (span < kRecordHeader || offset + span > capacity ||
          (state != kPad && length > out.max_message_size)) {
        consistent = false;
        break;
      }
      if (state == kCommitted) {
        ++out.messages;
        out.queued_bytes += length;
      } else if (state == kReserved) {
        ++out.writing;
        if (!tags.alive(owner_of(word1))) ++out.writing_dead;
      } else if (state == kClaimed) {
        ++out.reading;
        if (!tags.alive(owner_of(word1))) ++out.reading_dead;
      }
      position += span;
    }
    if (consistent) {
      out.counts_complete = true;
      return;
    }
  }
}

// Whether some producer mark belongs to a live registration (read-only: dead marks are left
// for a participant's scan to retire).
bool live_producer(const channel::Slot* slots, std::uint32_t index, TagLiveness& tags) {
  const std::uint32_t mark = slots[index].producer.load(std::memory_order_seq_cst);
  return mark != 0 && tags.alive(channel::make_tag(index, mark >> 2));
}

std::string inspect_channel(const std::byte* bytes, std::size_t size, ChannelInspection& out) {
  using namespace channel;
  const auto& header = *reinterpret_cast<const Header*>(bytes);
  if (header.ready.load(std::memory_order_acquire) != kReady)
    return "not initialised (its creator is creating it, or died doing so)";
  out.version = load_shared(header.version);
  if (out.version != kVersion)
    return "layout version " + std::to_string(out.version) + ", this build reads version " +
           std::to_string(kVersion);
  const std::uint64_t capacity = load_shared(header.capacity);
  if (capacity < Channel::kMinCapacity || capacity > Channel::kMaxCapacity ||
      !std::has_single_bit(capacity))
    return "bad capacity " + std::to_string(capacity);
  if (load_shared(header.participants) != kParticipants) return "bad participant count";
  if (size != kRingOffset + capacity)
    return "its size " + std::to_string(size) + " does not match its capacity " +
           std::to_string(capacity);
  out.capacity = capacity;
  out.max_message_size = capacity / 2 - kRecordHeader;
  const auto* slots = reinterpret_cast<const Slot*>(bytes + kHeaderBytes);
  TagLiveness tags(slots);

  // End of stream as a consumer's check sees it (docs/channel.md), without retiring marks:
  // declarations, then the marks, then declarations again, then rhead and tail.
  const std::uint64_t before = header.stream.load(std::memory_order_seq_cst);
  out.declarations = declarations_of(before);
  out.producers_counted = producers_of(before);
  bool producing = false;
  for (std::uint32_t index = 0; index < kParticipants; ++index) {
    const std::uint64_t identity = slots[index].identity.load(std::memory_order_acquire);
    const bool producer = live_producer(slots, index, tags);
    producing = producing || producer;
    if (identity == 0) continue;
    ChannelParticipant participant;
    participant.slot = index;
    participant.pid = static_cast<pid_t>(identity >> 42);
    try {
      participant.alive = channel::identity_alive(identity);
    } catch (const std::exception&) {
    }
    // A mark of this registration's incarnation: it declared and never finished (alive or not).
    const std::uint32_t mark = slots[index].producer.load(std::memory_order_acquire);
    const std::uint32_t incarnation = slots[index].incarnation.load(std::memory_order_acquire);
    participant.producer = mark != 0 && (mark >> 2) == (incarnation & kIncarnationMask);
    out.participants.push_back(participant);
  }
  const std::uint64_t after = header.stream.load(std::memory_order_seq_cst);
  const bool changed = declarations_of(after) != declarations_of(before);

  out.lost = header.lost.load(std::memory_order_relaxed);
  out.abandoned = header.abandoned.load(std::memory_order_relaxed);
  for (auto [lock, pid, alive] :
       {std::tuple{&header.producer_lock, &out.producer_lock_pid, &out.producer_lock_alive},
        std::tuple{&header.consumer_lock, &out.consumer_lock_pid, &out.consumer_lock_alive}}) {
    const std::uint32_t holder = lock->load(std::memory_order_acquire);
    if (holder == 0) continue;
    *pid = tags.pid(holder);
    *alive = tags.alive(holder);
  }
  walk_ring(header, bytes + kRingOffset, out, tags);

  if (out.declarations == 0)
    out.stream = StreamState::no_producer_yet;
  else if (producing || changed)
    out.stream = StreamState::open;
  else
    out.stream =
        header.rhead.load(std::memory_order_seq_cst) >= header.tail.load(std::memory_order_seq_cst)
            ? StreamState::ended
            : StreamState::draining;
  return {};
}

std::string inspect_lock(const std::byte* bytes, std::size_t size, RobustMutexInspection& out) {
  using namespace robust_mutex;
  const auto& layout = *reinterpret_cast<const RobustMutex::Layout*>(bytes);
  if (layout.ready.load(std::memory_order_acquire) != kReady)
    return "not initialised (its creator is creating it, or died doing so)";
  out.version = load_shared(layout.version);
  if (out.version != kVersion)
    return "layout version " + std::to_string(out.version) + ", this build reads version " +
           std::to_string(kVersion);
  if (size != sizeof(RobustMutex::Layout)) return "bad size";
  out.acquisitions = layout.acquisitions.load(std::memory_order_acquire);
  const std::uint32_t state = layout.state.load(std::memory_order_acquire);
  const bool unreported_death = layout.unreported_death.load(std::memory_order_acquire) != 0;
#if defined(__GLIBC__)
  // glibc keeps the holder's TID in the futex word (the kernel replaces it by OWNER_DIED when
  // the thread dies holding it) and in __owner (left as it was by a death; INT_MAX while the
  // new holder has not made it consistent, INT_MAX - 1 once not recoverable).
  const auto word = static_cast<std::uint32_t>(load_shared(layout.mutex.__data.__lock));
  const int owner = load_shared(layout.mutex.__data.__owner);
  const auto tid = static_cast<pid_t>(word & kFutexTidMask);
  out.waiters = (word & kFutexWaiters) != 0;
  const bool died = (word & kFutexOwnerDied) != 0 && tid == 0;
  if (tid != 0) {
    out.locked = true;
    out.holder_tid = tid;
    out.holder = thread_liveness(tid, &out.holder_pid);
  } else if (died || unreported_death) {
    out.locked = true;
    out.holder = Liveness::dead;
    if (died && owner > 0 && owner < INT_MAX - 1) out.holder_tid = owner;
  }
  if (state == kNotRecoverable || owner == INT_MAX - 1)
    out.consistency = LockConsistency::not_recoverable;
  else if (state == kInconsistent || died || unreported_death)
    out.consistency = LockConsistency::owner_died;
#else
  // Without glibc's layout only ipcxx's own words are known: no holder.
  out.locked = unreported_death;
  if (state == kNotRecoverable)
    out.consistency = LockConsistency::not_recoverable;
  else if (state == kInconsistent || unreported_death)
    out.consistency = LockConsistency::owner_died;
#endif
  return {};
}

std::uint64_t probe_u64(const unsigned char* probe, std::size_t offset) {
  std::uint64_t value;
  std::memcpy(&value, probe + offset, sizeof value);
  return value;
}

}  // namespace

Liveness thread_liveness(pid_t tid, pid_t* pid) {
  if (tid <= 0) return Liveness::dead;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Liveness::dead : Liveness::not_visible;
  char buffer[2048];
  ssize_t length;
  do {
    length = ::read(fd, buffer, sizeof buffer - 1);
  } while (length < 0 && errno == EINTR);
  ::close(fd);
  if (length <= 0) return Liveness::dead;  // it exited between the open and the read
  buffer[length] = '\0';
  const char* state = std::strstr(buffer, "\nState:");
  if (state) {
    state += 7;
    while (*state == ' ' || *state == '\t') ++state;
    if (*state == 'Z' || *state == 'X') return Liveness::dead;
  }
  if (const char* tgid = std::strstr(buffer, "\nTgid:"); tgid && pid)
    *pid = static_cast<pid_t>(std::strtol(tgid + 6, nullptr, 10));
  return Liveness::alive;
}

SegmentInspection inspect_segment(int fd) {
  SegmentInspection out;
  struct stat info {};
  detail::check(::fstat(fd, &info), Syscall::fstat, "inspection");
  out.size = static_cast<std::uint64_t>(info.st_size);
  if (!S_ISREG(info.st_mode)) {
    out.problem = "not a regular file";
    return out;
  }
  if (out.size == 0) {
    out.problem = "empty";
    return out;
  }
  // The magic numbers by pread first: a file of any size or content is safe to read this way,
  // and only one that passes the size checks is mapped (a mapping read past the end of a file
  // raises SIGBUS).
  unsigned char probe[kProbeBytes] = {};
  ssize_t got;
  do {
    got = ::pread(fd, probe, sizeof probe, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0) detail::throw_errno(Syscall::pread, "inspection");
  if (static_cast<std::size_t>(got) >= sizeof channel::kMagic &&
      std::memcmp(probe, channel::kMagic, sizeof channel::kMagic) == 0) {
    out.kind = SegmentKind::channel;
    const std::uint64_t size = out.size;
    if (size < channel::kRingOffset + Channel::kMinCapacity ||
        size > channel::kRingOffset + Channel::kMaxCapacity ||
        !std::has_single_bit(size - channel::kRingOffset)) {
      out.problem = "its size, " + std::to_string(size) + " bytes, is not that of any channel";
      return out;
    }
    const ReadOnlyMapping mapping(fd, size);
    ChannelInspection details;
    out.problem = inspect_channel(mapping.bytes(), size, details);
    if (out.problem.empty()) out.channel = std::move(details);
    return out;
  }
  if (static_cast<std::size_t>(got) == kProbeBytes &&
      probe_u64(probe, offsetof(RobustMutex::Layout, magic)) == robust_mutex::kMagic) {
    out.kind = SegmentKind::robust_mutex;
    if (out.size != sizeof(RobustMutex::Layout)) {
      out.problem = "its size, " + std::to_string(out.size) + " bytes, is not a lock's (" +
                    std::to_string(sizeof(RobustMutex::Layout)) + ")";
      return out;
    }
    const ReadOnlyMapping mapping(fd, out.size);
    RobustMutexInspection details;
    out.problem = inspect_lock(mapping.bytes(), out.size, details);
    if (out.problem.empty()) out.robust_mutex = details;
    return out;
  }
  out.problem = "not an ipcxx segment";
  return out;
}

SegmentInspection inspect_segment(std::string_view name) {
  const posix::SharedMemory memory(std::string(name), 0, 0600, 0, /*read_only=*/true);
  return inspect_segment(memory.fd());
}

}  // namespace ipcxx

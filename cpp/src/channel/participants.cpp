// Process identities from /proc, owner tags and the participant table.
#include "channel/participants.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "ipcxx/channel.hpp"
#include "ipcxx/process.hpp"

namespace ipcxx::channel {

namespace {

constexpr int kPidBits = 22;  // pid_max is at most 2^22 on Linux
constexpr int kStartBits = 64 - kPidBits;
constexpr std::uint64_t kStartMask = (std::uint64_t{1} << kStartBits) - 1;

struct ProcStat {
  bool exists = false;
  char state = '?';
  std::uint64_t start_time = 0;
};

// Reads state (field 3) and starttime (field 22) of /proc/<pid>/stat. The command name (field
// 2) may hold spaces and parentheses: fields are counted from the last ')'.
ProcStat read_stat(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[1024];
  ssize_t length;
  do {
    length = ::read(fd, buffer, sizeof buffer - 1);
  } while (length < 0 && errno == EINTR);
  ::close(fd);
  if (length <= 0) return {};
  buffer[length] = '\0';
  const char* cursor = std::strrchr(buffer, ')');
  if (!cursor || cursor[1] != ' ') return {};
  ProcStat stat;
  stat.exists = true;
  cursor += 2;
  stat.state = *cursor;
  // After ')' come fields 3.. ; starttime is field 22, i.e. the 20th after ')'.
  for (int field = 3; field < 22; ++field) {
    cursor = std::strchr(cursor, ' ');
    if (!cursor) return {};
    ++cursor;
  }
  stat.start_time = std::strtoull(cursor, nullptr, 10);
  return stat;
}

std::uint64_t make_identity(pid_t pid, std::uint64_t start_time) {
  return std::uint64_t(pid) << kStartBits | (start_time & kStartMask);
}

struct CachedIdentity {
  std::uint64_t generation;
  std::uint64_t identity;
};

}  // namespace

std::uint64_t own_identity() {
  // Recomputed after a fork: the child is another process.
  static std::atomic<std::uint64_t> cached_generation{~std::uint64_t{0}};
  static std::atomic<std::uint64_t> cached_identity{0};
  const std::uint64_t generation = fork_generation();
  if (cached_generation.load(std::memory_order_acquire) == generation)
    return cached_identity.load(std::memory_order_relaxed);
  const pid_t pid = ::getpid();
  const ProcStat stat = read_stat(pid);
  if (!stat.exists) throw ChannelError("cannot read /proc/self/stat: death detection needs /proc");
  const std::uint64_t identity = make_identity(pid, stat.start_time);
  cached_identity.store(identity, std::memory_order_relaxed);
  cached_generation.store(generation, std::memory_order_release);
  return identity;
}

bool identity_alive(std::uint64_t identity) {
  if (identity == 0) return false;
  const auto pid = static_cast<pid_t>(identity >> kStartBits);
  if (pid <= 0) return false;
  const ProcStat stat = read_stat(pid);
  if (!stat.exists || stat.state == 'Z' || stat.state == 'X') return false;
  return (stat.start_time & kStartMask) == (identity & kStartMask);
}

std::uint32_t register_participant(Slot* slots, std::uint64_t identity) {
  // Two passes: free slots first (no /proc reads), then slots of dead processes.
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t index = 0; index < kParticipants; ++index) {
      std::uint64_t current = slots[index].identity.load(std::memory_order_acquire);
      const bool claimable = pass == 0 ? current == 0 : current != 0 && !identity_alive(current);
      if (!claimable) continue;
      if (!slots[index].identity.compare_exchange_strong(current, identity,
                                                         std::memory_order_acq_rel))
        continue;
      // A new incarnation: every tag of the slot's previous owner is dead from now on.
      const std::uint32_t incarnation =
          slots[index].incarnation.fetch_add(1, std::memory_order_acq_rel) + 1;
      return make_tag(index, incarnation);
    }
  }
  throw ChannelError("the channel has " + std::to_string(kParticipants) +
                     " live participants already");
}

void unregister_participant(Slot* slots, std::uint32_t tag) noexcept {
  if (tag == 0) return;
  const std::uint32_t index = (tag & 1023) - 1;
  if (index >= kParticipants) return;
  slots[index].incarnation.fetch_add(1, std::memory_order_acq_rel);
  slots[index].identity.store(0, std::memory_order_release);
}

bool tag_alive(const Slot* slots, std::uint32_t tag, std::uint32_t self) {
  if (tag == 0) return false;
  if (tag == self) return true;
  const std::uint32_t index = (tag & 1023) - 1;
  if (index >= kParticipants) return false;  // not a tag: treated as dead, so it is repaired
  const std::uint32_t incarnation = slots[index].incarnation.load(std::memory_order_acquire);
  if ((incarnation & kIncarnationMask) != tag >> 10) return false;
  const std::uint64_t identity = slots[index].identity.load(std::memory_order_acquire);
  if (identity == 0) return false;
  if (identity == own_identity()) return true;
  return identity_alive(identity);
}

}  // namespace ipcxx::channel

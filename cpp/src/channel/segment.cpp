// Channel segments: creation under O_EXCL, and the checks an opener makes before trusting one.
#include "channel/segment.hpp"

#include <fcntl.h>
#include <time.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "channel/layout.hpp"
#include "detail/deadline.hpp"
#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"

namespace ipcxx::channel {

namespace {

constexpr std::chrono::seconds kOpenWait{1};

Header& header_of(const posix::Mapping& mapping) {
  return *static_cast<Header*>(static_cast<void*>(mapping.bytes().data()));
}

void initialise(Header& header, std::size_t capacity) {
  // A new object reads as zeros: indices, locks, counters and the participant table.
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.version = kVersion;
  header.capacity = capacity;
  header.participants = kParticipants;
  header.ready.store(kReady, std::memory_order_release);
}

[[noreturn]] void reject(const std::string& name, const std::string& why) {
  throw ChannelError(name + " is not an ipcxx channel: " + why);
}

// Checks every field an operation relies on; after this, offsets derived from the header
// stay inside the mapping.
void validate(const std::string& name, const Header& header, std::size_t size) {
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) reject(name, "wrong magic number");
  if (header.version != kVersion)
    throw ChannelError(name + " is an ipcxx channel of layout version " +
                       std::to_string(header.version) + ", this build reads version " +
                       std::to_string(kVersion));
  const std::uint64_t capacity = header.capacity;
  if (capacity < Channel::kMinCapacity || capacity > Channel::kMaxCapacity ||
      !std::has_single_bit(capacity))
    reject(name, "bad capacity " + std::to_string(capacity));
  if (header.participants != kParticipants) reject(name, "bad participant count");
  if (size != kRingOffset + capacity)
    reject(name, "its size " + std::to_string(size) + " does not match its capacity");
}

// Whether `size` is that of some channel: the header, the participant table and a ring of a
// valid capacity.
bool channel_sized(std::size_t size) {
  if (size < kRingOffset) return false;
  const std::size_t capacity = size - kRingOffset;
  return capacity >= Channel::kMinCapacity && capacity <= Channel::kMaxCapacity &&
         std::has_single_bit(capacity);
}

// Whether the magic number may still be being written by a creator: each byte is either
// still zero (ftruncate's fill) or already the right one.
bool magic_in_progress(const Header& header) {
  for (std::size_t i = 0; i < sizeof kMagic; ++i)
    if (header.magic[i] != 0 && header.magic[i] != kMagic[i]) return false;
  return true;
}

void sleep_briefly() {
  const timespec pause{0, 1'000'000};
  ::nanosleep(&pause, nullptr);
}

posix::Mapping open_existing(const std::string& name) {
  posix::SharedMemory memory(name, 0);
  const detail::Deadline deadline(kOpenWait);
  for (;;) {
    // A creator sets the size last (after reserving the pages), so a non-zero size is final:
    // one that no channel has, or a foreign magic number, is refused at once.
    const std::size_t size = memory.size();
    if (size != 0 && !channel_sized(size))
      reject(name, "its size, " + std::to_string(size) + " bytes, is not that of any channel");
    if (size != 0) {
      posix::Mapping mapping = memory.map();
      const Header& header = header_of(mapping);
      const std::uint32_t ready = header.ready.load(std::memory_order_acquire);
      if (ready == kReady) {
        validate(name, header, size);
        return mapping;
      }
      if (ready != 0) reject(name, "bad header");
      if (!magic_in_progress(header)) reject(name, "wrong magic number");
    }
    if (deadline.expired())
      throw ChannelError(
          name + (size == 0 ? " is an empty segment" : " has a channel's size") +
          " that was never initialised as a channel within 1 s: a creator that died or stopped "
          "while creating it leaves this (if no process is creating it, unlink it and create "
          "it again)");
    sleep_briefly();
  }
}

}  // namespace

std::size_t ring_capacity(std::size_t requested) {
  if (requested > Channel::kMaxCapacity)
    throw std::invalid_argument("capacity must be at most 4 GiB");
  if (requested < Channel::kMinCapacity) return Channel::kMinCapacity;
  return std::bit_ceil(requested);
}

posix::Mapping create(const std::string& name, std::size_t capacity, mode_t mode) {
  posix::SharedMemory memory(name, O_CREAT | O_EXCL, mode);
  try {
    // Every page is reserved now: a full /dev/shm is ENOSPC here, never a SIGBUS when the
    // ring first reaches a page nobody touched (docs/reliability.md, "A full /dev/shm").
    memory.allocate(kRingOffset + capacity);
    posix::Mapping mapping = memory.map();
    initialise(header_of(mapping), capacity);
    return mapping;
  } catch (...) {
    memory.unlink();
    throw;
  }
}

posix::Mapping open_or_create(const std::string& name, bool create_it, std::size_t capacity,
                              mode_t mode) {
  if (!create_it) return open_existing(name);
  for (;;) {
    try {
      return create(name, capacity, mode);
    } catch (const Error& error) {
      if (error.errno_value() != EEXIST) throw;
    }
    try {
      return open_existing(name);
    } catch (const Error& error) {
      if (error.errno_value() != ENOENT) throw;  // unlinked between the two calls: again
    }
  }
}

}  // namespace ipcxx::channel

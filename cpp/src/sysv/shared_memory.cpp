// ipcxx::sysv::SharedMemory and Attachment on top of shmget/shmat/shmdt/shmctl.
#include "ipcxx/sysv/shared_memory.hpp"

#include <pthread.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "detail/syscall.hpp"
#include "detail/unique_key.hpp"
#include "ipcxx/sysv/keys.hpp"

namespace ipcxx::sysv {

Attachment::Attachment(Attachment&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      read_only_(other.read_only_) {}

Attachment& Attachment::operator=(Attachment&& other) noexcept {
  if (this != &other) {
    if (address_) ::shmdt(address_);
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
    read_only_ = other.read_only_;
  }
  return *this;
}

Attachment::~Attachment() {
  if (address_) ::shmdt(address_);
}

void Attachment::detach() {
  void* address = std::exchange(address_, nullptr);
  size_ = 0;
  detail::check(::shmdt(address), "shmdt", "attachment");
}

void Attachment::release() noexcept {
  address_ = nullptr;
  size_ = 0;
}

namespace {

struct PinnedRange {
  std::uintptr_t begin;
  std::uintptr_t end;
};

// The exported ranges of this process. Few at a time (one per attachment with live views), so a
// map by id and a linear overlap scan do.
struct PinRegistry {
  std::mutex mutex;
  std::map<unsigned long long, PinnedRange> ranges;
  unsigned long long next_id = 1;
};

PinRegistry& pins();

// fork() while another thread holds the mutex would leave it locked in the child: the forking
// thread takes it first. The child keeps the table: its views of the inherited mappings stay.
void lock_pins_before_fork() noexcept { pins().mutex.lock(); }
void unlock_pins_after_fork() noexcept { pins().mutex.unlock(); }

// Deliberately never destroyed: a view may be released while the process exits.
PinRegistry& pins() {
  static PinRegistry* instance = [] {
    auto* created = new PinRegistry;
    ::pthread_atfork(lock_pins_before_fork, unlock_pins_after_fork, unlock_pins_after_fork);
    return created;
  }();
  return *instance;
}

// Built at load time, so the fork handlers exist before any thread can be using the table.
[[maybe_unused]] PinRegistry& pins_at_load = pins();

PinnedRange range_of(const void* address, std::size_t size) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(address);
  const std::uintptr_t end = size > UINTPTR_MAX - begin ? UINTPTR_MAX : begin + size;
  return {begin, end};
}

bool overlaps_locked(const PinRegistry& registry, PinnedRange range) noexcept {
  for (const auto& [id, pinned] : registry.ranges)
    if (range.begin < pinned.end && pinned.begin < range.end) return true;
  return false;
}

}  // namespace

RangePin::RangePin(const void* address, std::size_t size) {
  PinRegistry& registry = pins();
  std::lock_guard lock(registry.mutex);
  const unsigned long long id = registry.next_id++;
  registry.ranges.emplace(id, range_of(address, size));
  id_ = id;
}

RangePin::RangePin(RangePin&& other) noexcept : id_(std::exchange(other.id_, 0)) {}

RangePin& RangePin::operator=(RangePin&& other) noexcept {
  if (this != &other) {
    unpin();
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

RangePin::~RangePin() { unpin(); }

void RangePin::unpin() noexcept {
  if (id_ == 0) return;
  PinRegistry& registry = pins();
  std::lock_guard lock(registry.mutex);
  registry.ranges.erase(std::exchange(id_, 0));
}

bool RangePin::any_overlaps(const void* address, std::size_t size) {
  PinRegistry& registry = pins();
  std::lock_guard lock(registry.mutex);
  return overlaps_locked(registry, range_of(address, size));
}

SharedMemory::SharedMemory(key_t key, int flags, int mode, std::size_t size) : key_(key) {
  validate_get_flags(flags);
  id_ = detail::check(::shmget(key, size, (mode & 0777) | (flags & ~0777)), "shmget",
                      describe_key(key));
}

SharedMemory SharedMemory::create_unique(int flags, int mode, std::size_t size) {
  return detail::create_with_unique_key(
      [&](key_t key) { return SharedMemory(key, flags | IPC_CREAT | IPC_EXCL, mode, size); });
}

Attachment SharedMemory::attach(const void* address, int flags) const {
  void* mapped = nullptr;
  int shmat_errno = 0;
  if ((flags & SHM_REMAP) && address) {
    // SHM_REMAP replaces whatever is mapped at the address (like MAP_FIXED). Over a pinned
    // range (an attachment of this process, or memory a view still uses) that would swap
    // memory under its holder, whose later shmdt would then unmap the newcomer (upstream:
    // silent corruption or SIGSEGV; compatibility.md sysv "SHM_REMAP"), so it is refused
    // there. The pin table stays locked until shmat returns, so no pin can appear in between.
    shmid_ds before{};
    detail::check(::shmctl(id_, IPC_STAT, &before), "shmctl(IPC_STAT)", describe_id(id_));
    auto target = reinterpret_cast<std::uintptr_t>(address);
    if (flags & SHM_RND) target -= target % SHMLBA;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t length = (before.shm_segsz + page - 1) / page * page;
    PinRegistry& registry = pins();
    std::lock_guard lock(registry.mutex);
    if (overlaps_locked(registry, range_of(reinterpret_cast<const void*>(target), length)))
      throw std::invalid_argument(
          "SHM_REMAP refused: a live attachment of this process uses that address range");
    mapped = ::shmat(id_, address, flags);
    shmat_errno = errno;
  } else {
    mapped = ::shmat(id_, address, flags);
    shmat_errno = errno;
  }
  if (mapped == reinterpret_cast<void*>(-1)) {
    errno = shmat_errno;  // not what unlocking the table may have left
    detail::throw_errno("shmat", describe_id(id_));
  }
  shmid_ds info{};
  if (::shmctl(id_, IPC_STAT, &info) != 0) {
    const int saved = errno;
    ::shmdt(mapped);
    errno = saved;
    detail::throw_errno("shmctl(IPC_STAT)", describe_id(id_));
  }
  return Attachment(mapped, info.shm_segsz, (flags & SHM_RDONLY) != 0);
}

MemoryStatus SharedMemory::status() const {
  shmid_ds info{};
  detail::check(::shmctl(id_, IPC_STAT, &info), "shmctl(IPC_STAT)", describe_id(id_));
  return {info.shm_segsz,     info.shm_atime,     info.shm_dtime,
          info.shm_ctime,     info.shm_cpid,      info.shm_lpid,
          info.shm_nattch,    info.shm_perm.uid,  info.shm_perm.gid,
          info.shm_perm.cuid, info.shm_perm.cgid, static_cast<int>(info.shm_perm.mode)};
}

void SharedMemory::set_owner(uid_t uid, gid_t gid, int mode) const {
  shmid_ds info{};
  detail::check(::shmctl(id_, IPC_STAT, &info), "shmctl(IPC_STAT)", describe_id(id_));
  info.shm_perm.uid = uid;
  info.shm_perm.gid = gid;
  info.shm_perm.mode = static_cast<decltype(info.shm_perm.mode)>(mode);
  detail::check(::shmctl(id_, IPC_SET, &info), "shmctl(IPC_SET)", describe_id(id_));
}

void SharedMemory::remove(int id) {
  detail::check(::shmctl(id, IPC_RMID, nullptr), "shmctl(IPC_RMID)", describe_id(id));
}

AttachedMemory open_attached(std::optional<key_t> key, int flags, int mode, std::size_t size,
                             std::byte fill) {
  validate_get_flags(flags);
  const bool exclusive = (flags & IPC_CREAT) && (flags & IPC_EXCL);
  if (exclusive && size == 0) size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  SharedMemory memory =
      key ? SharedMemory(*key, flags, mode, size) : SharedMemory::create_unique(flags, mode, size);
  const bool created = exclusive || memory.key() == IPC_PRIVATE;
  try {
    Attachment attachment = memory.attach(nullptr, (mode & 0200) ? 0 : SHM_RDONLY);
    if (exclusive && !attachment.read_only())
      std::memset(attachment.address(), static_cast<int>(fill), attachment.size());
    return {memory, std::move(attachment)};
  } catch (...) {
    if (created) ::shmctl(memory.id(), IPC_RMID, nullptr);
    throw;
  }
}

}  // namespace ipcxx::sysv

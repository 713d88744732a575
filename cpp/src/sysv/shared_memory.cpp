// ipcxx::sysv::SharedMemory and Attachment on top of shmget/shmat/shmdt/shmctl.
#include "ipcxx/sysv/shared_memory.hpp"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
  void* mapped = ::shmat(id_, address, flags);
  if (mapped == reinterpret_cast<void*>(-1)) detail::throw_errno("shmat", describe_id(id_));
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

// ipcxx::sysv::SharedMemory (a segment, by key or id) and Attachment (one shmat mapping).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <optional>
#include <span>

namespace ipcxx::sysv {

/// Live facts about a segment (IPC_STAT).
struct MemoryStatus {
  std::size_t size;
  std::time_t last_attach_time;
  std::time_t last_detach_time;
  std::time_t last_change_time;
  pid_t creator_pid;
  pid_t last_pid;
  unsigned long number_attached;
  uid_t uid;
  gid_t gid;
  uid_t cuid;
  gid_t cgid;
  int mode;  ///< including Linux's SHM_DEST (01000) and SHM_LOCKED (02000) bits
};

/// One mapping of a segment into this process. Move-only; the destructor detaches unless
/// release() gave the mapping away. Not thread-safe against a concurrent detach().
class Attachment {
 public:
  Attachment() = default;
  Attachment(void* address, std::size_t size, bool read_only) noexcept
      : address_(address), size_(size), read_only_(read_only) {}
  Attachment(Attachment&& other) noexcept;
  Attachment& operator=(Attachment&& other) noexcept;
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;
  ~Attachment();

  /// The mapped bytes (segments never change size while attached, so size is fixed).
  std::span<std::byte> bytes() const noexcept { return {static_cast<std::byte*>(address_), size_}; }
  void* address() const noexcept { return address_; }
  std::size_t size() const noexcept { return size_; }
  bool read_only() const noexcept { return read_only_; }
  bool attached() const noexcept { return address_ != nullptr; }
  /// shmdt; the attachment is empty afterwards even if shmdt failed. Throws Error (EINVAL).
  void detach();
  /// Gives the mapping up without detaching it.
  void release() noexcept;

 private:
  void* address_ = nullptr;
  std::size_t size_ = 0;
  bool read_only_ = false;
};

/// Marks `[address, address + size)` as in use: an attachment that someone will detach, or raw
/// pointers (a Python buffer view) into it. While any pin covers an address,
/// SharedMemory::attach() with SHM_REMAP over it throws std::invalid_argument instead of
/// replacing the memory under the holder.
/// The registry is process-wide, guarded by a mutex (fork-safe). Move-only; any thread.
class RangePin {
 public:
  RangePin() = default;
  /// Registers the range; throws std::bad_alloc.
  RangePin(const void* address, std::size_t size);
  RangePin(RangePin&& other) noexcept;
  RangePin& operator=(RangePin&& other) noexcept;
  RangePin(const RangePin&) = delete;
  RangePin& operator=(const RangePin&) = delete;
  ~RangePin();

  bool pinned() const noexcept { return id_ != 0; }
  /// Whether any pin in this process overlaps `[address, address + size)`.
  static bool any_overlaps(const void* address, std::size_t size);

 private:
  void unpin() noexcept;
  unsigned long long id_ = 0;
};

/// A handle to a System V shared memory segment: its key and id. Copies are cheap; calls are
/// safe from any thread. remove() marks the segment for destruction after the last detach.
class SharedMemory {
 public:
  /// shmget(key, size, (mode & 0777) | (flags & ~0777)): other flag bits (SHM_HUGETLB,
  /// SHM_NORESERVE) pass through. Throws std::invalid_argument for IPC_EXCL without IPC_CREAT.
  SharedMemory(key_t key, int flags, int mode, std::size_t size);
  /// Creates a segment under a random key in 1..32766.
  static SharedMemory create_unique(int flags, int mode, std::size_t size);
  /// Refers to an existing segment by id; no syscall.
  static SharedMemory from_id(int id, key_t key = -1) { return SharedMemory(id, key, Tag{}); }

  key_t key() const noexcept { return key_; }
  int id() const noexcept { return id_; }

  /// shmat(id, address, flags): SHM_RDONLY maps read-only, SHM_RND rounds the address.
  /// SHM_REMAP over a range a RangePin covers throws std::invalid_argument (the mapping there
  /// is left alone); over other memory it replaces the mapping as the kernel does.
  Attachment attach(const void* address = nullptr, int flags = 0) const;
  MemoryStatus status() const;
  /// Changes owner and permission bits (IPC_STAT then IPC_SET).
  void set_owner(uid_t uid, gid_t gid, int mode) const;
  /// Marks the segment for destruction (IPC_RMID).
  void remove() const { remove(id_); }
  static void remove(int id);

 private:
  struct Tag {};
  SharedMemory(int id, key_t key, Tag) : key_(key), id_(id) {}

  key_t key_ = -1;
  int id_ = -1;
};

/// A segment opened the way sysv_ipc's constructor does it, with its first attachment.
struct AttachedMemory {
  SharedMemory memory;
  Attachment attachment;
};

/// sysv_ipc's constructor sequence: size PAGE_SIZE for IPC_CREX with size 0; get (a random key
/// when `key` is empty); attach read-only unless `mode` grants write; when created with
/// IPC_CREX and writable, fill every byte with `fill`. A segment this call created is removed
/// again when a later step fails (compatibility.md sysv DC-7).
AttachedMemory open_attached(std::optional<key_t> key, int flags, int mode, std::size_t size,
                             std::byte fill);

}  // namespace ipcxx::sysv

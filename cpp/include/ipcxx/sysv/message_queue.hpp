// ipcxx::sysv::MessageQueue: a System V message queue with typed messages, by key or id.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ipcxx::sysv {

/// Live facts about a queue (IPC_STAT).
struct QueueStatus {
  std::size_t max_bytes;  ///< msg_qbytes: the queue's capacity
  std::size_t current_messages;
  std::time_t last_send_time;
  std::time_t last_receive_time;
  std::time_t last_change_time;
  pid_t last_send_pid;
  pid_t last_receive_pid;
  uid_t uid;
  gid_t gid;
  uid_t cuid;
  gid_t cgid;
  int mode;
};

/// A received message: `size` bytes were stored after the type word of the scratch buffer.
struct ReceivedMessage {
  std::size_t size;
  long type;
};

/// Storage for MessageQueue::receive that grows with the messages it receives, never with the
/// largest one allowed, and is never zero-filled. Move-only; not thread-safe (one per thread).
class ReceiveBuffer {
 public:
  /// The first attempt's room: one attempt for every message up to this size.
  static constexpr std::size_t kFirstAttempt = 64 * 1024;

  /// `first_attempt` (at least 1) is the message room tried first when the buffer is smaller.
  explicit ReceiveBuffer(std::size_t first_attempt = kFirstAttempt) noexcept
      : first_attempt_(first_attempt ? first_attempt : 1) {}
  /// Moving leaves `other` empty (capacity 0), ready to grow again.
  ReceiveBuffer(ReceiveBuffer&& other) noexcept
      : storage_(std::move(other.storage_)),
        capacity_(std::exchange(other.capacity_, 0)),
        first_attempt_(other.first_attempt_) {}
  ReceiveBuffer& operator=(ReceiveBuffer&& other) noexcept {
    storage_ = std::move(other.storage_);
    capacity_ = std::exchange(other.capacity_, 0);
    first_attempt_ = other.first_attempt_;
    return *this;
  }

  /// The bytes of a message this buffer received last.
  std::span<const std::byte> message(const ReceivedMessage& received) const noexcept;
  /// Message room allocated now (the type word not counted).
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t first_attempt() const noexcept { return first_attempt_; }
  /// Room for at least `room` message bytes after the type word; keeps nothing of the old
  /// content. Throws std::bad_alloc.
  std::byte* reserve(std::size_t room);
  std::byte* data() noexcept { return storage_.get(); }

 private:
  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t first_attempt_;
};

/// A handle to a System V message queue: its key and id. Copies are cheap; calls are safe
/// from any thread. remove() destroys the queue; waiters then fail with Error(EIDRM).
class MessageQueue {
 public:
  /// msgget(key, (mode & 0777) | (flags & (IPC_CREAT | IPC_EXCL))). Throws
  /// std::invalid_argument for IPC_EXCL without IPC_CREAT.
  MessageQueue(key_t key, int flags, int mode = 0600);
  /// Creates a queue under a random key in 1..32766.
  static MessageQueue create_unique(int flags, int mode = 0600);
  /// Refers to an existing queue by id; no syscall.
  static MessageQueue from_id(int id, key_t key = 0) { return MessageQueue(id, key, Tag{}); }

  key_t key() const noexcept { return key_; }
  int id() const noexcept { return id_; }

  /// Sends `message` with `type` (> 0, else std::invalid_argument) when it is at most
  /// `max_size` bytes long (else std::length_error; both checked before any syscall, in this
  /// order, with sysv_ipc's texts). `wait` false means IPC_NOWAIT. Returns false when the queue
  /// is full and it did not wait.
  bool send(long type, std::span<const std::byte> message, bool wait,
            std::size_t max_size = SIZE_MAX) const;
  /// Receives a message selected by `type` (0: oldest; > 0: oldest of that type; < 0: lowest
  /// type <= |type|) of at most `max_size` bytes into `buffer`, which grows with the message
  /// (x4 per E2BIG retry; a retry never waits for a message that is already there). nullopt
  /// when nothing matched and it did not wait. Throws Error(E2BIG) for a message longer than
  /// `max_size`, which stays queued; std::bad_alloc when the buffer cannot grow.
  std::optional<ReceivedMessage> receive(long type, std::size_t max_size, ReceiveBuffer& buffer,
                                         bool wait) const;
  /// Like receive() with max_size = into.size(), then copies the message to the start of
  /// `into` (the kernel writes a type word before the text, so `scratch` holds it first).
  /// Throws Error(E2BIG) for a longer message, which stays queued.
  std::optional<ReceivedMessage> receive_into(long type, std::span<std::byte> into,
                                              ReceiveBuffer& scratch, bool wait) const;
  /// The same into a vector (resized as the message needs, zero-filling what it adds; the
  /// message starts at scratch.data() + message_offset).
  std::optional<ReceivedMessage> receive(long type, std::size_t max_size,
                                         std::vector<std::byte>& scratch, bool wait) const;
  /// Where a received message's bytes start in the scratch buffer.
  static constexpr std::size_t message_offset = sizeof(long);

  QueueStatus status() const;
  /// Changes owner, permission bits and capacity (IPC_STAT then IPC_SET).
  void set_attributes(uid_t uid, gid_t gid, int mode, std::size_t max_bytes) const;
  /// Destroys the queue and its messages (IPC_RMID).
  void remove() const { remove(id_); }
  static void remove(int id);

 private:
  struct Tag {};
  MessageQueue(int id, key_t key, Tag) : key_(key), id_(id) {}

  key_t key_ = 0;
  int id_ = -1;
};

}  // namespace ipcxx::sysv

// ipcxx::sysv::MessageQueue: a System V message queue with typed messages, by key or id.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <optional>
#include <span>
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

  /// Sends `message` with `type` (> 0, else std::invalid_argument). `wait` false means
  /// IPC_NOWAIT. Returns false when the queue is full and it did not wait.
  bool send(long type, std::span<const std::byte> message, bool wait) const;
  /// Receives a message selected by `type` (0: oldest; > 0: oldest of that type; < 0: lowest
  /// type <= |type|) of at most `max_size` bytes into `scratch` (resized as needed; the
  /// message starts at scratch.data() + message_offset). nullopt when nothing matched and it
  /// did not wait. Throws Error(E2BIG) for a longer message, which stays queued.
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

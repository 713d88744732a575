// ipcxx::sysv::MessageQueue on top of msgget/msgsnd/msgrcv/msgctl.
#include "ipcxx/sysv/message_queue.hpp"

#include <sys/ipc.h>
#include <sys/msg.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "detail/syscall.hpp"
#include "detail/unique_key.hpp"
#include "ipcxx/sysv/keys.hpp"

namespace ipcxx::sysv {

MessageQueue::MessageQueue(key_t key, int flags, int mode) : key_(key) {
  validate_get_flags(flags);
  id_ = detail::check(::msgget(key, (mode & 0777) | (flags & (IPC_CREAT | IPC_EXCL))), "msgget",
                      describe_key(key));
}

MessageQueue MessageQueue::create_unique(int flags, int mode) {
  return detail::create_with_unique_key(
      [&](key_t key) { return MessageQueue(key, flags | IPC_CREAT | IPC_EXCL, mode); });
}

bool MessageQueue::send(long type, std::span<const std::byte> message, bool wait) const {
  if (type <= 0) throw std::invalid_argument("The type must be > 0");
  // msgsnd wants the type word right before the bytes; small messages stay on the stack.
  constexpr std::size_t kStackBytes = 1024;
  std::array<std::byte, kStackBytes> stack_buffer;
  std::unique_ptr<std::byte[]> heap_buffer;  // not zero-filled: every byte is written below
  std::byte* buffer = stack_buffer.data();
  const std::size_t total = message_offset + message.size();
  if (total > kStackBytes) {
    heap_buffer = std::make_unique_for_overwrite<std::byte[]>(total);
    buffer = heap_buffer.get();
  }
  std::memcpy(buffer, &type, sizeof type);
  if (!message.empty()) std::memcpy(buffer + message_offset, message.data(), message.size());
  if (::msgsnd(id_, buffer, message.size(), wait ? 0 : IPC_NOWAIT) == 0) return true;
  if (errno == EAGAIN) return false;
  detail::throw_errno("msgsnd", describe_id(id_));
}

std::optional<ReceivedMessage> MessageQueue::receive(long type, std::size_t max_size,
                                                     std::vector<std::byte>& scratch,
                                                     bool wait) const {
  if (scratch.size() < message_offset + max_size) scratch.resize(message_offset + max_size);
  const ssize_t got = ::msgrcv(id_, scratch.data(), max_size, type, wait ? 0 : IPC_NOWAIT);
  if (got >= 0) {
    long received_type = 0;
    std::memcpy(&received_type, scratch.data(), sizeof received_type);
    return ReceivedMessage{static_cast<std::size_t>(got), received_type};
  }
  if (errno == ENOMSG || (!wait && errno == EAGAIN)) return std::nullopt;
  detail::throw_errno("msgrcv", describe_id(id_));
}

QueueStatus MessageQueue::status() const {
  msqid_ds info{};
  detail::check(::msgctl(id_, IPC_STAT, &info), "msgctl(IPC_STAT)", describe_id(id_));
  return {info.msg_qbytes,    info.msg_qnum,      info.msg_stime,
          info.msg_rtime,     info.msg_ctime,     info.msg_lspid,
          info.msg_lrpid,     info.msg_perm.uid,  info.msg_perm.gid,
          info.msg_perm.cuid, info.msg_perm.cgid, static_cast<int>(info.msg_perm.mode)};
}

void MessageQueue::set_attributes(uid_t uid, gid_t gid, int mode, std::size_t max_bytes) const {
  msqid_ds info{};
  detail::check(::msgctl(id_, IPC_STAT, &info), "msgctl(IPC_STAT)", describe_id(id_));
  info.msg_perm.uid = uid;
  info.msg_perm.gid = gid;
  info.msg_perm.mode = static_cast<decltype(info.msg_perm.mode)>(mode);
  info.msg_qbytes = max_bytes;
  detail::check(::msgctl(id_, IPC_SET, &info), "msgctl(IPC_SET)", describe_id(id_));
}

void MessageQueue::remove(int id) {
  detail::check(::msgctl(id, IPC_RMID, nullptr), "msgctl(IPC_RMID)", describe_id(id));
}

}  // namespace ipcxx::sysv

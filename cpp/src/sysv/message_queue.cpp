// ipcxx::sysv::MessageQueue on top of msgget/msgsnd/msgrcv/msgctl.
#include "ipcxx/sysv/message_queue.hpp"

#include <sys/ipc.h>
#include <sys/msg.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
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

bool MessageQueue::send(long type, std::span<const std::byte> message, bool wait,
                        std::size_t max_size) const {
  // sysv_ipc's texts and order (spec sysv_ipc.md 9.2 steps 2 and 3).
  if (type <= 0) throw std::invalid_argument("The type must be > 0");
  if (message.size() > max_size) {
    char text[96];
    std::snprintf(text, sizeof text, "The message length exceeds queue's max_message_size (%zu)",
                  max_size);
    throw std::length_error(text);
  }
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

namespace {

// msgrcv into room(n) (at least n message bytes after the type word), starting with room for
// `first` bytes and growing x4 up to max_size on E2BIG. Without MSG_NOERROR a message longer
// than the room fails at once, also when waiting, and stays queued (sysv_ipc DC-25, DC-26), so
// memory and time follow the message, not max_size.
template <typename Room>
std::optional<ReceivedMessage> receive_growing(int id, long type, std::size_t max_size,
                                               std::size_t first, bool wait, Room&& room) {
  std::size_t attempt = std::min(max_size, std::max<std::size_t>(first, 1));
  for (;;) {
    std::byte* buffer = room(attempt);
    const ssize_t got = ::msgrcv(id, buffer, attempt, type, wait ? 0 : IPC_NOWAIT);
    if (got >= 0) {
      long received_type = 0;
      std::memcpy(&received_type, buffer, sizeof received_type);
      return ReceivedMessage{static_cast<std::size_t>(got), received_type};
    }
    if (errno == E2BIG && attempt < max_size) {
      attempt = attempt > max_size / 4 ? max_size : attempt * 4;
      continue;
    }
    if (errno == ENOMSG || (!wait && errno == EAGAIN)) return std::nullopt;
    detail::throw_errno("msgrcv", describe_id(id));
  }
}

}  // namespace

std::span<const std::byte> ReceiveBuffer::message(const ReceivedMessage& received) const noexcept {
  return {storage_.get() + MessageQueue::message_offset, received.size};
}

std::byte* ReceiveBuffer::reserve(std::size_t room) {
  if (room > capacity_ || !storage_) {
    if (room > SIZE_MAX - MessageQueue::message_offset) throw std::bad_alloc();
    // make_unique_for_overwrite: default-initialised, so the kernel's copy is the first write.
    storage_ = std::make_unique_for_overwrite<std::byte[]>(MessageQueue::message_offset + room);
    capacity_ = room;
  }
  return storage_.get();
}

std::optional<ReceivedMessage> MessageQueue::receive(long type, std::size_t max_size,
                                                     ReceiveBuffer& buffer, bool wait) const {
  // A buffer grown by an earlier message starts at its size: no retries for similar messages.
  return receive_growing(id_, type, max_size, std::max(buffer.first_attempt(), buffer.capacity()),
                         wait, [&](std::size_t room) { return buffer.reserve(room); });
}

std::optional<ReceivedMessage> MessageQueue::receive_into(long type, std::span<std::byte> into,
                                                          ReceiveBuffer& scratch, bool wait) const {
  std::optional<ReceivedMessage> received = receive(type, into.size(), scratch, wait);
  if (received && received->size != 0)
    std::memcpy(into.data(), scratch.message(*received).data(), received->size);
  return received;
}

std::optional<ReceivedMessage> MessageQueue::receive(long type, std::size_t max_size,
                                                     std::vector<std::byte>& scratch,
                                                     bool wait) const {
  const std::size_t held = scratch.size() > message_offset ? scratch.size() - message_offset : 0;
  return receive_growing(id_, type, max_size, std::max(ReceiveBuffer::kFirstAttempt, held), wait,
                         [&](std::size_t room) {
                           if (room > scratch.max_size() - message_offset) throw std::bad_alloc();
                           if (scratch.size() < message_offset + room)
                             scratch.resize(message_offset + room);
                           return scratch.data();
                         });
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

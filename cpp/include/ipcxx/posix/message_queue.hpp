// ipcxx::posix::MessageQueue: a named POSIX message queue (mq_open family) as an RAII owner.
#pragma once

#include <mqueue.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipcxx/detail/unique_handle.hpp"

namespace ipcxx::posix {

/// Which directions a handle may be used in.
enum class Access { read_only, write_only, read_write };

/// Sizes given to a queue when it is created.
struct QueueLimits {
  long max_messages;
  long max_message_size;
};

/// The outcome of a receive into a caller's buffer.
struct Received {
  std::size_t size;   ///< bytes written at the start of the buffer
  unsigned priority;  ///< the message's priority
};

/// Which thread runs a notify_callback() callback.
enum class CallbackThread {
  /// The process's one dispatcher thread, long-lived: callbacks of every queue run there one at
  /// a time, in the order their notifications arrived; a callback cancelled or closed before
  /// its turn does not run. Events come through a socket of this process's own, read by one
  /// listener thread: no thread per event, and a fork child neither runs nor takes the
  /// parent's events (its own callbacks start its own threads).
  dispatcher,
  /// glibc's SIGEV_THREAD: a new thread per notification, possibly while other callbacks run.
  /// glibc shares its notification socket with fork children, so a child that also asks for
  /// callbacks can take the parent's events: avoid in programs that fork.
  fresh,
};

/// A received message with its own storage.
struct Message {
  std::vector<std::byte> data;
  unsigned priority = 0;
};

/// One open descriptor of a message queue. Not thread-safe for concurrent close() and use;
/// other calls may run concurrently. The destructor closes the descriptor, never unlinks.
/// Calls that may wait return false / nullopt when they did not complete: the timeout
/// expired, or the queue is in non-blocking mode (set_blocking(false) or O_NONBLOCK).
///
/// A failed close() forgets the descriptor all the same (never closed twice: the number may
/// belong to another file by then). As with SharedMemory::fd(), a close that fails with EBADF
/// (closed behind our back) leaves descriptor() showing the stale number like upstream's
/// `mqd`; no call uses it, and close() reports EBADF again without calling mq_close().
class MessageQueue {
 public:
  /// mq_open(name, flags | access, mode, limits when O_CREAT), then mq_getattr. Throws
  /// std::invalid_argument for bad flags or a NUL in the name, ipcxx::Error (call "mq_open"
  /// or "mq_getattr") when the kernel refuses.
  MessageQueue(std::string name, int flags, mode_t mode, QueueLimits limits,
               Access access = Access::read_write);

  /// Opens an existing queue.
  static MessageQueue open(std::string name, Access access = Access::read_write);
  /// Creates a new queue; throws Error(EEXIST) when the name is taken.
  static MessageQueue create(std::string name, QueueLimits limits, mode_t mode = 0600);
  /// Creates a queue under a fresh random name, retrying on EEXIST.
  static MessageQueue create_unique(int flags, mode_t mode, QueueLimits limits,
                                    Access access = Access::read_write);

  MessageQueue(MessageQueue&& other) noexcept;
  /// Closes the descriptor held (errors ignored), then takes other's.
  MessageQueue& operator=(MessageQueue&& other) noexcept;
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;
  ~MessageQueue();

  /// Throws std::out_of_range unless 0 <= priority <= max_priority().
  static void validate_priority(long priority);
  /// Checks a message before sending: validate_priority(), then
  /// std::length_error("The message is too long") past max_message_size().
  void validate_send(std::size_t size, long priority) const;

  /// Sends, waiting without limit for room. Throws Error(EINTR) on a signal.
  [[nodiscard]] bool send(std::span<const std::byte> message, unsigned priority = 0);
  /// Sends only if there is room now; never blocks.
  [[nodiscard]] bool try_send(std::span<const std::byte> message, unsigned priority = 0);
  /// Sends, waiting at most `timeout`.
  [[nodiscard]] bool send_for(std::span<const std::byte> message, unsigned priority,
                              std::chrono::nanoseconds timeout);

  /// Receives into `buffer` (at least max_message_size() bytes, else std::length_error),
  /// waiting without limit. Highest priority first, FIFO within a priority.
  std::optional<Received> receive(std::span<std::byte> buffer);
  /// Receives only if a message is there now; never blocks.
  std::optional<Received> try_receive(std::span<std::byte> buffer);
  /// Receives, waiting at most `timeout`.
  std::optional<Received> receive_for(std::span<std::byte> buffer,
                                      std::chrono::nanoseconds timeout);
  /// try_receive() into a fresh buffer sized to the message.
  std::optional<Message> try_receive();

  /// Live number of messages in the queue (mq_getattr).
  long current_messages() const;
  /// Whether waits block (false when O_NONBLOCK is set on this open description).
  bool blocking() const;
  /// Sets or clears O_NONBLOCK (mq_setattr).
  void set_blocking(bool blocking);
  /// Limits read at open time.
  long max_messages() const noexcept { return limits_.max_messages; }
  long max_message_size() const noexcept { return limits_.max_message_size; }

  /// Asks for `signal_number` when the queue goes from empty to non-empty (one shot).
  /// Cancels this process's earlier request first. Throws Error(EINVAL) for a signal outside
  /// 1..SIGRTMAX (before any syscall), Error(EBUSY) when another process is registered.
  void notify_signal(int signal_number);
  /// Like notify_signal(), but runs `callback` once instead, on the thread `thread` says.
  /// Exceptions the callback throws are swallowed.
  void notify_callback(std::function<void()> callback,
                       CallbackThread thread = CallbackThread::dispatcher);
  /// Drops this process's registration, if any. Never throws.
  void cancel_notification() noexcept;

  /// Closes the descriptor (also dropping a notification request). Idempotent once it
  /// succeeded; throws Error (call "mq_close") when mq_close fails, forgetting it either way.
  void close();
  /// Gives the descriptor up without closing it; returns it (-1 when none is owned).
  mqd_t release_descriptor() noexcept;
  /// The descriptor, or -1 after close(); the stale number after a close that said EBADF.
  mqd_t descriptor() const noexcept { return mqd_.valid() ? mqd_.get() : stale_mqd_; }
  /// True while this object owns an open descriptor.
  bool is_open() const noexcept { return mqd_.valid(); }
  /// Removes the name; the queue is destroyed when the last descriptor closes.
  void unlink() const;
  /// mq_unlink(name).
  static void unlink(std::string_view name);

  const std::string& name() const noexcept { return name_; }
  Access access() const noexcept { return access_; }

  /// MQ_PRIO_MAX - 1 from sysconf: the highest priority send() accepts.
  static long max_priority();

 private:
  mq_attr attributes() const;
  void forget_callback() noexcept;

  std::string name_;
  detail::UniqueMqd mqd_;
  mqd_t stale_mqd_ = -1;  // shown by descriptor() after mq_close said EBADF; never used
  Access access_ = Access::read_write;
  QueueLimits limits_{0, 0};
  std::uint64_t callback_token_ = 0;
};

}  // namespace ipcxx::posix

// ipcxx::posix::MessageQueue on top of the mq_* calls.
#include "ipcxx/posix/message_queue.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <stdexcept>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/notification_listener.hpp"
#include "detail/notification_registry.hpp"
#include "detail/syscall.hpp"
#include "detail/unique_name.hpp"
#include "ipcxx/posix/open_flags.hpp"

namespace ipcxx::posix {

namespace {

int access_flags(Access access) {
  switch (access) {
    case Access::read_only:
      return O_RDONLY;
    case Access::write_only:
      return O_WRONLY;
    case Access::read_write:
      break;
  }
  return O_RDWR;
}

const char* as_chars(std::span<const std::byte> bytes) {
  return reinterpret_cast<const char*>(bytes.data());
}

char* as_chars(std::span<std::byte> bytes) { return reinterpret_cast<char*>(bytes.data()); }

// The mq_timed* calls only take CLOCK_REALTIME. Re-arm when the wall clock jumped forward and
// the kernel reports a timeout before the monotonic deadline (compatibility.md DC-12).
template <typename Attempt>
bool wait_until_monotonic(std::chrono::nanoseconds timeout, Attempt attempt) {
  const detail::Deadline deadline(timeout);
  for (;;) {
    const timespec at = deadline.realtime();
    if (attempt(&at) == 0) return true;
    if (errno != ETIMEDOUT) return false;
    if (deadline.expired()) return false;
  }
}

}  // namespace

MessageQueue::MessageQueue(std::string name, int flags, mode_t mode, QueueLimits limits,
                           Access access)
    : name_(std::move(name)), access_(access) {
  validate_open_flags(flags);
  validate_name(name_);
  const int oflag = flags | access_flags(access);
  if (flags & O_CREAT) {
    mq_attr requested{};
    requested.mq_maxmsg = limits.max_messages;
    requested.mq_msgsize = limits.max_message_size;
    mqd_.reset(::mq_open(name_.c_str(), oflag, mode, &requested));
  } else {
    mqd_.reset(::mq_open(name_.c_str(), oflag));
  }
  if (!mqd_) detail::throw_errno(Syscall::mq_open, name_);
  mq_attr actual{};
  if (::mq_getattr(mqd_.get(), &actual) != 0) {
    // Upstream leaks the descriptor here (compatibility.md DC-28); reset() keeps errno.
    mqd_.reset();
    detail::throw_errno(Syscall::mq_getattr, name_);
  }
  limits_ = {actual.mq_maxmsg, actual.mq_msgsize};
}

MessageQueue MessageQueue::open(std::string name, Access access) {
  return MessageQueue(std::move(name), 0, 0, {0, 0}, access);
}

MessageQueue MessageQueue::create(std::string name, QueueLimits limits, mode_t mode) {
  return MessageQueue(std::move(name), O_CREAT | O_EXCL, mode, limits);
}

MessageQueue MessageQueue::create_unique(int flags, mode_t mode, QueueLimits limits,
                                         Access access) {
  return detail::create_with_unique_name([&](std::string name) {
    return MessageQueue(std::move(name), flags | O_CREAT | O_EXCL, mode, limits, access);
  });
}

MessageQueue::MessageQueue(MessageQueue&& other) noexcept
    : name_(std::move(other.name_)),
      mqd_(std::move(other.mqd_)),
      stale_mqd_(std::exchange(other.stale_mqd_, -1)),
      access_(other.access_),
      limits_(other.limits_),
      callback_token_(std::exchange(other.callback_token_, 0)) {}

MessageQueue& MessageQueue::operator=(MessageQueue&& other) noexcept {
  if (this != &other) {
    forget_callback();
    name_ = std::move(other.name_);
    mqd_ = std::move(other.mqd_);
    stale_mqd_ = std::exchange(other.stale_mqd_, -1);
    access_ = other.access_;
    limits_ = other.limits_;
    callback_token_ = std::exchange(other.callback_token_, 0);
  }
  return *this;
}

MessageQueue::~MessageQueue() { forget_callback(); }

long MessageQueue::max_priority() {
  const long limit = ::sysconf(_SC_MQ_PRIO_MAX);
  return (limit > 0 ? limit : MQ_PRIO_MAX) - 1;
}

void MessageQueue::validate_priority(long priority) {
  static const long highest = max_priority();
  if (priority < 0 || priority > highest)
    throw std::out_of_range(
        "The priority must be a positive number no greater than QUEUE_PRIORITY_MAX (" +
        std::to_string(highest) + ")");
}

void MessageQueue::validate_send(std::size_t size, long priority) const {
  validate_priority(priority);
  if (size > static_cast<std::size_t>(limits_.max_message_size))
    throw std::length_error("The message is too long");
}

bool MessageQueue::send(std::span<const std::byte> message, unsigned priority) {
  validate_send(message.size(), priority);
  if (::mq_send(mqd_.get(), as_chars(message), message.size(), priority) == 0) return true;
  if (errno == EAGAIN) return false;
  detail::throw_errno(Syscall::mq_send, name_);
}

bool MessageQueue::try_send(std::span<const std::byte> message, unsigned priority) {
  validate_send(message.size(), priority);
  if (::mq_timedsend(mqd_.get(), as_chars(message), message.size(), priority,
                     &detail::kPastDeadline) == 0)
    return true;
  if (errno == EAGAIN || errno == ETIMEDOUT) return false;
  detail::throw_errno(Syscall::mq_timedsend, name_);
}

bool MessageQueue::send_for(std::span<const std::byte> message, unsigned priority,
                            std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_send(message, priority);
  validate_send(message.size(), priority);
  const bool sent = wait_until_monotonic(timeout, [&](const timespec* at) {
    return ::mq_timedsend(mqd_.get(), as_chars(message), message.size(), priority, at);
  });
  if (sent || errno == EAGAIN || errno == ETIMEDOUT) return sent;
  detail::throw_errno(Syscall::mq_timedsend, name_);
}

namespace {
void require_room(std::span<std::byte> buffer, long max_message_size) {
  if (buffer.size() < static_cast<std::size_t>(max_message_size))
    throw std::length_error("the receive buffer is smaller than max_message_size");
}
}  // namespace

std::optional<Received> MessageQueue::receive(std::span<std::byte> buffer) {
  require_room(buffer, limits_.max_message_size);
  unsigned priority = 0;
  const ssize_t got = ::mq_receive(mqd_.get(), as_chars(buffer), buffer.size(), &priority);
  if (got >= 0) return Received{static_cast<std::size_t>(got), priority};
  if (errno == EAGAIN) return std::nullopt;
  detail::throw_errno(Syscall::mq_receive, name_);
}

std::optional<Received> MessageQueue::try_receive(std::span<std::byte> buffer) {
  require_room(buffer, limits_.max_message_size);
  unsigned priority = 0;
  const ssize_t got = ::mq_timedreceive(mqd_.get(), as_chars(buffer), buffer.size(), &priority,
                                        &detail::kPastDeadline);
  if (got >= 0) return Received{static_cast<std::size_t>(got), priority};
  if (errno == EAGAIN || errno == ETIMEDOUT) return std::nullopt;
  detail::throw_errno(Syscall::mq_timedreceive, name_);
}

std::optional<Received> MessageQueue::receive_for(std::span<std::byte> buffer,
                                                  std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_receive(buffer);
  require_room(buffer, limits_.max_message_size);
  unsigned priority = 0;
  ssize_t got = -1;
  const bool received = wait_until_monotonic(timeout, [&](const timespec* at) {
    got = ::mq_timedreceive(mqd_.get(), as_chars(buffer), buffer.size(), &priority, at);
    return got >= 0 ? 0 : -1;
  });
  if (received) return Received{static_cast<std::size_t>(got), priority};
  if (errno == EAGAIN || errno == ETIMEDOUT) return std::nullopt;
  detail::throw_errno(Syscall::mq_timedreceive, name_);
}

std::optional<Message> MessageQueue::try_receive() {
  std::vector<std::byte> buffer(static_cast<std::size_t>(limits_.max_message_size));
  const std::optional<Received> got = try_receive(buffer);
  if (!got) return std::nullopt;
  buffer.resize(got->size);
  return Message{std::move(buffer), got->priority};
}

mq_attr MessageQueue::attributes() const {
  mq_attr attr{};
  detail::check(::mq_getattr(mqd_.get(), &attr), Syscall::mq_getattr, name_);
  return attr;
}

long MessageQueue::current_messages() const { return attributes().mq_curmsgs; }

bool MessageQueue::blocking() const { return !(attributes().mq_flags & O_NONBLOCK); }

void MessageQueue::set_blocking(bool blocking) {
  mq_attr attr{};
  attr.mq_flags = blocking ? 0 : O_NONBLOCK;
  detail::check(::mq_setattr(mqd_.get(), &attr, nullptr), Syscall::mq_setattr, name_);
}

void MessageQueue::forget_callback() noexcept {
  if (callback_token_ != 0) detail::drop_notification_callback(std::exchange(callback_token_, 0));
}

void MessageQueue::cancel_notification() noexcept {
  ::mq_notify(mqd_.get(), nullptr);  // errors ignored: there may be nothing to cancel
  forget_callback();
}

void MessageQueue::notify_signal(int signal_number) {
  if (signal_number < 1 || signal_number > SIGRTMAX) {
    // The kernel would say EINVAL; upstream truncates to a C int first (DC-25).
    errno = EINVAL;
    detail::throw_errno(Syscall::mq_notify, name_);
  }
  cancel_notification();
  sigevent event{};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = signal_number;
  detail::check(::mq_notify(mqd_.get(), &event), Syscall::mq_notify, name_);
}

void MessageQueue::notify_callback(std::function<void()> callback, CallbackThread thread) {
  cancel_notification();
  const std::uint64_t token = detail::store_notification_callback(std::move(callback));
  int result = 0;
  if (thread == CallbackThread::dispatcher) {
    result = detail::notify_through_listener(mqd_.get(), token);
  } else {
    sigevent event{};
    event.sigev_notify = SIGEV_THREAD;
    event.sigev_notify_function = detail::run_notification_callback;
    event.sigev_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
    result = ::mq_notify(mqd_.get(), &event);
  }
  if (result != 0) {
    const int saved = errno;
    detail::drop_notification_callback(token);
    errno = saved;
    detail::throw_errno(Syscall::mq_notify, name_);
  }
  callback_token_ = token;
}

void MessageQueue::close() {
  // A stale number is reported again, never closed again: it may be someone else's now.
  if (!mqd_) {
    if (stale_mqd_ != static_cast<mqd_t>(-1)) throw Error(EBADF, Syscall::mq_close, name_);
    return;
  }
  // The callback goes last: destroying it may run arbitrary code (a Python __del__) that uses
  // this object, which must be closed and consistent by then.
  const std::uint64_t token = std::exchange(callback_token_, 0);
  const mqd_t number = mqd_.get();
  const int failure = mqd_.reset();
  if (token != 0) detail::drop_notification_callback(token);
  if (failure == 0) return;
  if (failure == EBADF) stale_mqd_ = number;  // upstream leaves `mqd` showing it
  throw Error(failure, Syscall::mq_close, name_);
}

mqd_t MessageQueue::release_descriptor() noexcept {
  callback_token_ = 0;  // the registration stays armed with the descriptor
  stale_mqd_ = -1;
  return mqd_.release();
}

void MessageQueue::unlink() const { unlink(name_); }

void MessageQueue::unlink(std::string_view name) {
  const std::string text(name);
  validate_name(text);
  detail::check(::mq_unlink(text.c_str()), Syscall::mq_unlink, text);
}

}  // namespace ipcxx::posix

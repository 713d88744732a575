// ipcxx::posix::MessageQueue: validation, ordering, outcomes as values, notifications, and
// cross-process traffic.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/message_queue.hpp"

using ipcxx::posix::MessageQueue;
using ipcxx::posix::QueueLimits;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::unique_name;
using namespace std::chrono_literals;

namespace {
using Unlinker = ipcxx::testing::NameGuard<&MessageQueue::unlink>;

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::string text_of(const ipcxx::posix::Message& message) {
  return std::string(reinterpret_cast<const char*>(message.data.data()), message.data.size());
}
}  // namespace

TEST(PosixMessageQueue, HigherPriorityComesFirstThenFifo) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{4, 64});
  ASSERT_TRUE(queue.send(bytes_of("a"), 1));
  ASSERT_TRUE(queue.send(bytes_of("b"), 5));
  ASSERT_TRUE(queue.send(bytes_of("c"), 1));
  EXPECT_EQ(queue.current_messages(), 3);
  EXPECT_EQ(text_of(*queue.try_receive()), "b");
  EXPECT_EQ(text_of(*queue.try_receive()), "a");
  EXPECT_EQ(text_of(*queue.try_receive()), "c");
  EXPECT_FALSE(queue.try_receive().has_value());
}

TEST(PosixMessageQueue, FullAndEmptyAreValuesNotExceptions) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{1, 16});
  EXPECT_TRUE(queue.try_send(bytes_of("x")));
  EXPECT_FALSE(queue.try_send(bytes_of("y")));
  EXPECT_FALSE(queue.send_for(bytes_of("y"), 0, 10ms));
  std::vector<std::byte> buffer(16);
  EXPECT_TRUE(queue.receive_for(buffer, 10ms).has_value());
  EXPECT_FALSE(queue.receive_for(buffer, 10ms).has_value());
  queue.set_blocking(false);
  EXPECT_FALSE(queue.blocking());
  EXPECT_FALSE(queue.receive(buffer).has_value());
}

TEST(PosixMessageQueue, OversizedMessagesAndBadPrioritiesThrowBeforeTheSyscall) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{2, 4});
  EXPECT_THROW((void)queue.try_send(bytes_of("12345")), std::length_error);
  EXPECT_THROW((void)queue.try_send(bytes_of("1"), 1u << 20), std::out_of_range);
  EXPECT_THROW(MessageQueue::validate_priority(-1), std::out_of_range);
  std::vector<std::byte> small(2);
  EXPECT_THROW(queue.try_receive(small), std::length_error);
}

TEST(PosixMessageQueue, OpenWithBadSizesThrowsEinval) {
  try {
    MessageQueue::create(unique_name(), QueueLimits{0, 0});
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EINVAL);
  }
}

TEST(PosixMessageQueue, CallbackNotificationRunsOnceOnAnotherThread) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{2, 16});
  std::mutex mutex;
  std::condition_variable changed;
  int calls = 0;
  queue.notify_callback([&] {
    std::lock_guard lock(mutex);
    ++calls;
    changed.notify_all();
  });
  ASSERT_TRUE(queue.send(bytes_of("x")));
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return calls == 1; }));
}

TEST(PosixMessageQueue, CancelledCallbackNeverRuns) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{2, 16});
  bool ran = false;
  queue.notify_callback([&] { ran = true; });
  queue.cancel_notification();
  ASSERT_TRUE(queue.send(bytes_of("x")));
  queue.close();  // the registration is gone; nothing can fire any more
  EXPECT_FALSE(ran);
}

TEST(PosixMessageQueue, DispatcherCallbacksRunOnOneThreadAndOneCancelledBeforeItsTurnNever) {
  constexpr int kQueues = 6;
  std::vector<Unlinker> names;
  std::vector<MessageQueue> queues;
  for (int i = 0; i < kQueues; ++i) {
    names.push_back(Unlinker{unique_name()});
    queues.push_back(MessageQueue::create(names.back().name, QueueLimits{2, 16}));
  }
  std::mutex mutex;
  std::condition_variable changed;
  bool release = false;
  std::vector<pid_t> threads;  // kernel thread id per callback run, in run order
  bool cancelled_ran = false;
  const auto record = [&] {
    std::lock_guard lock(mutex);
    threads.push_back(::gettid());
    changed.notify_all();
  };
  // The first callback holds the dispatcher until the others are queued or pending.
  queues[0].notify_callback(
      [&] {
        record();
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return release; });
      },
      ipcxx::posix::CallbackThread::dispatcher);
  for (int i = 1; i < kQueues - 1; ++i)
    queues[i].notify_callback(record, ipcxx::posix::CallbackThread::dispatcher);
  queues[kQueues - 1].notify_callback([&] { cancelled_ran = true; },
                                      ipcxx::posix::CallbackThread::dispatcher);
  ASSERT_TRUE(queues[0].send(bytes_of("x")));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return threads.size() == 1; }));
  }
  for (int i = 1; i < kQueues; ++i) ASSERT_TRUE(queues[i].send(bytes_of("x")));
  queues[kQueues - 1].cancel_notification();  // fired already; its turn has not come
  {
    std::lock_guard lock(mutex);
    release = true;
    changed.notify_all();
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return threads.size() == kQueues - 1; }));
  for (pid_t thread : threads) EXPECT_EQ(thread, threads.front());
  EXPECT_NE(threads.front(), ::gettid());
  EXPECT_FALSE(cancelled_ran);
}

namespace {
// Waits up to 10 s for a callback on `queue` after a send; true when it ran.
bool callback_runs_after_send(MessageQueue& queue, ipcxx::posix::CallbackThread thread) {
  std::mutex mutex;
  std::condition_variable changed;
  bool ran = false;
  queue.notify_callback(
      [&] {
        std::lock_guard lock(mutex);
        ran = true;
        changed.notify_all();
      },
      thread);
  if (!queue.send(bytes_of("x"))) return false;
  std::unique_lock lock(mutex);
  const bool done = changed.wait_for(lock, 10s, [&] { return ran; });
  lock.unlock();
  queue.cancel_notification();
  queue.try_receive();
  return done;
}
}  // namespace

TEST(PosixMessageQueue, AForkChildsCallbacksNeverTakeTheParentsEvents) {
  // glibc's SIGEV_THREAD (CallbackThread::fresh) shares one netlink socket between parent and
  // child: each side's reader takes the other's events, which are then lost (or worse).
  Unlinker parents{unique_name()};
  Unlinker childs{unique_name()};
  MessageQueue queue = MessageQueue::create(parents.name, QueueLimits{2, 16});
  MessageQueue other = MessageQueue::create(childs.name, QueueLimits{2, 16});
  ASSERT_TRUE(callback_runs_after_send(queue, ipcxx::posix::CallbackThread::dispatcher));
  for (int round = 0; round < 20; ++round) {
    ChildProcess child([&] {
      for (int i = 0; i < 20; ++i)
        if (!callback_runs_after_send(other, ipcxx::posix::CallbackThread::dispatcher)) return 1;
      return 0;
    });
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(callback_runs_after_send(queue, ipcxx::posix::CallbackThread::dispatcher))
          << "round " << round << ", event " << i;
    ASSERT_EQ(child.wait(), 0) << "round " << round;
  }
}

TEST(PosixMessageQueue, SignalOutsideTheValidRangeIsEinval) {
  Unlinker cleanup{unique_name()};
  MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{2, 16});
  try {
    queue.notify_signal(0);
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EINVAL);
  }
}

TEST(PosixMessageQueue, MessagesCrossProcesses) {
  Unlinker requests_cleanup{unique_name()};
  Unlinker replies_cleanup{unique_name()};
  MessageQueue requests = MessageQueue::create(requests_cleanup.name, QueueLimits{8, 32});
  MessageQueue replies = MessageQueue::create(replies_cleanup.name, QueueLimits{8, 32});
  ChildProcess child([&] {
    MessageQueue in = MessageQueue::open(requests_cleanup.name);
    MessageQueue out = MessageQueue::open(replies_cleanup.name);
    std::vector<std::byte> buffer(32);
    for (int i = 0; i < 100; ++i) {
      auto got = in.receive(buffer);
      if (!got || got->priority != static_cast<unsigned>(i % 3)) return 1;
      if (!out.send(std::span<const std::byte>(buffer.data(), got->size), 0)) return 2;
    }
    return 0;
  });
  std::vector<std::byte> buffer(32);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(requests.send(bytes_of("ping"), static_cast<unsigned>(i % 3)));
    auto got = replies.receive_for(buffer, 10s);
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->size, 4u);
  }
  EXPECT_EQ(child.wait(), 0);
}

TEST(PosixMessageQueue, FailedCloseForgetsTheDescriptorSoAReusedNumberStaysOpen) {
  Unlinker cleanup{unique_name()};
  int reused = -1;
  {
    MessageQueue queue = MessageQueue::create(cleanup.name, QueueLimits{4, 64});
    const mqd_t number = queue.descriptor();
    ASSERT_EQ(::close(number), 0);  // an mqd_t is a descriptor on Linux
    try {
      queue.close();
      FAIL() << "no exception";
    } catch (const ipcxx::Error& error) {
      EXPECT_EQ(error.errno_value(), EBADF);
      EXPECT_EQ(error.syscall(), ipcxx::Syscall::mq_close);
    }
    EXPECT_EQ(queue.descriptor(), number);
    EXPECT_FALSE(queue.is_open());
    reused = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(reused, number);
    EXPECT_THROW(queue.close(), ipcxx::Error);
    EXPECT_THROW(queue.current_messages(), ipcxx::Error);  // mq_getattr(-1), not `reused`
  }
  EXPECT_NE(::fcntl(reused, F_GETFD), -1);
  ::close(reused);
}

// ipcxx::sysv::MessageQueue: type selection, outcomes as values, capacity, cross-process,
// receive buffers that grow with the message.
#include <gtest/gtest.h>
#include <sys/ipc.h>

#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/message_queue.hpp"

using ipcxx::sysv::MessageQueue;
using ipcxx::testing::ChildProcess;

namespace {
using Removal = ipcxx::testing::Removal<MessageQueue>;

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::string text_at(const std::vector<std::byte>& scratch, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(scratch.data() + MessageQueue::message_offset),
                     size);
}
}  // namespace

TEST(SysvMessageQueue, TypeSelectsTheMessage) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  for (long type : {4L, 2L, 3L}) {
    // Appended, not "t" + std::string: GCC 12 at -O3 (the default Release build) warns a false
    // -Wrestrict on operator+(const char*, std::string&&) (GCC bug 105329).
    std::string text = "t";
    text += std::to_string(type);
    ASSERT_TRUE(queue.send(type, bytes_of(text), false));
  }
  std::vector<std::byte> scratch;
  auto got = queue.receive(3, 16, scratch, false);
  ASSERT_TRUE(got);
  EXPECT_EQ(text_at(scratch, got->size), "t3");
  got = queue.receive(-4, 16, scratch, false);  // the lowest type <= 4
  ASSERT_TRUE(got);
  EXPECT_EQ(got->type, 2);
  got = queue.receive(0, 16, scratch, false);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->type, 4);
  EXPECT_FALSE(queue.receive(0, 16, scratch, false));
}

TEST(SysvMessageQueue, TypeMustBePositiveAndFullQueueIsFalse) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  EXPECT_THROW((void)queue.send(0, bytes_of("x"), false), std::invalid_argument);
  try {
    (void)queue.send(1, bytes_of("12345"), false, 4);
    FAIL() << "no exception";
  } catch (const std::length_error& error) {
    EXPECT_STREQ(error.what(), "The message length exceeds queue's max_message_size (4)");
  }
  // The type is checked first, as sysv_ipc does.
  EXPECT_THROW((void)queue.send(-1, bytes_of("12345"), false, 4), std::invalid_argument);
  auto status = queue.status();
  queue.set_attributes(status.uid, status.gid, status.mode, 4);
  EXPECT_TRUE(queue.send(1, bytes_of("1234"), false));
  EXPECT_FALSE(queue.send(1, bytes_of("5"), false));
  EXPECT_EQ(queue.status().current_messages, 1u);
}

TEST(SysvMessageQueue, LongMessageForASmallBufferIsE2bigAndStays) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ASSERT_TRUE(queue.send(1, bytes_of("0123456789"), false));
  std::vector<std::byte> scratch;
  try {
    queue.receive(0, 4, scratch, false);
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), E2BIG);
  }
  EXPECT_EQ(queue.status().current_messages, 1u);
}

TEST(SysvMessageQueue, MessagesCrossProcesses) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ChildProcess child([&] {
    std::vector<std::byte> scratch;
    for (int i = 1; i <= 100; ++i) {
      auto got = queue.receive(1, 32, scratch, true);
      if (!got || text_at(scratch, got->size) != std::to_string(i)) return 1;
      if (!queue.send(2, bytes_of("ack"), true)) return 2;
    }
    return 0;
  });
  std::vector<std::byte> scratch;
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(queue.send(1, bytes_of(std::to_string(i)), true));
    auto got = queue.receive(2, 32, scratch, true);
    ASSERT_TRUE(got);
  }
  EXPECT_EQ(child.wait(), 0);
}

TEST(SysvMessageQueue, SmallMessageWithAHugeMaximumNeedsOnlyTheFirstAttempt) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ASSERT_TRUE(queue.send(7, bytes_of("hello"), false));
  ipcxx::sysv::ReceiveBuffer buffer;
  auto got = queue.receive(0, std::size_t{1} << 40, buffer, false);  // 1 TiB: never allocated
  ASSERT_TRUE(got);
  EXPECT_EQ(got->type, 7);
  const auto message = buffer.message(*got);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "hello");
  EXPECT_EQ(buffer.capacity(), ipcxx::sysv::ReceiveBuffer::kFirstAttempt);
}

TEST(SysvMessageQueue, ReceiveBufferGrowsWithTheMessageNotTheMaximum) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  std::string big(8000, '\0');  // fits the default msgmax (8192)
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(queue.send(1, bytes_of(big), false));
  ipcxx::sysv::ReceiveBuffer buffer(16);  // forces E2BIG retries: 16, 64, ..., 16384
  auto got = queue.receive(0, std::size_t{1} << 30, buffer, false);
  ASSERT_TRUE(got);
  const auto message = buffer.message(*got);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), big);
  EXPECT_GE(buffer.capacity(), big.size());
  EXPECT_LE(buffer.capacity(), 4 * big.size());
  EXPECT_EQ(queue.status().current_messages, 0u);
}

TEST(SysvMessageQueue, GrowingBufferStillRefusesAMessageOverTheMaximum) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ASSERT_TRUE(queue.send(1, bytes_of(std::string(200, 'x')), false));
  ipcxx::sysv::ReceiveBuffer buffer(16);
  for (bool wait : {false, true}) {
    try {
      queue.receive(0, 100, buffer, wait);
      FAIL() << "no exception";
    } catch (const ipcxx::Error& error) {
      EXPECT_EQ(error.errno_value(), E2BIG);
    }
  }
  EXPECT_LE(buffer.capacity(), 100u);
  EXPECT_EQ(queue.status().current_messages, 1u);   // it stays queued
  auto got = queue.receive(0, 200, buffer, false);  // exactly the message's size
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size, 200u);
}

TEST(SysvMessageQueue, BlockingReceiveGrowsWithoutWaitingAgain) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ChildProcess child([&] { return queue.send(3, bytes_of(std::string(5000, 'z')), true) ? 0 : 1; });
  ipcxx::sysv::ReceiveBuffer buffer(16);
  auto got = queue.receive(3, 1 << 20, buffer, true);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size, 5000u);
  EXPECT_EQ(buffer.message(*got)[4999], std::byte{'z'});
  EXPECT_EQ(child.wait(), 0);
}

TEST(SysvMessageQueue, VectorScratchGrowsWithTheMessageToo) {
  const MessageQueue queue = MessageQueue::create_unique(0);
  Removal removal{queue};
  ASSERT_TRUE(queue.send(1, bytes_of("abc"), false));
  std::vector<std::byte> scratch;
  auto got = queue.receive(0, std::size_t{1} << 40, scratch, false);
  ASSERT_TRUE(got);
  EXPECT_EQ(text_at(scratch, got->size), "abc");
  EXPECT_LE(scratch.size(),
            MessageQueue::message_offset + ipcxx::sysv::ReceiveBuffer::kFirstAttempt);
}

// ipcxx::sysv::MessageQueue: type selection, outcomes as values, capacity, cross-process.
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
  for (long type : {4L, 2L, 3L})
    ASSERT_TRUE(queue.send(type, bytes_of("t" + std::to_string(type)), false));
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

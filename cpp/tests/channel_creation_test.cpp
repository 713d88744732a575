// ipcxx::Channel creation: exclusive creation, capacities, and segments refused at once.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"

using ipcxx::Channel;
using ipcxx::ChannelError;
using ipcxx::testing::unique_name;

namespace {

using Unlinker = ipcxx::testing::NameGuard<&Channel::unlink>;

TEST(ChannelCreation, CreateRefusesATakenName) {
  const std::string name = unique_name();
  Unlinker guard(name);
  Channel made = Channel::create(name, 4096);
  EXPECT_EQ(made.capacity(), 4096u);
  try {
    Channel::create(name, 4096);
    FAIL() << "created twice";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EEXIST);
  }
  Channel opened(name, true, 1 << 20);  // open-or-create opens it, capacity unchanged
  EXPECT_EQ(opened.capacity(), 4096u);
}

TEST(ChannelCreation, CapacityForMessageIsTheSmallestRingThatHoldsIt) {
  EXPECT_EQ(Channel::capacity_for_message(0), Channel::kMinCapacity);
  EXPECT_EQ(Channel::capacity_for_message(2048 - 16), 4096u);
  EXPECT_EQ(Channel::capacity_for_message(2048 - 15), 8192u);
  EXPECT_EQ(Channel::capacity_for_message(std::size_t{1} << 20), std::size_t{4} << 20);
  EXPECT_EQ(Channel::capacity_for_message(Channel::kMaxCapacity / 2 - 16), Channel::kMaxCapacity);
  EXPECT_EQ(Channel::capacity_for_message(Channel::kMaxCapacity / 2 - 15), 0u);
  for (std::size_t size : {std::size_t{1}, std::size_t{5000}, std::size_t{123457}}) {
    const std::size_t fits = Channel::capacity_for_message(size);
    EXPECT_LE(size, fits / 2 - 16);
    if (fits > Channel::kMinCapacity) {
      EXPECT_GT(size, fits / 4 - 16);
    }
  }
  EXPECT_EQ(Channel::ring_capacity(3 << 20), std::size_t{4} << 20);
  EXPECT_EQ(Channel::ring_capacity(1), Channel::kMinCapacity);
}

TEST(ChannelCreation, TooLargeMessageErrorNamesACapacity) {
  const std::string name = unique_name();
  Unlinker guard(name);
  Channel channel = Channel::create(name, 4096);
  const std::vector<std::byte> data(5000);
  try {
    (void)channel.try_send(data);
    FAIL() << "sent";
  } catch (const std::length_error& error) {
    EXPECT_NE(std::string(error.what()).find("a channel of capacity 16384 or more"),
              std::string::npos)
        << error.what();
  }
}

TEST(ChannelCreation, ASizeNoChannelHasIsRefusedAtOnce) {
  const std::string name = unique_name();
  Unlinker guard(name);
  ipcxx::posix::SharedMemory foreign(name, O_CREAT | O_EXCL, 0600, 1 << 20);
  const auto started = std::chrono::steady_clock::now();
  try {
    Channel opened(name);
    FAIL() << "opened";
  } catch (const ChannelError& error) {
    EXPECT_NE(std::string(error.what()).find("not that of any channel"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500));
}

}  // namespace

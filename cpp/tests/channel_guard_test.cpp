// ipcxx::Channel's scope guards (reserve/claim) and receive_into: commit, discard and consume at
// scope exit, on exceptions and after moves; timeouts; across a forked child.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "ipcxx/ipcxx.hpp"

using ipcxx::Channel;
using ipcxx::ChannelDeliveryGuard;
using ipcxx::ChannelReceived;
using ipcxx::ChannelReservationGuard;
using ipcxx::ChannelStatus;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::Signal;
using namespace std::chrono_literals;

namespace {

using Unlinker = ipcxx::testing::NameGuard<&Channel::unlink>;

std::span<const std::byte> text(const std::string& value) {
  return std::as_bytes(std::span(value.data(), value.size()));
}

std::string as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void write_text(std::span<std::byte> out, const std::string& value) {
  ASSERT_EQ(out.size(), value.size());
  std::memcpy(out.data(), value.data(), value.size());
}

// The next message as text, or "" when there is none now.
std::string next(Channel& channel) {
  auto got = channel.receive(0ns);
  return got ? as_text(*got) : "";
}

// Fills the ring with messages of `size` bytes; returns how many fit.
int fill(Channel& channel, std::size_t size) {
  const std::vector<std::byte> filler(size, std::byte{'f'});
  int sent = 0;
  while (channel.try_send(filler) == ChannelStatus::done) ++sent;
  return sent;
}

struct Failure : std::runtime_error {
  Failure() : std::runtime_error("failure") {}
};

}  // namespace

TEST(ChannelGuard, ReservationIsCommittedWhenItsScopeEnds) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  {
    ChannelReservationGuard reserved = channel.reserve(5);
    ASSERT_TRUE(reserved.active());
    ASSERT_EQ(reserved.size(), 5u);
    write_text(reserved.bytes(), "hello");
    EXPECT_FALSE(channel.try_claim());  // not deliverable before the scope ends
  }
  EXPECT_EQ(next(channel), "hello");
  EXPECT_EQ(channel.abandoned(), 0u);
}

TEST(ChannelGuard, ReservationIsDiscardedWhenAnExceptionLeavesItsScope) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  EXPECT_THROW(
      {
        ChannelReservationGuard reserved = channel.reserve(4);
        write_text(reserved.bytes(), "half");
        throw Failure();
      },
      Failure);
  EXPECT_EQ(channel.abandoned(), 1u);
  ASSERT_TRUE(channel.send(text("after")));
  EXPECT_EQ(next(channel), "after");  // the discarded one is skipped, not delivered
  EXPECT_EQ(next(channel), "");
}

// A guard made while another exception unwinds (in a destructor) commits when its own scope ends
// normally: the guard compares exception counts, not "is any exception in flight".
TEST(ChannelGuard, ReservationMadeDuringUnwindingCommitsAtItsOwnScopeExit) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  struct SendsWhenDestroyed {
    Channel& channel;
    ~SendsWhenDestroyed() {
      ChannelReservationGuard reserved = channel.reserve(7);
      write_text(reserved.bytes(), "cleanup");
    }
  };
  try {
    SendsWhenDestroyed sender{channel};
    throw Failure();
  } catch (const Failure&) {
  }
  EXPECT_EQ(next(channel), "cleanup");
  EXPECT_EQ(channel.abandoned(), 0u);
}

TEST(ChannelGuard, ExplicitCommitAndDiscardFinishOnceAndEarly) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  {
    ChannelReservationGuard first = channel.reserve(5);
    write_text(first.bytes(), "first");
    first.commit();
    EXPECT_FALSE(first.active());
    EXPECT_TRUE(first.bytes().empty());
    EXPECT_EQ(next(channel), "first");  // deliverable while the guard still exists
    first.discard();                    // finished already: nothing happens
    ChannelReservationGuard second = channel.reserve(6);
    second.discard();
    EXPECT_FALSE(second);
    second.commit();
  }
  EXPECT_EQ(channel.abandoned(), 1u);
  EXPECT_EQ(next(channel), "");
}

TEST(ChannelGuard, DeliveryIsConsumedWhenItsScopeEndsAndFreesTheSpaceThen) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_EQ(fill(channel, 1000), 4);  // 4 records of 1024 bytes: the ring is full
  {
    ChannelDeliveryGuard claimed = channel.claim();
    EXPECT_EQ(claimed.size(), 1000u);
    // The space of a claimed message is not free before it is consumed.
    EXPECT_FALSE(channel.try_reserve(1000));
  }
  EXPECT_TRUE(channel.try_reserve(1000));
  EXPECT_EQ(channel.lost(), 0u);
}

TEST(ChannelGuard, DeliveryIsCountedLostWhenAnExceptionLeavesItsScope) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_TRUE(channel.send(text(std::string(1000, 'a'))));
  ASSERT_EQ(fill(channel, 1000), 3);  // full
  EXPECT_THROW(
      {
        ChannelDeliveryGuard claimed = channel.claim();
        EXPECT_EQ(as_text(claimed.bytes()), std::string(1000, 'a'));
        throw Failure();
      },
      Failure);
  EXPECT_EQ(channel.lost(), 1u);
  EXPECT_TRUE(channel.try_reserve(1000));  // its space was freed
  auto after = channel.receive(0ns);       // the next one is delivered, not the lost one
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)[0], std::byte{'f'});
}

TEST(ChannelGuard, ExplicitConsumeAndConsumeLost) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_TRUE(channel.send(text("one")));
  ASSERT_TRUE(channel.send(text("two")));
  ChannelDeliveryGuard one = channel.claim();
  one.consume();
  EXPECT_FALSE(one.active());
  one.consume_lost();  // finished already: not counted
  ChannelDeliveryGuard two = channel.claim();
  EXPECT_EQ(as_text(two.bytes()), "two");
  two.consume_lost();
  EXPECT_EQ(channel.lost(), 1u);
}

TEST(ChannelGuard, MovesTransferTheMessageAndAssignmentFinishesTheOldOne) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  std::vector<ChannelReservationGuard> pending;
  {
    ChannelReservationGuard reserved = channel.reserve(3);
    write_text(reserved.bytes(), "one");
    pending.push_back(std::move(reserved));
    EXPECT_FALSE(reserved.active());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  EXPECT_EQ(next(channel), "");  // the vector's guard holds it
  ChannelReservationGuard target = channel.reserve(3);
  write_text(target.bytes(), "two");
  ChannelReservationGuard source = channel.reserve(5);
  write_text(source.bytes(), "three");
  target = std::move(source);     // commits "two"
  EXPECT_FALSE(source.active());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(next(channel), "");   // "one" is first and still reserved
  pending.clear();
  EXPECT_EQ(next(channel), "one");
  EXPECT_EQ(next(channel), "two");
  EXPECT_EQ(next(channel), "");
  // The Channel object itself may move while a guard is alive.
  Channel moved = std::move(channel);
  target.commit();
  EXPECT_EQ(next(moved), "three");

  ASSERT_TRUE(moved.send(text("a")));
  ASSERT_TRUE(moved.send(text("b")));
  std::optional<ChannelDeliveryGuard> held = moved.try_claim();
  ASSERT_TRUE(held);
  ChannelDeliveryGuard claimed = std::move(*held);
  EXPECT_FALSE(held->active());
  EXPECT_EQ(as_text(claimed.bytes()), "a");
  claimed = moved.claim();  // consumes "a"
  EXPECT_EQ(as_text(claimed.bytes()), "b");
  claimed.consume();
  EXPECT_EQ(moved.lost(), 0u);
  EXPECT_EQ(moved.abandoned(), 0u);
}

TEST(ChannelGuard, TimedAndNonBlockingFormsReturnNothingWhenTheyCannot) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  EXPECT_FALSE(channel.try_claim());
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.claim_for(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 30ms);
  std::byte buffer[8];
  EXPECT_EQ(channel.try_receive_into(buffer).status, ChannelStatus::would_block);
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(channel.receive_into_for(buffer, 30ms).status, ChannelStatus::would_block);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 30ms);

  // A timeout beyond the clock's range does not overflow into "expired".
  EXPECT_TRUE(channel.reserve_for(8, std::chrono::nanoseconds::max()));
  EXPECT_TRUE(channel.claim_for(std::chrono::nanoseconds::max()));

  fill(channel, 1000);
  EXPECT_FALSE(channel.try_reserve(1000));
  started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.reserve_for(1000, 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 30ms);
  EXPECT_FALSE(channel.reserve_for(1000, -5ms));
  EXPECT_THROW(channel.reserve(channel.max_message_size() + 1), std::length_error);
  EXPECT_THROW(channel.try_reserve(channel.max_message_size() + 1), std::length_error);
}

TEST(ChannelGuard, ReceiveIntoATooSmallSpanLeavesTheMessageQueued) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  const std::string long_message(100, 'x');
  ASSERT_TRUE(channel.send(text(long_message)));
  ASSERT_TRUE(channel.send({}));
  std::byte small[10];
  // Returns at once (the message is there, it is only too long), also for the blocking form.
  ChannelReceived received = channel.receive_into(small);
  EXPECT_FALSE(received);
  EXPECT_EQ(received.status, ChannelStatus::too_large);
  EXPECT_EQ(received.size, 100u);
  EXPECT_EQ(channel.try_receive_into(small).status, ChannelStatus::too_large);
  EXPECT_EQ(channel.receive_into_for(small, 1s).status, ChannelStatus::too_large);
  std::vector<std::byte> large(200);
  received = channel.receive_into(large);
  ASSERT_TRUE(received);
  EXPECT_EQ(received.size, 100u);
  EXPECT_EQ(as_text(std::span(large).first(received.size)), long_message);
  received = channel.try_receive_into(small);  // an empty message fits any span
  ASSERT_TRUE(received);
  EXPECT_EQ(received.size, 0u);
  EXPECT_EQ(channel.lost(), 0u);
}

// A small ring makes the parent's reserve() wait for the child's consumption and the child's
// claim() wait for the parent's commits, across two processes; the child checks every byte.
TEST(ChannelGuard, BlockingGuardsStreamToAForkedChild) {
  Channel requests = Channel::create_unique(4096);
  Unlinker unlink_requests{requests.name()};
  Channel replies = Channel::create_unique(4096);
  Unlinker unlink_replies{replies.name()};
  constexpr int kCount = 3000;
  Signal ready;
  ChildProcess child([&] {
    Channel mine(requests.name());
    ready.notify();
    std::byte buffer[1000];
    for (int i = 0; i < kCount; ++i) {
      const std::size_t size = 1 + (i * 37) % 1000;
      if (i % 2 == 0) {
        ChannelDeliveryGuard claimed = mine.claim();
        if (claimed.size() != size) return 1;
        for (std::size_t b = 0; b < size; ++b)
          if (claimed.bytes()[b] != std::byte(i + b)) return 2;
      } else {
        const ChannelReceived received = mine.receive_into(buffer);
        if (!received || received.size != size) return 3;
        for (std::size_t b = 0; b < size; ++b)
          if (buffer[b] != std::byte(i + b)) return 4;
      }
    }
    // The reply: a reservation committed at scope exit in this process.
    ChannelReservationGuard reply = replies.reserve(4);
    std::memcpy(reply.data(), "done", 4);
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  for (int i = 0; i < kCount; ++i) {
    const std::size_t size = 1 + (i * 37) % 1000;
    ChannelReservationGuard reserved = requests.reserve(size);
    for (std::size_t b = 0; b < size; ++b) reserved.bytes()[b] = std::byte(i + b);
  }
  std::optional<ChannelDeliveryGuard> reply = replies.claim_for(30s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(as_text(reply->bytes()), "done");
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(requests.lost(), 0u);
  EXPECT_EQ(requests.abandoned(), 0u);
}

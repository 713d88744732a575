// ipcxx::Channel: delivery order and packing, limits, timeouts, bad segments, threads, and
// participants killed in the middle of a send or a receive.
#include "ipcxx/channel.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "channel/layout.hpp"
#include "channel/participants.hpp"
#include "channel/spin.hpp"
#include "child_process.hpp"
#include "ipcxx/posix/shared_memory.hpp"

using ipcxx::Channel;
using ipcxx::ChannelDelivery;
using ipcxx::ChannelError;
using ipcxx::ChannelReservation;
using ipcxx::ChannelStatus;
using ipcxx::posix::SharedMemory;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::Signal;
using ipcxx::testing::unique_name;
using namespace std::chrono_literals;

namespace {

using Unlinker = ipcxx::testing::NameGuard<&Channel::unlink>;

std::vector<std::byte> message(std::uint32_t id, std::size_t size) {
  std::vector<std::byte> bytes(std::max<std::size_t>(size, sizeof id));
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(id * 31 + i);
  std::memcpy(bytes.data(), &id, sizeof id);
  return bytes;
}

std::uint32_t id_of(const std::vector<std::byte>& bytes) {
  std::uint32_t id;
  std::memcpy(&id, bytes.data(), sizeof id);
  return id;
}

bool intact(const std::vector<std::byte>& bytes) {
  const std::uint32_t id = id_of(bytes);
  for (std::size_t i = sizeof id; i < bytes.size(); ++i)
    if (bytes[i] != std::byte(id * 31 + i)) return false;
  return true;
}

}  // namespace

TEST(Channel, DeliversInOrderThroughManyLapsOfASmallRing) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  EXPECT_EQ(channel.capacity(), 4096u);
  EXPECT_EQ(channel.max_message_size(), 2048u - 16u);
  // Odd sizes force PAD records at the end of the ring on most laps.
  std::uint32_t sent = 0, received = 0;
  for (int round = 0; round < 2000; ++round) {
    while (channel.try_send(message(sent, 1 + (sent * 37) % 700)) == ChannelStatus::done) ++sent;
    auto got = channel.receive(0ns);
    ASSERT_TRUE(got);
    EXPECT_EQ(id_of(*got), received);
    EXPECT_EQ(got->size(), std::max<std::size_t>(4, 1 + (received * 37) % 700));
    EXPECT_TRUE(intact(*got));
    ++received;
  }
  while (auto got = channel.receive(0ns)) EXPECT_EQ(id_of(*got), received++);
  EXPECT_EQ(sent, received);
  EXPECT_EQ(channel.lost(), 0u);
  EXPECT_EQ(channel.abandoned(), 0u);
}

TEST(Channel, CapacityIsRoundedUpAndLimitsAreEnforced) {
  Channel channel = Channel::create_unique(5000);
  Unlinker unlink{channel.name()};
  EXPECT_EQ(channel.capacity(), 8192u);
  std::vector<std::byte> largest(channel.max_message_size());
  EXPECT_TRUE(channel.send(largest, 0ns));
  std::vector<std::byte> too_large(channel.max_message_size() + 1);
  EXPECT_THROW(channel.try_send(too_large), std::length_error);
  EXPECT_THROW(channel.wait_writable(too_large.size(), 0ns), std::length_error);
  auto got = channel.receive(0ns);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), largest.size());
  EXPECT_THROW(Channel(unique_name(), true, Channel::kMaxCapacity + 1), std::invalid_argument);
}

TEST(Channel, EmptyMessagesAndTooLargeForTheCallersBuffer) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send({}), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(message(7, 100)), ChannelStatus::done);
  ChannelDelivery delivery;
  ASSERT_EQ(channel.try_claim(delivery), ChannelStatus::done);
  EXPECT_EQ(delivery.size, 0u);
  channel.consume(delivery);
  EXPECT_EQ(channel.try_claim(delivery, 99), ChannelStatus::too_large);
  EXPECT_EQ(delivery.size, 100u);
  ASSERT_EQ(channel.try_claim(delivery, 100), ChannelStatus::done);
  channel.consume(delivery);
  EXPECT_EQ(channel.try_claim(delivery), ChannelStatus::would_block);
}

TEST(Channel, TimeoutsExpireOnEmptyAndFullRings) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.receive(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 30ms);
  while (channel.try_send(message(0, 1000)) == ChannelStatus::done) {
  }
  EXPECT_FALSE(channel.send(message(0, 1000), 30ms));
}

TEST(Channel, DiscardedReservationsAreSkipped) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ChannelReservation reservation;
  ASSERT_EQ(channel.try_reserve(10, reservation), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(message(1, 10)), ChannelStatus::done);
  ChannelDelivery delivery;
  EXPECT_EQ(channel.try_claim(delivery), ChannelStatus::would_block);  // FIFO: waits for it
  channel.discard(reservation);
  auto got = channel.receive(0ns);
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 1u);
  EXPECT_EQ(channel.abandoned(), 1u);
}

TEST(Channel, SendManyAndClaimManyBatch) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  std::vector<std::vector<std::byte>> owned;
  for (std::uint32_t i = 0; i < 200; ++i) owned.push_back(message(i, 8));
  std::vector<std::span<const std::byte>> spans(owned.begin(), owned.end());
  const std::size_t sent = channel.try_send_many(spans);
  EXPECT_EQ(sent, 4096u / 32u);  // 32-byte records fill the ring exactly
  std::vector<ChannelDelivery> deliveries(500);
  const std::size_t claimed = channel.try_claim_many(deliveries);
  ASSERT_EQ(claimed, sent);
  for (std::size_t i = 0; i < claimed; ++i) {
    std::uint32_t id;
    std::memcpy(&id, deliveries[i].data, sizeof id);
    EXPECT_EQ(id, i);
  }
  channel.consume({deliveries.data(), claimed});
  EXPECT_EQ(channel.try_send_many(std::span(spans).subspan(sent)), 200u - sent);
}

TEST(Channel, BadSegmentsAreRejectedWithAClearError) {
  const std::string name = unique_name();
  Unlinker unlink{name};
  {
    SharedMemory memory(name, O_CREAT | O_EXCL, 0600, 100);
    EXPECT_THROW(Channel{name}, ChannelError);
  }
  const std::size_t size = Channel::segment_size(4096);
  auto corrupt = [&](auto&& edit) {
    try {
      SharedMemory::unlink(name);
    } catch (const ipcxx::Error&) {
    }
    Channel created(name, true, 4096);
    SharedMemory memory(name, 0);
    auto mapping = memory.map();
    edit(*reinterpret_cast<ipcxx::channel::Header*>(mapping.bytes().data()), memory);
  };
  corrupt([](auto& header, auto&) { header.magic[0] = 'X'; });
  EXPECT_THROW(Channel{name}, ChannelError);
  // Version 1 had no end-of-stream words: its segments are refused, not misread.
  corrupt([](auto& header, auto&) { header.version = 1; });
  try {
    Channel opened{name};
    ADD_FAILURE() << "opened a channel of another version";
  } catch (const ChannelError& error) {
    EXPECT_NE(std::string(error.what()).find("version 1"), std::string::npos) << error.what();
  }
  corrupt([](auto& header, auto&) { header.capacity = 12345; });
  EXPECT_THROW(Channel{name}, ChannelError);
  corrupt([&](auto&, auto& memory) { memory.resize(size + 4096); });
  EXPECT_THROW(Channel{name}, ChannelError);
  corrupt([](auto& header, auto&) { header.ready.store(0); });
  EXPECT_THROW(Channel{name}, ChannelError);  // never initialised within the open wait
}

TEST(Channel, CorruptedRecordHeadersRaiseInsteadOfBeingFollowed) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send(message(1, 40)), ChannelStatus::done);
  SharedMemory memory(channel.name(), 0);
  auto mapping = memory.map();
  auto* record = reinterpret_cast<ipcxx::channel::Record*>(mapping.bytes().data() +
                                                           ipcxx::channel::kRingOffset);
  const auto good = record->word1.load();
  record->word1.store(ipcxx::channel::word1(1u << 30, 0));  // length beyond the ring
  ChannelDelivery delivery;
  EXPECT_THROW(channel.try_claim(delivery), ChannelError);
  record->word1.store(good);
  record->word0.store(999 * 16 | ipcxx::channel::kCommitted);  // position of another lap
  EXPECT_THROW(channel.try_claim(delivery), ChannelError);
}

TEST(Channel, FourProducersFourConsumersDeliverEachMessageExactlyOnce) {
  Channel channel = Channel::create_unique(1 << 14);
  Unlinker unlink{channel.name()};
  constexpr std::uint32_t kPerProducer = 20000;
  std::vector<std::atomic<int>> seen(4 * kPerProducer);
  std::atomic<std::uint32_t> received{0};
  std::atomic<bool> order_ok{true};
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < 4; ++p)
    threads.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kPerProducer; ++i)
        ASSERT_TRUE(channel.send(message(p * kPerProducer + i, 4 + i % 90)));
    });
  for (int c = 0; c < 4; ++c)
    threads.emplace_back([&] {
      std::vector<std::uint32_t> last(4, 0);
      while (received.load() < 4 * kPerProducer) {
        auto got = channel.receive(20ms);
        if (!got) continue;
        const std::uint32_t id = id_of(*got);
        if (!intact(*got) || id >= 4 * kPerProducer) order_ok = false;
        seen[id].fetch_add(1);
        const std::uint32_t producer = id / kPerProducer, index = id % kPerProducer + 1;
        if (index <= last[producer]) order_ok = false;  // FIFO per producer, per consumer
        last[producer] = index;
        received.fetch_add(1);
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(order_ok);
  for (std::size_t id = 0; id < seen.size(); ++id) ASSERT_EQ(seen[id].load(), 1) << id;
}

TEST(Channel, CrossProcessStreamAndForkedChildRegistersItself) {
  Channel channel = Channel::create_unique(1 << 12);
  Unlinker unlink{channel.name()};
  constexpr std::uint32_t kCount = 50000;
  ChildProcess producer([&] {
    // The inherited object: the child takes its own participant slot on first use.
    for (std::uint32_t i = 0; i < kCount; ++i)
      if (!channel.send(message(i, 4 + i % 200), 10s)) return 1;
    return 0;
  });
  for (std::uint32_t i = 0; i < kCount; ++i) {
    auto got = channel.receive(10s);
    ASSERT_TRUE(got);
    ASSERT_EQ(id_of(*got), i);
    ASSERT_TRUE(intact(*got));
  }
  EXPECT_EQ(producer.wait(), 0);
}

TEST(Channel, AProducerKilledMidMessageIsSkippedWithinMilliseconds) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  Signal reserved;
  ChildProcess producer([&] {
    Channel own(channel.name());
    ChannelReservation reservation;
    if (own.try_reserve(100, reservation) != ChannelStatus::done) return 1;
    std::memset(reservation.data, 0xAB, 50);  // half-written, never committed
    reserved.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(reserved.wait());
  ASSERT_EQ(channel.try_send(message(5, 10)), ChannelStatus::done);  // queued behind it
  producer.kill();
  producer.wait();
  const auto started = std::chrono::steady_clock::now();
  auto got = channel.receive(5s);
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 5u);
  EXPECT_LT(waited, 100ms);
  EXPECT_EQ(channel.abandoned(), 1u);
}

TEST(Channel, AConsumerKilledHoldingAMessageIsCountedLostAndFreesTheRing) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send(message(1, 1500)), ChannelStatus::done);
  Signal claimed;
  ChildProcess consumer([&] {
    Channel own(channel.name());
    ChannelDelivery delivery;
    if (own.try_claim(delivery) != ChannelStatus::done) return 1;
    claimed.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(claimed.wait());
  consumer.kill();
  consumer.wait();
  // The ring holds the claimed record: with the next one, a third fits only once it is freed.
  ASSERT_EQ(channel.try_send(message(2, 1500)), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(message(3, 1500)), ChannelStatus::would_block);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(channel.send(message(3, 1500), 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);
  EXPECT_EQ(channel.lost(), 1u);
  EXPECT_EQ(id_of(*channel.receive(0ns)), 2u);
  EXPECT_EQ(id_of(*channel.receive(0ns)), 3u);
}

namespace {

// The participant table of `channel`'s segment, mapped again for the test to edit.
struct Table {
  SharedMemory memory;
  ipcxx::posix::Mapping mapping;
  explicit Table(const std::string& name) : memory(name, 0), mapping(memory.map()) {}
  ipcxx::channel::Slot* slots() {
    return reinterpret_cast<ipcxx::channel::Slot*>(mapping.bytes().data() +
                                                   ipcxx::channel::kHeaderBytes);
  }
  ipcxx::channel::Record* first_record() {
    return reinterpret_cast<ipcxx::channel::Record*>(mapping.bytes().data() +
                                                     ipcxx::channel::kRingOffset);
  }
};

}  // namespace

TEST(Channel, PidReuseDoesNotKeepADeadOwnerAlive) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  Table table(channel.name());
  const std::uint64_t own = ipcxx::channel::own_identity();
  // Slot 100 names a process with our pid but another start time: an earlier process whose
  // pid we reuse. Its reservation must be recovered although the pid is alive.
  auto& reused = table.slots()[100];
  reused.identity.store(own ^ 1);
  reused.incarnation.store(7);
  ChannelReservation reservation;
  ASSERT_EQ(channel.try_reserve(10, reservation), ChannelStatus::done);
  auto* record = table.first_record();
  record->word1.store(ipcxx::channel::word1(10, ipcxx::channel::make_tag(100, 7)));
  ASSERT_EQ(channel.try_send(message(2, 10)), ChannelStatus::done);
  auto got = channel.receive(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 2u);
  EXPECT_EQ(channel.abandoned(), 1u);
  // The same with the right start time: a live owner, never recovered.
  reused.identity.store(own);
  ASSERT_EQ(channel.try_reserve(10, reservation), ChannelStatus::done);
  const std::uint64_t position = reservation.position;
  auto* live = reinterpret_cast<ipcxx::channel::Record*>(
      reinterpret_cast<std::byte*>(table.first_record()) + position % channel.capacity());
  live->word1.store(ipcxx::channel::word1(10, ipcxx::channel::make_tag(100, 7)));
  ASSERT_EQ(channel.try_send(message(3, 10)), ChannelStatus::done);
  EXPECT_FALSE(channel.receive(60ms));  // waits behind the live owner's reservation
  EXPECT_EQ(channel.abandoned(), 1u);
  // A stale incarnation is dead however alive its process is.
  reused.incarnation.store(8);
  got = channel.receive(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 3u);
  EXPECT_EQ(channel.abandoned(), 2u);
}

TEST(Channel, CorruptedLengthsAndIndicesNeverReadPastTheRing) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  // Four records of 1024 bytes fill the ring; the last starts 1024 bytes before its end.
  for (std::uint32_t i = 0; i < 4; ++i)
    ASSERT_EQ(channel.try_send(message(i, 1000)), ChannelStatus::done);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(channel.receive(0ns));
  Table table(channel.name());
  auto* last = reinterpret_cast<ipcxx::channel::Record*>(
      reinterpret_cast<std::byte*>(table.first_record()) + 3072);
  ASSERT_EQ(last->word0.load(), 3072u | ipcxx::channel::kCommitted);
  last->word1.store(ipcxx::channel::word1(1500, 0));  // would straddle the end of the ring
  ChannelDelivery delivery;
  EXPECT_THROW(channel.try_claim(delivery), ChannelError);
  last->word1.store(ipcxx::channel::word1(1000, 0));
  ASSERT_EQ(channel.try_claim(delivery), ChannelStatus::done);
  channel.consume(delivery);
  // A misaligned tail from a corrupting process: a header check fails, nothing reads past.
  auto& header = *reinterpret_cast<ipcxx::channel::Header*>(table.mapping.bytes().data());
  header.tail.store(header.tail.load() + 19);
  EXPECT_THROW(channel.try_claim(delivery), ChannelError);
}

TEST(Channel, MisalignedTailAndTooLargeBatchesAreRefusedBeforeAnyWrite) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  std::vector<std::vector<std::byte>> owned{message(0, 8), message(1, 8),
                                            std::vector<std::byte>(channel.max_message_size() + 1)};
  std::vector<std::span<const std::byte>> spans(owned.begin(), owned.end());
  EXPECT_THROW(channel.try_send_many(spans), std::length_error);
  ChannelDelivery delivery;
  EXPECT_EQ(channel.try_claim(delivery), ChannelStatus::would_block);  // nothing was sent
  Table table(channel.name());
  auto& header = *reinterpret_cast<ipcxx::channel::Header*>(table.mapping.bytes().data());
  const std::uint64_t near_end = 4096 - 8;  // a PAD header there would cross the ring's end
  header.tail.store(near_end);
  header.rhead.store(near_end);
  header.head.store(near_end);
  EXPECT_THROW(channel.try_send({}), ChannelError);
}

TEST(Channel, AStoppedLockHolderMakesOthersSleepAndTimeOutNotSpin) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send(message(1, 10)), ChannelStatus::done);
  Signal registered;
  ChildProcess holder([&] {
    Channel own(channel.name());
    if (own.try_send(message(2, 10)) != ChannelStatus::done) return 1;  // registers a slot
    registered.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(registered.wait());
  Table table(channel.name());
  std::uint32_t tag = 0;
  for (std::uint32_t slot = 0; slot < ipcxx::channel::kParticipants; ++slot) {
    const auto identity = table.slots()[slot].identity.load();
    if (identity >> 42 == static_cast<std::uint64_t>(holder.pid()))
      tag = ipcxx::channel::make_tag(slot, table.slots()[slot].incarnation.load());
  }
  ASSERT_NE(tag, 0u);
  ::kill(holder.pid(), SIGSTOP);
  auto& header = *reinterpret_cast<ipcxx::channel::Header*>(table.mapping.bytes().data());
  header.consumer_lock.store(tag);  // as if stopped inside the consumer lock
  ChannelDelivery delivery;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(channel.try_claim(delivery), ChannelStatus::would_block);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 50ms);  // "a few ms", not a wait
  timespec cpu_before{}, cpu_after{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_before);
  EXPECT_FALSE(channel.receive(300ms));
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_after);
  const double cpu =
      (cpu_after.tv_sec - cpu_before.tv_sec) + (cpu_after.tv_nsec - cpu_before.tv_nsec) / 1e9;
  EXPECT_LT(cpu, 0.1) << "a waiter behind a stopped holder must sleep, not spin";
  ::kill(holder.pid(), SIGKILL);
  holder.wait();
  auto got = channel.receive(5s);  // the dead holder's lock is taken over
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 1u);
}

// The creator reserves the whole segment (docs/reliability.md, "A full /dev/shm"): no space is
// ENOSPC at creation, the half-made name is gone, and a ring that fits never faults later.
TEST(Channel, CreatingOnAFullDevShmThrowsEnospcAndLeavesNoSegment) {
  ChildProcess child([] {
    if (!ipcxx::testing::enter_small_dev_shm(1 << 20, 0)) return ipcxx::testing::kChildSkipped;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (attempt == 0) Channel::create_unique(4096);
        if (attempt == 1) Channel("/full", true, 4096);
        return 1;
      } catch (const ipcxx::Error& error) {
        if (error.errno_value() != ENOSPC) return 2;
      }
    }
    return ipcxx::testing::dev_shm_names() == std::vector<std::string>{"filler"} ? 0 : 3;
  });
  const int code = child.wait();
  if (code == ipcxx::testing::kChildSkipped) GTEST_SKIP() << "needs root for a private /dev/shm";
  EXPECT_EQ(code, 0);
}

TEST(Channel, ARingLargerThanTheFreeSpaceIsRefusedAtCreationAndOneThatFitsFillsSafely) {
  ChildProcess child([] {
    if (!ipcxx::testing::enter_small_dev_shm(1 << 20, 256 << 10))
      return ipcxx::testing::kChildSkipped;
    try {
      Channel::create_unique(512 << 10);
      return 1;
    } catch (const ipcxx::Error& error) {
      if (error.errno_value() != ENOSPC) return 2;
    }
    if (ipcxx::testing::dev_shm_names() != std::vector<std::string>{"filler"}) return 3;
    Channel channel = Channel::create_unique(64 << 10);
    Channel::unlink(channel.name());
    const std::size_t free_after_creation = ipcxx::testing::dev_shm_free_bytes();
    std::size_t sent = 0;
    while (channel.try_send(message(static_cast<std::uint32_t>(sent), 1000)) == ChannelStatus::done)
      ++sent;
    if (sent < 60) return 4;
    if (ipcxx::testing::dev_shm_free_bytes() != free_after_creation) return 5;
    return 0;
  });
  const int code = child.wait();
  if (code == ipcxx::testing::kChildSkipped) GTEST_SKIP() << "needs root for a private /dev/shm";
  EXPECT_EQ(code, 0);
}

// --- end of stream ------------------------------------------------------------------------

namespace {

// Per-message delivery counts shared with forked children (an anonymous shared mapping).
struct Tally {
  static constexpr std::size_t kMax = 1 << 16;
  std::atomic<std::uint32_t>* counts;
  Tally() {
    void* memory = ::mmap(nullptr, kMax * sizeof(std::uint32_t), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap");
    counts = static_cast<std::atomic<std::uint32_t>*>(memory);
  }
  ~Tally() { ::munmap(counts, kMax * sizeof(std::uint32_t)); }
};

// A consumer until the end: 0 when every message was intact and the stream ended.
int consume_to_the_end(const std::string& name, Tally& tally) {
  Channel own(name);
  for (;;) {
    auto got = own.receive(20s);
    if (!got) return own.ended() ? 0 : 2;  // 2: a timeout, not the end
    if (!intact(*got) || id_of(*got) >= Tally::kMax) return 3;
    tally.counts[id_of(*got)].fetch_add(1);
  }
}

}  // namespace

TEST(ChannelEndOfStream, AStreamWithoutAProducerYetHasNotEnded) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  EXPECT_FALSE(channel.ended());
  EXPECT_FALSE(channel.receive(30ms));
  EXPECT_FALSE(channel.ended());  // consumers started before the producers wait for them
}

TEST(ChannelEndOfStream, CleanFinishEndsEveryConsumerAfterEachMessageOnce) {
  Channel channel = Channel::create_unique(1 << 14);
  Unlinker unlink{channel.name()};
  Tally tally;
  constexpr std::uint32_t kCount = 20000;
  channel.declare_producer();  // before the consumers start: the stream cannot end early
  std::vector<std::unique_ptr<ChildProcess>> consumers;
  for (int i = 0; i < 2; ++i)
    consumers.push_back(
        std::make_unique<ChildProcess>([&] { return consume_to_the_end(channel.name(), tally); }));
  for (std::uint32_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(channel.send(message(i, 4 + i % 300), 10s));
  channel.finish();
  EXPECT_TRUE(channel.finished());
  EXPECT_THROW(channel.try_send(message(0, 4)), ChannelError);  // finished: no more sends
  for (auto& consumer : consumers) EXPECT_EQ(consumer->wait(), 0);
  for (std::uint32_t i = 0; i < kCount; ++i) ASSERT_EQ(tally.counts[i].load(), 1u) << i;
  EXPECT_TRUE(channel.ended());
  EXPECT_FALSE(channel.receive(0ns));
  // The other blocking forms end too: no wait without limit after the end.
  EXPECT_THROW(channel.claim(), ipcxx::ChannelEndOfStream);
  EXPECT_FALSE(channel.claim_for(10s));
  std::byte buffer[16];
  EXPECT_EQ(channel.receive_into(buffer).status, ChannelStatus::ended);
}

TEST(ChannelEndOfStream, AKilledProducerEndsTheStreamAfterItsCommittedMessages) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  Signal sent;
  ChildProcess producer([&] {
    Channel own(channel.name());
    for (std::uint32_t i = 0; i < 5; ++i)
      if (own.try_send(message(i, 40)) != ChannelStatus::done) return 1;
    ChannelReservation reservation;  // and one half-written when it dies
    if (own.try_reserve(100, reservation) != ChannelStatus::done) return 1;
    sent.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(sent.wait());
  for (std::uint32_t i = 0; i < 5; ++i) {
    auto got = channel.receive(5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(id_of(*got), i);
  }
  EXPECT_FALSE(channel.receive(30ms));  // alive, holding its reservation: not the end
  EXPECT_FALSE(channel.ended());
  producer.kill();
  producer.wait();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.receive(5s));
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(channel.ended());
  EXPECT_LT(waited, 100ms);
  EXPECT_EQ(channel.abandoned(), 1u);
}

TEST(ChannelEndOfStream, AProducerJoiningBeforeTheLastFinishesExtendsTheStream) {
  Channel consumer = Channel::create_unique(1 << 14);
  Unlinker unlink{consumer.name()};
  {
    Channel first(consumer.name());
    ASSERT_EQ(first.try_send(message(1, 8)), ChannelStatus::done);
    Channel second(consumer.name());
    second.declare_producer();  // joins while `first` is still producing
    first.finish();
    ASSERT_TRUE(consumer.receive(1s));
    EXPECT_FALSE(consumer.receive(30ms));
    EXPECT_FALSE(consumer.ended());  // `second` keeps it open
    ASSERT_EQ(second.try_send(message(2, 8)), ChannelStatus::done);
  }  // closing `second` finishes it
  auto got = consumer.receive(1s);
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 2u);
  EXPECT_FALSE(consumer.receive(1s));
  EXPECT_TRUE(consumer.ended());
  // A producer after the end reopens the stream: its messages are delivered, then it ends again.
  Channel late(consumer.name());
  late.declare_producer();
  EXPECT_FALSE(consumer.ended());
  ASSERT_EQ(late.try_send(message(3, 8)), ChannelStatus::done);
  late.finish();
  got = consumer.receive(1s);
  ASSERT_TRUE(got);
  EXPECT_EQ(id_of(*got), 3u);
  EXPECT_FALSE(consumer.receive(1s));
  EXPECT_TRUE(consumer.ended());
}

TEST(ChannelEndOfStream, AFinishWakesASleepingConsumerAtOnce) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  Signal waiting, finish;
  ChildProcess producer([&] {
    Channel own(channel.name());
    own.declare_producer();
    waiting.notify();
    if (!finish.wait()) return 1;
    own.finish();
    for (;;) ::pause();  // alive: only the finish can end the stream
  });
  ASSERT_TRUE(waiting.wait());
  std::thread finisher([&] {
    std::this_thread::sleep_for(50ms);  // let the receive below go to sleep first
    finish.notify();
  });
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.receive(5s));
  const auto waited = std::chrono::steady_clock::now() - started;
  finisher.join();
  EXPECT_TRUE(channel.ended());
  EXPECT_LT(waited, 50ms + ipcxx::Channel::kSlice);  // woken by the finish, not a slice later
}

TEST(ChannelEndOfStream, ManyProducersAndConsumersAcrossProcessesEachMessageOnce) {
  Channel channel = Channel::create_unique(1 << 13);
  Unlinker unlink{channel.name()};
  Tally tally;
  constexpr std::uint32_t kProducers = 3, kPerProducer = 4000;
  channel.declare_producer();  // holds the stream open until every producer declared
  Signal declared;
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    children.push_back(std::make_unique<ChildProcess>([&, p] {
      Channel own(channel.name());
      own.declare_producer();
      declared.notify();
      for (std::uint32_t i = 0; i < kPerProducer; ++i)
        if (!own.send(message(p * kPerProducer + i, 4 + i % 100), 10s)) return 1;
      return 0;  // the destructor finishes
    }));
  for (int c = 0; c < 3; ++c)
    children.push_back(
        std::make_unique<ChildProcess>([&] { return consume_to_the_end(channel.name(), tally); }));
  for (std::uint32_t p = 0; p < kProducers; ++p) ASSERT_TRUE(declared.wait());
  channel.finish();
  for (auto& child : children) EXPECT_EQ(child->wait(), 0);
  for (std::uint32_t i = 0; i < kProducers * kPerProducer; ++i)
    ASSERT_EQ(tally.counts[i].load(), 1u) << i;
}

TEST(ChannelEndOfStream, ACountLeftHighByADeathIsCorrectedByTheScan) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  {
    Channel producer(channel.name());
    ASSERT_EQ(producer.try_send(message(1, 8)), ChannelStatus::done);
  }
  // A producer killed between counting itself and marking its slot counted leaves the count
  // one high with no mark: the fast check never says "ended", the scan must.
  SharedMemory memory(channel.name(), 0);
  auto mapping = memory.map();
  auto& header = *reinterpret_cast<ipcxx::channel::Header*>(mapping.bytes().data());
  header.stream.fetch_add(ipcxx::channel::kDeclaration);
  ASSERT_TRUE(channel.receive(1s));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(channel.receive(5s));
  EXPECT_TRUE(channel.ended());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);
}

// --- the adaptive spin and batches of large messages (issue 17, item 7) -------------------

TEST(ChannelSpin, AShortSleepRestoresTheFullSpinALongOneHalvesIt) {
  using ipcxx::channel::spin_after_caught;
  using ipcxx::channel::spin_after_sleep;
  constexpr std::int64_t kLimit = 50'000;
  EXPECT_EQ(spin_after_caught(1'000, kLimit), 2'000);
  EXPECT_EQ(spin_after_caught(40'000, kLimit), kLimit);
  // Ready 60 µs after the wait began, having slept: a full spin would likely have caught it,
  // so a spin that had shrunk to 1 µs grows back at once (before: it stayed, every wait slept).
  EXPECT_EQ(spin_after_sleep(1'000, kLimit, 60'000), kLimit);
  EXPECT_EQ(spin_after_sleep(1'000, kLimit, 2 * kLimit), kLimit);
  EXPECT_EQ(spin_after_sleep(40'000, kLimit, 2 * kLimit + 1), 20'000);
  EXPECT_EQ(spin_after_sleep(1'500, kLimit, 5'000'000), 1'000);  // never below 1 µs
  EXPECT_EQ(spin_after_sleep(40'000, kLimit, -1), 20'000);       // timed out or interrupted
  EXPECT_EQ(spin_after_sleep(1'000, 500, -1), 500);              // never above the limit
}

TEST(ChannelSpin, TimedOutWaitsHalveTheAdaptiveSpinDownTo1usAndAFixedSpinStays) {
  Channel channel = Channel::create_unique(4096);
  Unlinker unlink{channel.name()};
  EXPECT_TRUE(channel.spin_adaptive());
  EXPECT_EQ(channel.spin_current(), Channel::kDefaultSpin);
  EXPECT_FALSE(channel.wait_readable(2ms));
  EXPECT_EQ(channel.spin_current(), Channel::kDefaultSpin / 2);
  for (int i = 0; i < 8; ++i) EXPECT_FALSE(channel.wait_readable(1ms));
  EXPECT_EQ(channel.spin_current(), 1us);
  EXPECT_FALSE(channel.wait_readable(1ms, /*first_wait=*/false));  // no spin: no lesson
  EXPECT_EQ(channel.spin_current(), 1us);
  channel.set_spin(20us);
  EXPECT_FALSE(channel.wait_readable(1ms));
  EXPECT_EQ(channel.spin_current(), 20us);
}

TEST(ChannelSpin, BatchedLargeMessagesBetweenProcessesWakeEveryAdaptiveWait) {
  Channel channel = Channel::create_unique(1 << 20);
  Unlinker unlink{channel.name()};
  constexpr std::uint32_t kCount = 3000;
  constexpr std::size_t kSize = 64 * 1024;
  ChildProcess producer([&] {
    Channel own(channel.name());
    std::vector<std::vector<std::byte>> batch;
    std::vector<std::span<const std::byte>> spans;
    for (std::uint32_t start = 0; start < kCount; start += 64) {
      batch.clear();
      spans.clear();
      for (std::uint32_t i = start; i < std::min(kCount, start + 64); ++i)
        batch.push_back(message(i, kSize));
      for (const auto& m : batch) spans.emplace_back(m);
      // As the binding's send_many: the first wait spins, and the first after progress.
      bool first = true;
      for (std::size_t sent = 0; sent < spans.size();) {
        const std::size_t done = own.try_send_many(std::span(spans).subspan(sent));
        sent += done;
        first = first || done > 0;
        if (sent < spans.size() && !own.wait_writable(kSize, 10s, first)) return 1;
        first = false;
      }
    }
    return 0;
  });
  std::vector<std::vector<std::byte>> storage(16, std::vector<std::byte>(kSize));
  std::vector<std::span<std::byte>> buffers(storage.begin(), storage.end());
  std::vector<std::size_t> sizes(buffers.size());
  for (std::uint32_t next = 0; next < kCount;) {
    const ipcxx::ChannelReceivedMany got = channel.receive_many_into_for(buffers, sizes, 10s);
    ASSERT_EQ(got.status, ChannelStatus::done);
    ASSERT_GE(got.count, 1u);
    for (std::size_t i = 0; i < got.count; ++i, ++next) {
      ASSERT_EQ(sizes[i], kSize);
      std::vector<std::byte> copy(storage[i].begin(), storage[i].end());
      ASSERT_EQ(id_of(copy), next);
      ASSERT_TRUE(intact(copy));
    }
  }
  EXPECT_EQ(producer.wait(), 0);
  EXPECT_GE(channel.spin_current(), 1us);
  EXPECT_LE(channel.spin_current(), Channel::kDefaultSpin);
}

TEST(ChannelReceiveManyInto, CopiesInOrderStopsBeforeATooLongMessageAndSeesTheEnd) {
  Channel channel = Channel::create_unique(1 << 14);
  Unlinker unlink{channel.name()};
  for (std::uint32_t i = 0; i < 3; ++i)
    ASSERT_EQ(channel.try_send(message(i, 8)), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(message(3, 100)), ChannelStatus::done);
  std::vector<std::byte> a(8), b(8), c(8), d(8), large(200);
  std::vector<std::span<std::byte>> small{a, b, c, d};
  std::vector<std::size_t> sizes(4);
  auto got = channel.try_receive_many_into(small, sizes);
  ASSERT_EQ(got.status, ChannelStatus::done);
  ASSERT_EQ(got.count, 3u);  // the fourth is longer than its buffer: it stays queued
  EXPECT_EQ(id_of(a), 0u);
  EXPECT_EQ(id_of(b), 1u);
  EXPECT_EQ(id_of(c), 2u);
  EXPECT_EQ(sizes[2], 8u);
  got = channel.try_receive_many_into(small, sizes);
  EXPECT_EQ(got.status, ChannelStatus::too_large);
  EXPECT_EQ(got.size, 100u);
  std::vector<std::span<std::byte>> one{large};
  got = channel.receive_many_into_for(one, sizes, 1s);
  ASSERT_EQ(got.status, ChannelStatus::done);
  EXPECT_EQ(got.count, 1u);
  EXPECT_EQ(sizes[0], 100u);
  EXPECT_EQ(id_of(std::vector<std::byte>(large.begin(), large.begin() + 100)), 3u);
  EXPECT_EQ(channel.receive_many_into_for(one, sizes, 5ms).status, ChannelStatus::would_block);
  std::vector<std::size_t> too_few(0);
  EXPECT_THROW(channel.try_receive_many_into(one, too_few), std::invalid_argument);
  EXPECT_THROW(channel.try_receive_many_into({}, sizes), std::invalid_argument);
  channel.finish();  // this object was the only producer: the stream ends once drained
  EXPECT_EQ(channel.receive_many_into(one, sizes).status, ChannelStatus::ended);
}

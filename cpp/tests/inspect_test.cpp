// ipcxx::inspect_segment: channels and robust mutexes read without taking part, and files that
// are not (or no longer) ipcxx segments.
#include "ipcxx/inspect.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "channel/layout.hpp"
#include "child_process.hpp"
#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "ipcxx/robust_mutex.hpp"

using ipcxx::Channel;
using ipcxx::ChannelDelivery;
using ipcxx::ChannelStatus;
using ipcxx::inspect_segment;
using ipcxx::Liveness;
using ipcxx::LockConsistency;
using ipcxx::LockOutcome;
using ipcxx::RobustMutex;
using ipcxx::SegmentKind;
using ipcxx::StreamState;
using ipcxx::posix::SharedMemory;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::Signal;
using ipcxx::testing::unique_name;

namespace {

using ChannelUnlinker = ipcxx::testing::NameGuard<&Channel::unlink>;
using LockUnlinker = ipcxx::testing::NameGuard<&RobustMutex::unlink>;
using SegmentUnlinker = ipcxx::testing::NameGuard<&SharedMemory::unlink>;

std::vector<std::byte> bytes_of(std::size_t size) { return std::vector<std::byte>(size); }

// Every byte of the segment `name`, to show that an inspection wrote none of them.
std::vector<std::byte> contents(const std::string& name) {
  SharedMemory memory(name, 0, 0600, 0, true);
  const ipcxx::posix::Mapping mapping = memory.map();
  return {mapping.bytes().begin(), mapping.bytes().end()};
}

// A segment `name` of `size` bytes that starts with `head`.
void make_file(const std::string& name, std::size_t size, const void* head, std::size_t length) {
  SharedMemory memory(name, O_CREAT | O_EXCL, 0600, size);
  if (length) {
    ASSERT_EQ(::pwrite(memory.fd(), head, length, 0), static_cast<ssize_t>(length));
  }
}

}  // namespace

TEST(Inspect, ALiveChannelShowsItsQueuedMessagesAndItsProducer) {
  Channel channel = Channel::create_unique(4096);
  ChannelUnlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send(bytes_of(100)), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(bytes_of(1)), ChannelStatus::done);
  ASSERT_EQ(channel.try_send(bytes_of(0)), ChannelStatus::done);

  const auto result = inspect_segment(channel.name());
  ASSERT_EQ(result.kind, SegmentKind::channel) << result.problem;
  ASSERT_TRUE(result.channel) << result.problem;
  const auto& seen = *result.channel;
  EXPECT_EQ(result.size, Channel::segment_size(4096));
  EXPECT_EQ(seen.capacity, 4096u);
  EXPECT_EQ(seen.max_message_size, 2048u - 16);
  EXPECT_EQ(seen.messages, 3u);
  EXPECT_EQ(seen.queued_bytes, 101u);
  EXPECT_EQ(seen.used_bytes, 128u + 32 + 16);  // records of 116, 17 and 16 bytes, padded
  EXPECT_TRUE(seen.counts_complete);
  EXPECT_EQ(seen.stream, StreamState::open);
  EXPECT_EQ(seen.declarations, 1u);
  ASSERT_EQ(seen.participants.size(), 1u);
  EXPECT_EQ(seen.participants[0].pid, ::getpid());
  EXPECT_TRUE(seen.participants[0].alive);
  EXPECT_TRUE(seen.participants[0].producer);
  EXPECT_EQ(seen.producer_lock_pid, 0);
  EXPECT_EQ(seen.consumer_lock_pid, 0);

  auto received = channel.receive(std::chrono::nanoseconds(0));
  ASSERT_TRUE(received);
  EXPECT_EQ(received->size(), 100u);
  const auto after = inspect_segment(channel.name());
  ASSERT_TRUE(after.channel);
  EXPECT_EQ(after.channel->messages, 2u);
  EXPECT_EQ(after.channel->queued_bytes, 1u);
}

TEST(Inspect, AKilledProducerIsADeadParticipantAndItsStreamDrains) {
  Channel channel = Channel::create_unique(4096);
  ChannelUnlinker unlink{channel.name()};
  Signal sent;
  ChildProcess producer([&] {
    Channel own(channel.name());
    if (own.try_send(bytes_of(10)) != ChannelStatus::done) return 1;
    ipcxx::ChannelReservation open;  // a reservation its death leaves RESERVED
    if (own.try_reserve(20, open) != ChannelStatus::done) return 2;
    sent.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(sent.wait());
  const auto live = inspect_segment(channel.name());
  ASSERT_TRUE(live.channel);
  EXPECT_EQ(live.channel->stream, StreamState::open);
  EXPECT_EQ(live.channel->writing, 1u);
  EXPECT_EQ(live.channel->writing_dead, 0u);
  producer.kill();
  EXPECT_EQ(producer.wait(), 128 + SIGKILL);

  const auto before = contents(channel.name());
  const auto result = inspect_segment(channel.name());
  EXPECT_EQ(contents(channel.name()), before);  // the dead mark is left for a participant
  ASSERT_TRUE(result.channel) << result.problem;
  const auto& seen = *result.channel;
  EXPECT_EQ(seen.stream, StreamState::draining);
  EXPECT_EQ(seen.messages, 1u);
  EXPECT_EQ(seen.writing, 1u);
  EXPECT_EQ(seen.writing_dead, 1u);
  const auto child = std::find_if(seen.participants.begin(), seen.participants.end(),
                                  [&](const auto& p) { return p.pid == producer.pid(); });
  ASSERT_NE(child, seen.participants.end());
  EXPECT_FALSE(child->alive);
  EXPECT_TRUE(child->producer);  // it died a producer: never finished
}

TEST(Inspect, AConsumerKilledHoldingAMessageIsShownReadingDead) {
  Channel channel = Channel::create_unique(4096);
  ChannelUnlinker unlink{channel.name()};
  ASSERT_EQ(channel.try_send(bytes_of(5)), ChannelStatus::done);
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
  const auto result = inspect_segment(channel.name());
  ASSERT_TRUE(result.channel) << result.problem;
  EXPECT_EQ(result.channel->messages, 0u);
  EXPECT_EQ(result.channel->reading, 1u);
  EXPECT_EQ(result.channel->reading_dead, 1u);
  EXPECT_EQ(result.channel->lost, 0u);  // counted only once a producer needs the space
}

TEST(Inspect, AFinishedStreamDrainsThenEnds) {
  Channel producer = Channel::create_unique(4096);
  ChannelUnlinker unlink{producer.name()};
  EXPECT_EQ(inspect_segment(producer.name()).channel->stream, StreamState::no_producer_yet);
  ASSERT_EQ(producer.try_send(bytes_of(3)), ChannelStatus::done);
  producer.finish();
  EXPECT_EQ(inspect_segment(producer.name()).channel->stream, StreamState::draining);
  Channel consumer(producer.name());
  ASSERT_TRUE(consumer.receive(std::chrono::nanoseconds(0)));
  const auto result = inspect_segment(producer.name());
  ASSERT_TRUE(result.channel);
  EXPECT_EQ(result.channel->stream, StreamState::ended);
  EXPECT_EQ(result.channel->participants.size(), 2u);
  EXPECT_EQ(std::count_if(result.channel->participants.begin(), result.channel->participants.end(),
                          [](const auto& p) { return p.producer; }),
            0);
}

TEST(Inspect, InspectingTakesNoParticipantSlot) {
  Channel channel = Channel::create_unique(4096);
  ChannelUnlinker unlink{channel.name()};
  const auto before = contents(channel.name());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(inspect_segment(channel.name()).channel);
  EXPECT_EQ(contents(channel.name()), before);
  EXPECT_TRUE(inspect_segment(channel.name()).channel->participants.empty());
}

TEST(Inspect, AFreeLockAndALockHeldByALiveProcess) {
  RobustMutex mutex = RobustMutex::create_unique();
  LockUnlinker unlink{mutex.name()};
  auto free = inspect_segment(mutex.name());
  ASSERT_EQ(free.kind, SegmentKind::robust_mutex);
  ASSERT_TRUE(free.robust_mutex) << free.problem;
  EXPECT_FALSE(free.robust_mutex->locked);
  EXPECT_EQ(free.robust_mutex->holder_tid, 0);
  EXPECT_EQ(free.robust_mutex->consistency, LockConsistency::consistent);

  Signal holding;
  Signal done;
  ChildProcess holder([&] {
    RobustMutex own = RobustMutex::open(mutex.name());
    if (own.acquire() != LockOutcome::acquired) return 1;
    holding.notify();
    done.wait();
    own.release();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  const auto before = contents(mutex.name());
  const auto held = inspect_segment(mutex.name());
  EXPECT_EQ(contents(mutex.name()), before);
  ASSERT_TRUE(held.robust_mutex);
  EXPECT_TRUE(held.robust_mutex->locked);
  EXPECT_EQ(held.robust_mutex->holder_tid, holder.pid());
  EXPECT_EQ(held.robust_mutex->holder_pid, holder.pid());
  EXPECT_EQ(held.robust_mutex->holder, Liveness::alive);
  EXPECT_EQ(held.robust_mutex->consistency, LockConsistency::consistent);
  EXPECT_EQ(held.robust_mutex->acquisitions, 1u);
  done.notify();
  EXPECT_EQ(holder.wait(), 0);
  EXPECT_FALSE(inspect_segment(mutex.name()).robust_mutex->locked);
}

TEST(Inspect, ALockHeldByThisThreadNamesItsThreadAndProcess) {
  RobustMutex mutex = RobustMutex::create_unique();
  LockUnlinker unlink{mutex.name()};
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  const auto held = inspect_segment(mutex.name());
  ASSERT_TRUE(held.robust_mutex);
  EXPECT_EQ(held.robust_mutex->holder_tid, static_cast<pid_t>(::syscall(SYS_gettid)));
  EXPECT_EQ(held.robust_mutex->holder_pid, ::getpid());
  mutex.release();
}

TEST(Inspect, ALockWhoseHolderDiedShowsTheDeadHolderUntilRepaired) {
  RobustMutex mutex = RobustMutex::create_unique();
  LockUnlinker unlink{mutex.name()};
  Signal holding;
  ChildProcess holder([&] {
    RobustMutex own = RobustMutex::open(mutex.name());
    if (own.acquire() != LockOutcome::acquired) return 1;
    holding.notify();
    for (;;) ::pause();
  });
  ASSERT_TRUE(holding.wait());
  holder.kill();
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);

  const auto dead = inspect_segment(mutex.name());
  ASSERT_TRUE(dead.robust_mutex) << dead.problem;
  EXPECT_TRUE(dead.robust_mutex->locked);
  EXPECT_EQ(dead.robust_mutex->holder, Liveness::dead);
#if defined(__GLIBC__)
  EXPECT_EQ(dead.robust_mutex->holder_tid, holder.pid());
#endif
  EXPECT_EQ(dead.robust_mutex->consistency, LockConsistency::owner_died);

  // The next holder is told, and the lock stays "owner died" until it is repaired.
  ASSERT_EQ(mutex.acquire(), LockOutcome::owner_died);
  const auto taken = inspect_segment(mutex.name());
  EXPECT_EQ(taken.robust_mutex->holder, Liveness::alive);
  EXPECT_EQ(taken.robust_mutex->holder_pid, ::getpid());
  EXPECT_EQ(taken.robust_mutex->consistency, LockConsistency::owner_died);
  mutex.release();  // without make_consistent(): unusable for good
  const auto doomed = inspect_segment(mutex.name());
  EXPECT_FALSE(doomed.robust_mutex->locked);
  EXPECT_EQ(doomed.robust_mutex->consistency, LockConsistency::not_recoverable);
}

TEST(Inspect, ATruncatedChannelIsAChannelWithAProblemNotACrash) {
  const std::string name = unique_name();
  { Channel channel = Channel::create(name, 4096); }
  ChannelUnlinker unlink{name};
  for (std::size_t size : {std::size_t{100}, std::size_t{4096}, Channel::segment_size(4096) - 1}) {
    SharedMemory(name, 0).resize(size);
    const auto result = inspect_segment(name);
    EXPECT_EQ(result.kind, SegmentKind::channel) << size;
    EXPECT_FALSE(result.channel);
    EXPECT_NE(result.problem.find("not that of any channel"), std::string::npos) << result.problem;
  }
  // A channel's size again, but the tail of the ring is zeros and the header says 4096: fine.
  SharedMemory(name, 0).resize(Channel::segment_size(8192));
  const auto grown = inspect_segment(name);
  EXPECT_FALSE(grown.channel);
  EXPECT_NE(grown.problem.find("does not match its capacity"), std::string::npos) << grown.problem;
}

TEST(Inspect, ATruncatedLockAndAFileWithALocksMagicOnlyAreNotLocks) {
  const std::string name = unique_name();
  { RobustMutex mutex = RobustMutex::create(name); }
  LockUnlinker unlink{name};
  SharedMemory(name, 0).resize(16);
  const auto result = inspect_segment(name);
  EXPECT_EQ(result.kind, SegmentKind::robust_mutex);
  EXPECT_FALSE(result.robust_mutex);
  EXPECT_NE(result.problem.find("is not a lock's"), std::string::npos) << result.problem;
  SharedMemory(name, 0).resize(ipcxx::robust_mutex_segment_size());
  const auto zeros = inspect_segment(name);  // the tail is zeros: `ready` is still set
  EXPECT_EQ(zeros.kind, SegmentKind::robust_mutex);
}

TEST(Inspect, AWrongMagicAZeroSizeAndATinyFileAreNotIpcxxSegments) {
  const std::string name = unique_name();
  SegmentUnlinker unlink{name};
  std::vector<unsigned char> noise(Channel::segment_size(4096));
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<unsigned char>(i * 7 + 3);
  make_file(name, noise.size(), noise.data(), noise.size());
  auto result = inspect_segment(name);
  EXPECT_EQ(result.kind, SegmentKind::other);
  EXPECT_EQ(result.problem, "not an ipcxx segment");

  SharedMemory(name, 0).resize(0);
  result = inspect_segment(name);
  EXPECT_EQ(result.kind, SegmentKind::other);
  EXPECT_EQ(result.problem, "empty");

  SharedMemory::unlink(name);
  make_file(name, 3, "IPC", 3);  // shorter than any magic number
  result = inspect_segment(name);
  EXPECT_EQ(result.kind, SegmentKind::other);
  EXPECT_EQ(result.size, 3u);
}

TEST(Inspect, AChannelOfAnotherLayoutVersionOrNeverInitialisedIsNamedSo) {
  const std::string name = unique_name();
  SegmentUnlinker unlink{name};
  {
    SharedMemory memory(name, O_CREAT | O_EXCL, 0600, Channel::segment_size(4096));
    ipcxx::posix::Mapping mapping = memory.map();
    auto& header = *reinterpret_cast<ipcxx::channel::Header*>(mapping.bytes().data());
    std::memcpy(header.magic, ipcxx::channel::kMagic, sizeof header.magic);
    header.capacity = 4096;
    header.participants = ipcxx::channel::kParticipants;
    header.version = 1;
    auto result = inspect_segment(name);
    EXPECT_EQ(result.kind, SegmentKind::channel);
    EXPECT_NE(result.problem.find("not initialised"), std::string::npos) << result.problem;
    header.ready.store(ipcxx::channel::kReady);
    result = inspect_segment(name);
    EXPECT_NE(result.problem.find("layout version 1"), std::string::npos) << result.problem;
    header.version = ipcxx::channel::kVersion;
    header.capacity = 12345;
    result = inspect_segment(name);
    EXPECT_NE(result.problem.find("bad capacity"), std::string::npos) << result.problem;
  }
}

TEST(Inspect, AMissingNameThrowsEnoentAndADirectoryIsNotASegment) {
  try {
    (void)inspect_segment(unique_name());
    FAIL() << "inspected a name that does not exist";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), ENOENT);
  }
  const int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const auto result = inspect_segment(fd);
  ::close(fd);
  EXPECT_EQ(result.kind, SegmentKind::other);
  EXPECT_EQ(result.problem, "not a regular file");
}

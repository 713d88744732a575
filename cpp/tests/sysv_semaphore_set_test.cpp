// ipcxx::sysv::SemaphoreSet: creation, atomic multi-member operations, wait-for-zero, undo.
#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/semaphore.hpp"
#include "ipcxx/sysv/semaphore_set.hpp"

using ipcxx::sysv::Semaphore;
using ipcxx::sysv::SemaphoreOperation;
using ipcxx::sysv::SemaphoreSet;
using ipcxx::testing::ChildProcess;
using namespace std::chrono_literals;

namespace {
using Removal = ipcxx::testing::Removal<SemaphoreSet>;

key_t fresh_key() { return static_cast<key_t>(200000 + ::getpid() % 100000 * 7); }
}  // namespace

TEST(SysvSemaphoreSet, CreateUniqueSetsEveryMemberToTheInitialValue) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 3, 5);
  Removal removal{set};
  EXPECT_GE(set.key(), 1);
  EXPECT_LE(set.key(), 32766);
  EXPECT_EQ(set.count(), 3u);
  EXPECT_EQ(set.values(), (std::vector<int>{5, 5, 5}));
  EXPECT_EQ(set.value(2), 5);
}

TEST(SysvSemaphoreSet, OpeningAnExistingSetKeepsItsValuesAndLearnsItsCount) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 4, 2);
  Removal removal{set};
  set.set_value(1, 7);
  const SemaphoreSet opened(set.key(), IPC_CREAT, 0600, 1, 0);
  EXPECT_EQ(opened.id(), set.id());
  EXPECT_EQ(opened.count(), 4u);  // the kernel's count, not the one asked for
  EXPECT_EQ(opened.values(), (std::vector<int>{2, 7, 2, 2}));
  try {
    SemaphoreSet(set.key(), 0, 0600, 5);
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EINVAL);  // asked for more members than the set has
  }
}

TEST(SysvSemaphoreSet, AnOperationOnTwoMembersAppliesBothOrNeither) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 0);
  Removal removal{set};
  set.set_value(0, 1);
  const SemaphoreOperation take_both[] = {{0, -1, 0}, {1, -1, 0}};
  EXPECT_FALSE(set.try_op(take_both));
  EXPECT_FALSE(set.op_for(take_both, 5ms));
  EXPECT_EQ(set.values(), (std::vector<int>{1, 0}));  // member 0 untouched
  set.set_value(1, 1);
  EXPECT_TRUE(set.try_op(take_both));
  EXPECT_EQ(set.values(), (std::vector<int>{0, 0}));
}

TEST(SysvSemaphoreSet, ContendingChildNeverLetsTheMembersDiffer) {
  constexpr int kRounds = 20000;
  // Members 0 and 1 move together; member 2 is the child's "done" flag.
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 3, 3);
  Removal removal{set};
  set.set_value(2, 0);
  const SemaphoreOperation take_both[] = {{0, -1, 0}, {1, -1, 0}};
  const SemaphoreOperation give_both[] = {{0, 1, 0}, {1, 1, 0}};
  const SemaphoreOperation done[] = {{2, 1, 0}};
  ChildProcess child([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!set.op(take_both) || !set.op(give_both)) return 1;
    }
    return set.op(done) ? 0 : 1;
  });
  long observations = 0;
  long mid_round = 0;
  for (std::vector<int> values = set.values(); values[2] == 0; values = set.values()) {
    ++observations;
    ASSERT_EQ(values[0], values[1]);
    ASSERT_TRUE(values[0] == 3 || values[0] == 2);
    mid_round += values[0] == 2;
  }
  EXPECT_EQ(child.wait(), 0);
  EXPECT_GT(observations, 0);
  EXPECT_EQ(set.values(), (std::vector<int>{3, 3, 1}));
  std::printf("observations %ld, %ld of them between a take and a give\n", observations, mid_round);
}

TEST(SysvSemaphoreSet, ADeltaOfZeroWaitsUntilTheMemberIsZero) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 0);
  Removal removal{set};
  set.set_value(1, 1);
  const SemaphoreOperation wait_zero[] = {{1, 0, 0}};
  EXPECT_FALSE(set.try_op(wait_zero));
  EXPECT_FALSE(set.op_for(wait_zero, 5ms));
  ChildProcess child([&] { return set.op(wait_zero) ? 0 : 1; });
  while (set.waiting_for_zero(1) == 0) std::this_thread::yield();
  EXPECT_EQ(set.waiting_for_zero(0), 0);
  EXPECT_EQ(set.waiting_for_nonzero(1), 0);
  const SemaphoreOperation take[] = {{1, -1, 0}};
  EXPECT_TRUE(set.try_op(take));
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(set.try_op(wait_zero));
}

TEST(SysvSemaphoreSet, UndoReturnsWhatAnExitedChildTookFromEveryMember) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 2);
  Removal removal{set};
  ipcxx::testing::Signal holding;
  ipcxx::testing::Signal finish;
  ChildProcess child([&] {
    const SemaphoreOperation take[] = {{0, -2, SEM_UNDO}, {1, -1, SEM_UNDO}};
    if (!set.op(take)) return 1;
    holding.notify();
    finish.wait();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  EXPECT_EQ(set.values(), (std::vector<int>{0, 1}));
  finish.notify();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(set.values(), (std::vector<int>{2, 2}));
}

TEST(SysvSemaphoreSet, PerOperationNowaitEndsAWaitingOp) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 0);
  Removal removal{set};
  const SemaphoreOperation take[] = {{0, -1, IPC_NOWAIT}, {1, 1, 0}};
  EXPECT_FALSE(set.op(take));
  EXPECT_EQ(set.values(), (std::vector<int>{0, 0}));
}

TEST(SysvSemaphoreSet, BadOperationsAreRejectedBeforeAnySyscall) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 1);
  Removal removal{set};
  EXPECT_THROW(set.try_op({}), std::invalid_argument);
  EXPECT_THROW(set.op({}), std::invalid_argument);
  const SemaphoreOperation out_of_range[] = {{0, 1, 0}, {2, 1, 0}};
  EXPECT_THROW(set.try_op(out_of_range), std::out_of_range);
  EXPECT_THROW(set.op_for(out_of_range, 1ms), std::out_of_range);
  const SemaphoreOperation bad_flags[] = {{0, 1, IPC_CREAT}};
  EXPECT_THROW(set.op(bad_flags), std::invalid_argument);
  EXPECT_THROW(set.value(2), std::out_of_range);
  EXPECT_THROW(set.set_value(5, 1), std::out_of_range);
  EXPECT_THROW(set.last_pid(2), std::out_of_range);
  EXPECT_THROW(set.waiting_for_zero(2), std::out_of_range);
  EXPECT_THROW(set.waiting_for_nonzero(2), std::out_of_range);
  const int one_value[] = {1};
  EXPECT_THROW(set.set_values(one_value), std::invalid_argument);
  EXPECT_EQ(set.values(), (std::vector<int>{1, 1}));
  EXPECT_EQ(set.status().o_time, 0);  // no semop ran
}

TEST(SysvSemaphoreSet, CountsAreCheckedBeforeAnySyscall) {
  const key_t key = fresh_key();
  EXPECT_THROW(SemaphoreSet(key, IPC_CREAT | IPC_EXCL, 0600, 0), std::invalid_argument);
  EXPECT_THROW(SemaphoreSet(key, IPC_CREAT | IPC_EXCL, 0600, 1u << 20), std::length_error);
  EXPECT_THROW(SemaphoreSet(key, IPC_EXCL, 0600, 2), std::invalid_argument);
  EXPECT_THROW(SemaphoreSet(key, 0), ipcxx::Error);  // nothing was created
}

TEST(SysvSemaphoreSet, FailedInitialValueRemovesTheNewSet) {
  const key_t key = fresh_key() + 1;
  EXPECT_THROW(SemaphoreSet(key, IPC_CREAT | IPC_EXCL, 0600, 2, 40000), ipcxx::Error);
  EXPECT_THROW(SemaphoreSet(key, 0), ipcxx::Error);  // nothing left behind
}

TEST(SysvSemaphoreSet, ASetOfOneIsASemaphore) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 1, 2);
  Removal removal{set};
  const Semaphore semaphore(set.key(), 0);
  EXPECT_EQ(semaphore.id(), set.id());
  EXPECT_TRUE(semaphore.try_acquire());
  EXPECT_EQ(set.value(0), 1);
  const SemaphoreOperation give[] = {{0, 3, 0}};
  EXPECT_TRUE(set.try_op(give));
  EXPECT_EQ(semaphore.value(), 4);
}

TEST(SysvSemaphoreSet, WaiterLearnsOfRemoval) {
  const SemaphoreSet set = SemaphoreSet::create_unique(0, 0600, 2, 0);
  ChildProcess child([&] {
    const SemaphoreOperation take[] = {{1, -1, 0}};
    try {
      set.op(take);
    } catch (const ipcxx::Error& error) {
      return error.errno_value() == EIDRM || error.errno_value() == EINVAL ? 0 : 1;
    }
    return 2;
  });
  while (set.waiting_for_nonzero(1) == 0) std::this_thread::yield();
  set.remove();
  EXPECT_EQ(child.wait(), 0);
}

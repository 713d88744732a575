// ipcxx::RobustMutex: exclusion, owner death across processes, recovery, bad segments, timeouts.
#include "ipcxx/robust_mutex.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"

using ipcxx::LockOutcome;
using ipcxx::NotALockError;
using ipcxx::RobustMutex;
using ipcxx::posix::SharedMemory;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::Signal;
using ipcxx::testing::unique_name;
using namespace std::chrono_literals;

namespace {

using Unlinker = ipcxx::testing::NameGuard<&RobustMutex::unlink>;

template <typename Body>
int errno_of(Body&& body) {
  try {
    body();
  } catch (const ipcxx::Error& error) {
    return error.errno_value();
  }
  return 0;
}

// The typed call of the Error that `body` throws (Syscall::unknown when it throws none).
template <typename Body>
ipcxx::Syscall syscall_of(Body&& body) {
  try {
    body();
  } catch (const ipcxx::Error& error) {
    return error.syscall();
  }
  return ipcxx::Syscall::unknown;
}

// A child that takes the lock, says so, and waits to be killed while holding it.
ChildProcess holder_until_killed(const std::string& name, Signal& holding) {
  return ChildProcess([&] {
    RobustMutex mutex = RobustMutex::open(name);
    if (!ipcxx::holds(mutex.acquire())) return 1;
    holding.notify();
    for (;;) ::pause();
  });
}

void kill_while_holding(const std::string& name) {
  Signal holding;
  ChildProcess child = holder_until_killed(name, holding);
  ASSERT_TRUE(holding.wait());
  child.kill();
  EXPECT_EQ(child.wait(), 128 + SIGKILL);
}

}  // namespace

TEST(RobustMutex, CreateThenOpenShareOneLock) {
  Unlinker cleanup{unique_name()};
  RobustMutex created = RobustMutex::create(cleanup.name);
  RobustMutex opened = RobustMutex::open(cleanup.name);
  EXPECT_EQ(created.try_acquire(), LockOutcome::acquired);
  EXPECT_TRUE(opened.locked());
  created.release();
  EXPECT_FALSE(opened.locked());
  EXPECT_EQ(opened.try_acquire(), LockOutcome::acquired);
  opened.release();
}

TEST(RobustMutex, CreateRefusesATakenNameAndOpenOrCreateOpensIt) {
  Unlinker cleanup{unique_name()};
  RobustMutex created = RobustMutex::create(cleanup.name);
  EXPECT_EQ(errno_of([&] { RobustMutex::create(cleanup.name); }), EEXIST);
  RobustMutex again(cleanup.name, /*create=*/true);
  EXPECT_EQ(again.acquire(), LockOutcome::acquired);
  EXPECT_TRUE(created.locked());
  again.release();
}

TEST(RobustMutex, OpeningAMissingNameThrowsEnoent) {
  const std::string name = unique_name();
  EXPECT_EQ(errno_of([&] { RobustMutex::open(name); }), ENOENT);
}

TEST(RobustMutex, CreateUniquePicksAFreshName) {
  RobustMutex mutex = RobustMutex::create_unique();
  Unlinker cleanup{mutex.name()};
  EXPECT_FALSE(mutex.name().empty());
  EXPECT_EQ(mutex.acquire(), LockOutcome::acquired);
  mutex.release();
}

TEST(RobustMutex, TryAcquireSeesAnotherProcessHoldingIt) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  Signal holding, done;
  ChildProcess child([&] {
    RobustMutex mine = RobustMutex::open(cleanup.name);
    if (mine.acquire() != LockOutcome::acquired) return 1;
    holding.notify();
    done.wait();
    mine.release();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::timed_out);
  done.notify();
  EXPECT_EQ(mutex.acquire(), LockOutcome::acquired);
  EXPECT_EQ(child.wait(), 0);
  mutex.release();
}

TEST(RobustMutex, AcquireForTimesOutOnTheMonotonicClock) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  LockOutcome other = LockOutcome::acquired;
  std::chrono::steady_clock::duration waited{};
  std::thread([&] {
    const auto started = std::chrono::steady_clock::now();
    other = mutex.acquire_for(30ms);
    waited = std::chrono::steady_clock::now() - started;
  }).join();
  EXPECT_EQ(other, LockOutcome::timed_out);
  EXPECT_GE(waited, 30ms);
  mutex.release();
}

TEST(RobustMutex, ReleaseByANonHolderThreadFailsWithEperm) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  EXPECT_EQ(errno_of([&] { mutex.release(); }), EPERM);
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  int from_other_thread = 0;
  std::thread([&] { from_other_thread = errno_of([&] { mutex.release(); }); }).join();
  EXPECT_EQ(from_other_thread, EPERM);
  EXPECT_EQ(errno_of([&] { mutex.acquire(); }), EDEADLK);
  mutex.release();
}

TEST(RobustMutex, AHolderKilledIsReportedOnceToTheNextOwner) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  EXPECT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
  EXPECT_EQ(mutex.acquire(), LockOutcome::acquired);
  mutex.release();
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::acquired);
  mutex.release();
}

TEST(RobustMutex, TimedAndTryAcquireReportAnOwnerDeathToo) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
  kill_while_holding(cleanup.name);
  EXPECT_EQ(mutex.acquire_for(1s), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
}

TEST(RobustMutex, LockedSeesADeadHolderAndLeavesTheReportToTheNextOwner) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  EXPECT_TRUE(mutex.locked());
  EXPECT_TRUE(mutex.locked());
  EXPECT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
  EXPECT_FALSE(mutex.locked());
}

TEST(RobustMutex, WaitFreeWaitsForTheHolderWithoutKeepingTheLock) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  EXPECT_TRUE(mutex.wait_free(0s));
  EXPECT_FALSE(mutex.locked());  // given back
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  EXPECT_EQ(errno_of([&] { mutex.wait_free(0s); }), EDEADLK);
  std::atomic<int> free_while_held{-1};
  bool free_after = false;
  std::thread waiter([&] {
    RobustMutex other = RobustMutex::open(cleanup.name);
    free_while_held = other.wait_free(10ms);
    free_after = other.wait_free(10s);
  });
  while (free_while_held.load() < 0) std::this_thread::yield();
  EXPECT_EQ(free_while_held.load(), 0);  // the first wait timed out
  mutex.release();
  waiter.join();
  EXPECT_TRUE(free_after);
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::acquired);  // nobody kept it
  mutex.release();
}

TEST(RobustMutex, WaitFreeLeavesADeadHoldersReportToTheNextOwner) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  std::thread([&] { EXPECT_TRUE(RobustMutex::open(cleanup.name).wait_free(1s)); }).join();
  EXPECT_FALSE(mutex.not_recoverable());
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
  EXPECT_EQ(mutex.try_acquire(), LockOutcome::acquired);
  mutex.release();
}

TEST(RobustMutex, AnOwnerWhoDiesBeforeRepairingIsReportedAgain) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  kill_while_holding(cleanup.name);  // got owner_died, died without make_consistent()
  EXPECT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.make_consistent();
  mutex.release();
}

TEST(RobustMutex, ReleasingWithoutRepairMakesEveryLaterUseNotRecoverable) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  ASSERT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.release();
  EXPECT_TRUE(mutex.not_recoverable());
  EXPECT_EQ(errno_of([&] { mutex.acquire(); }), ENOTRECOVERABLE);
  EXPECT_EQ(errno_of([&] { mutex.try_acquire(); }), ENOTRECOVERABLE);
  EXPECT_EQ(errno_of([&] { mutex.acquire_for(10ms); }), ENOTRECOVERABLE);
  EXPECT_EQ(errno_of([&] { mutex.release(); }), ENOTRECOVERABLE);
  EXPECT_EQ(errno_of([&] { mutex.locked(); }), ENOTRECOVERABLE);
  EXPECT_EQ(errno_of([&] { mutex.make_consistent(); }), ENOTRECOVERABLE);
  RobustMutex reopened = RobustMutex::open(cleanup.name);
  EXPECT_EQ(errno_of([&] { reopened.acquire(); }), ENOTRECOVERABLE);
}

TEST(RobustMutex, ReleasingADeathThatLockedFoundWithoutRepairIsNotRecoverableToo) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  EXPECT_TRUE(mutex.locked());
  ASSERT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.release();
  EXPECT_EQ(errno_of([&] { mutex.acquire(); }), ENOTRECOVERABLE);
}

TEST(RobustMutex, AWaiterIsToldWhenTheLockBecomesNotRecoverable) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  ASSERT_EQ(mutex.acquire(), LockOutcome::owner_died);
  Signal started;
  ChildProcess waiter([&] {
    RobustMutex mine = RobustMutex::open(cleanup.name);
    started.notify();
    return errno_of([&] { mine.acquire(); }) == ENOTRECOVERABLE ? 0 : 1;
  });
  ASSERT_TRUE(started.wait());
  mutex.release();
  EXPECT_EQ(waiter.wait(), 0);
}

TEST(RobustMutex, MakeConsistentWithNothingToRepairFailsWithEinval) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  EXPECT_EQ(errno_of([&] { mutex.make_consistent(); }), EPERM);
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  EXPECT_EQ(errno_of([&] { mutex.make_consistent(); }), EINVAL);
  mutex.release();
}

TEST(RobustMutex, EachFailureNamesItsTypedPthreadCall) {
  using ipcxx::Syscall;
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  EXPECT_EQ(syscall_of([&] { mutex.release(); }), Syscall::pthread_mutex_unlock);
  EXPECT_EQ(syscall_of([&] { mutex.make_consistent(); }), Syscall::pthread_mutex_consistent);
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  EXPECT_EQ(syscall_of([&] { mutex.acquire(); }), Syscall::pthread_mutex_lock);
  EXPECT_EQ(syscall_of([&] { mutex.try_acquire(); }), Syscall::pthread_mutex_trylock);
  EXPECT_EQ(syscall_of([&] { mutex.acquire_for(10ms); }), Syscall::pthread_mutex_clocklock);
  try {
    mutex.make_consistent();
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.syscall(), Syscall::pthread_mutex_consistent);
    EXPECT_EQ(error.errno_value(), EINVAL);
    EXPECT_EQ(std::string(error.what()),
              "pthread_mutex_consistent(" + cleanup.name + "): Invalid argument");
  }
  mutex.release();
  mutex.close();
  EXPECT_EQ(syscall_of([&] { mutex.acquire(); }), Syscall::pthread_mutex_lock);
}

TEST(RobustMutex, NotRecoverableErrorsNameTheCallThatFoundIt) {
  using ipcxx::Syscall;
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  kill_while_holding(cleanup.name);
  ASSERT_EQ(mutex.acquire(), LockOutcome::owner_died);
  mutex.release();
  EXPECT_EQ(syscall_of([&] { mutex.acquire(); }), Syscall::pthread_mutex_lock);
  EXPECT_EQ(syscall_of([&] { mutex.try_acquire(); }), Syscall::pthread_mutex_trylock);
  EXPECT_EQ(syscall_of([&] { mutex.acquire_for(10ms); }), Syscall::pthread_mutex_clocklock);
  EXPECT_EQ(syscall_of([&] { mutex.release(); }), Syscall::pthread_mutex_unlock);
  EXPECT_EQ(syscall_of([&] { mutex.locked(); }), Syscall::pthread_mutex_clocklock);
  EXPECT_EQ(syscall_of([&] { mutex.make_consistent(); }), Syscall::pthread_mutex_consistent);
}

TEST(RobustMutex, ASegmentOfTheWrongSizeIsNotALock) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 10);
  EXPECT_THROW(RobustMutex::open(cleanup.name), NotALockError);
  EXPECT_THROW(RobustMutex(cleanup.name, true), NotALockError);
}

TEST(RobustMutex, ASegmentWithAForeignHeaderIsNotALock) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, ipcxx::robust_mutex_segment_size());
  ipcxx::posix::Mapping mapping = memory.map();
  std::memset(mapping.bytes().data(), 0xff, mapping.size());
  EXPECT_THROW(RobustMutex::open(cleanup.name), NotALockError);
}

TEST(RobustMutex, ASegmentNeverInitialisedIsNotALockAfterTheOpenWait) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, ipcxx::robust_mutex_segment_size());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(RobustMutex(cleanup.name, false, 0600, 50ms), NotALockError);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
}

TEST(RobustMutex, HeldByThisObjectFollowsTheAcquisitionThroughIt) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  RobustMutex other = RobustMutex::open(cleanup.name);
  EXPECT_FALSE(mutex.held_by_this_object());
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  EXPECT_TRUE(mutex.held_by_this_object());
  bool seen_from_another_thread = false;
  std::thread([&] { seen_from_another_thread = mutex.held_by_this_object(); }).join();
  EXPECT_TRUE(seen_from_another_thread);  // this (live) thread holds it through `mutex`
  EXPECT_FALSE(other.held_by_this_object());
  EXPECT_EQ(errno_of([&] { other.release(); }), EPERM);
  mutex.release();
  EXPECT_FALSE(mutex.held_by_this_object());
  EXPECT_EQ(errno_of([&] { mutex.release(); }), EPERM);
}

TEST(RobustMutex, AThreadThatDiedHoldingHoldsNothingOnceItsDeathIsReportedElsewhere) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  RobustMutex other = RobustMutex::open(cleanup.name);
  // pthread_join returns after the kernel has handled the thread's robust list.
  std::thread([&] { ASSERT_EQ(mutex.acquire(), LockOutcome::acquired); }).join();
  EXPECT_EQ(other.acquire(), LockOutcome::owner_died);
  EXPECT_FALSE(mutex.held_by_this_object());
  EXPECT_TRUE(other.held_by_this_object());
  // This thread holds the lock, but not through `mutex`: its release is refused.
  EXPECT_EQ(errno_of([&] { mutex.release(); }), EPERM);
  other.make_consistent();
  other.release();
  EXPECT_FALSE(other.held_by_this_object());
  EXPECT_EQ(mutex.acquire(), LockOutcome::acquired);  // the object is usable again
  EXPECT_TRUE(mutex.held_by_this_object());
  mutex.release();
}

TEST(RobustMutex, AThreadThatDiedHoldingHoldsNothingBeforeItsDeathIsReported) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  RobustMutex other = RobustMutex::open(cleanup.name);
  std::thread([&] { ASSERT_EQ(mutex.acquire(), LockOutcome::acquired); }).join();
  EXPECT_FALSE(mutex.held_by_this_object());
  EXPECT_FALSE(mutex.held_by_this_object());
  mutex.close();  // unmaps: the dead thread's robust list was handled already
  EXPECT_EQ(other.acquire(), LockOutcome::owner_died);  // the death is still reported once
  other.make_consistent();
  other.release();
  EXPECT_EQ(other.acquire(), LockOutcome::acquired);
  other.release();
}

TEST(RobustMutex, AForkChildOfTheHolderHoldsNothing) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  ChildProcess child([&] {
    // The lock belongs to the parent's thread; this process holds nothing through `mutex`.
    if (mutex.held_by_this_object()) return 1;
    if (errno_of([&] { mutex.release(); }) != EPERM) return 2;
    if (mutex.try_acquire() != LockOutcome::timed_out) return 3;
    mutex.close();
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(mutex.held_by_this_object());
  mutex.release();
  EXPECT_FALSE(mutex.held_by_this_object());
}

TEST(RobustMutex, AnObjectDestroyedWhileHeldKeepsTheMappingForTheThreadsDeath) {
  Unlinker cleanup{unique_name()};
  RobustMutex other = RobustMutex::create(cleanup.name);
  std::thread([&] {
    RobustMutex mutex = RobustMutex::open(cleanup.name);
    ASSERT_EQ(mutex.acquire(), LockOutcome::acquired);
  }).join();  // destroyed holding, then the thread ended holding
  EXPECT_EQ(other.acquire(), LockOutcome::owner_died);
  other.make_consistent();
  other.release();
}

TEST(RobustMutex, ClosedMutexReportsEbadf) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  mutex.close();
  EXPECT_FALSE(mutex.is_open());
  EXPECT_EQ(errno_of([&] { mutex.acquire(); }), EBADF);
}

TEST(RobustMutex, ProcessesContendingKeepMutualExclusion) {
  Unlinker cleanup{unique_name()};
  RobustMutex mutex = RobustMutex::create(cleanup.name);
  const std::string counter_name = unique_name();
  ipcxx::testing::NameGuard<&SharedMemory::unlink> counter_cleanup{counter_name};
  SharedMemory counter = SharedMemory::create(counter_name, sizeof(long));
  ipcxx::posix::Mapping counter_view = counter.map();
  auto* value = static_cast<volatile long*>(static_cast<void*>(counter_view.bytes().data()));
  constexpr int kChildren = 4;
  constexpr int kRounds = 2000;
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int i = 0; i < kChildren; ++i)
    children.push_back(std::make_unique<ChildProcess>([&] {
      RobustMutex mine = RobustMutex::open(cleanup.name);
      for (int round = 0; round < kRounds; ++round) {
        if (mine.acquire() != LockOutcome::acquired) return 1;
        const long seen = *value;
        *value = seen + 1;
        mine.release();
      }
      return 0;
    }));
  for (auto& child : children) EXPECT_EQ(child->wait(), 0);
  EXPECT_EQ(*value, kChildren * kRounds);
}

// The creator reserves the page before touching it (docs/reliability.md, "A full /dev/shm").
TEST(RobustMutex, CreatingOnAFullDevShmThrowsEnospcAndLeavesNoSegment) {
  ChildProcess child([] {
    if (!ipcxx::testing::enter_small_dev_shm(1 << 20, 0)) return ipcxx::testing::kChildSkipped;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (attempt == 0) RobustMutex::create_unique();
        if (attempt == 1) RobustMutex("/full", true);
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

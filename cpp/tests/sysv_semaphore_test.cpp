// ipcxx::sysv::Semaphore: creation rules, operations as values, SEM_UNDO across a SIGKILL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ipc.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/semaphore.hpp"

using ipcxx::sysv::Semaphore;
using ipcxx::testing::ChildProcess;
using namespace std::chrono_literals;

namespace {
using Removal = ipcxx::testing::Removal<Semaphore>;
}  // namespace

TEST(SysvSemaphore, CreateUniqueSetsTheInitialValueAndARandomKey) {
  const Semaphore semaphore = Semaphore::create_unique(0, 0600, 3);
  Removal removal{semaphore};
  EXPECT_GE(semaphore.key(), 1);
  EXPECT_LE(semaphore.key(), 32766);
  EXPECT_EQ(semaphore.value(), 3);
  EXPECT_EQ(Semaphore(semaphore.key(), 0).id(), semaphore.id());
}

TEST(SysvSemaphore, OperationsReportBusyAsFalse) {
  const Semaphore semaphore = Semaphore::create_unique(0, 0600, 1);
  Removal removal{semaphore};
  EXPECT_TRUE(semaphore.try_acquire());
  EXPECT_FALSE(semaphore.try_acquire());
  EXPECT_FALSE(semaphore.acquire_for(10ms));
  semaphore.release(2);
  EXPECT_TRUE(semaphore.try_acquire(2));
  EXPECT_TRUE(semaphore.operate(0, false, false));  // value is zero
}

TEST(SysvSemaphore, ValueOutOfRangeIsErange) {
  const Semaphore semaphore = Semaphore::create_unique(0);
  Removal removal{semaphore};
  try {
    semaphore.set_value(40000);
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), ERANGE);
  }
}

TEST(SysvSemaphore, FailedInitialValueRemovesTheNewSemaphore) {
  const key_t key = static_cast<key_t>(100000 + ::getpid() % 100000);
  EXPECT_THROW(Semaphore(key, IPC_CREAT | IPC_EXCL, 0600, 40000), ipcxx::Error);
  EXPECT_THROW(Semaphore(key, 0), ipcxx::Error);  // nothing left behind
}

TEST(SysvSemaphore, InvalidFlagsAreRejectedBeforeAnySyscall) {
  EXPECT_THROW(Semaphore(1234, IPC_EXCL), std::invalid_argument);
}

TEST(SysvSemaphore, UndoReturnsUnitsHeldByAKilledChild) {
  const Semaphore semaphore = Semaphore::create_unique(0, 0600, 2);
  Removal removal{semaphore};
  ipcxx::testing::Signal holding;
  ChildProcess child([&] {
    semaphore.acquire(2, /*undo=*/true);
    holding.notify();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  EXPECT_EQ(semaphore.value(), 0);
  child.kill();
  EXPECT_EQ(child.wait(), 128 + SIGKILL);
  EXPECT_EQ(semaphore.value(), 2);
}

TEST(SysvSemaphore, WaiterLearnsOfRemoval) {
  const Semaphore semaphore = Semaphore::create_unique(0);
  ChildProcess child([&] {
    try {
      semaphore.acquire();
    } catch (const ipcxx::Error& error) {
      return error.errno_value() == EIDRM || error.errno_value() == EINVAL ? 0 : 1;
    }
    return 2;
  });
  while (semaphore.waiting_for_nonzero() == 0) std::this_thread::yield();
  semaphore.remove();
  EXPECT_EQ(child.wait(), 0);
}

TEST(SysvSemaphore, AcquireAndReleaseRefuseAZeroOrNegativeCount) {
  const Semaphore semaphore = Semaphore::create_unique(0, 0600, 0);
  Removal removal{semaphore};
  // Each of these would otherwise be a "wait for zero" that succeeds at once (value 0), or
  // move the value the other way.
  EXPECT_THROW(semaphore.acquire(0), std::invalid_argument);
  EXPECT_THROW(semaphore.try_acquire(0), std::invalid_argument);
  EXPECT_THROW(semaphore.acquire_for(1ms, 0), std::invalid_argument);
  EXPECT_THROW(semaphore.acquire(-1), std::invalid_argument);
  EXPECT_THROW(semaphore.try_acquire(-32768), std::invalid_argument);
  EXPECT_THROW(semaphore.acquire_for(1ms, -2), std::invalid_argument);
  EXPECT_THROW(semaphore.release(0), std::invalid_argument);
  EXPECT_THROW(semaphore.release(-1), std::invalid_argument);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(semaphore.status().o_time, 0);  // no semop ran
}

TEST(SysvSemaphore, WaitForZeroSaysByNameWhatAZeroSemopDoes) {
  const Semaphore semaphore = Semaphore::create_unique(0, 0600, 1);
  Removal removal{semaphore};
  EXPECT_FALSE(semaphore.try_wait_for_zero());
  EXPECT_FALSE(semaphore.wait_for_zero_for(5ms));
  ipcxx::testing::Signal waiting;
  ChildProcess child([&] {
    waiting.notify();
    semaphore.wait_for_zero();
    return 0;
  });
  ASSERT_TRUE(waiting.wait());
  while (semaphore.waiting_for_zero() == 0) std::this_thread::yield();
  semaphore.acquire();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_TRUE(semaphore.try_wait_for_zero());
  EXPECT_TRUE(semaphore.wait_for_zero_for(5ms));
}

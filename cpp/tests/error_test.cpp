// ipcxx::Error carries errno, the typed call and the object, and formats what() from them.
#include "ipcxx/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string_view>

#include "ipcxx/posix/semaphore.hpp"
#include "ipcxx/sysv/semaphore.hpp"

TEST(Error, WhatNamesTheCallTheObjectAndTheErrnoText) {
  const ipcxx::Error error(ENOENT, "sem_open", "/jobs");
  EXPECT_STREQ(error.what(), "sem_open(/jobs): No such file or directory");
  EXPECT_EQ(error.errno_value(), ENOENT);
  EXPECT_EQ(error.call(), "sem_open");
  EXPECT_EQ(error.object(), "/jobs");
  EXPECT_EQ(error.code(), std::errc::no_such_file_or_directory);
}

TEST(Error, CarriesTheTypedSyscallWithTheSameText) {
  const ipcxx::Error error(EINVAL, ipcxx::Syscall::shmctl_ipc_stat, "id 7");
  EXPECT_EQ(error.syscall(), ipcxx::Syscall::shmctl_ipc_stat);
  EXPECT_EQ(error.call(), "shmctl(IPC_STAT)");
  EXPECT_STREQ(error.what(), "shmctl(IPC_STAT)(id 7): Invalid argument");
}

TEST(Error, BuiltFromTextFindsTheTypedSyscall) {
  EXPECT_EQ(ipcxx::Error(ENOENT, "sem_open", "/x").syscall(), ipcxx::Syscall::sem_open);
  EXPECT_EQ(ipcxx::Error(EIO, "ftruncate", "/x").syscall(), ipcxx::Syscall::ftruncate);
  EXPECT_EQ(ipcxx::Error(EIO, "mq_getattr", "/x").syscall(), ipcxx::Syscall::mq_getattr);
  EXPECT_EQ(ipcxx::Error(EIO, "shmat", "id 1").syscall(), ipcxx::Syscall::shmat);
  EXPECT_EQ(ipcxx::Error(EIO, "no_such_call", "x").syscall(), ipcxx::Syscall::unknown);
  EXPECT_EQ(ipcxx::Error(EIO, "no_such_call", "x").call(), "no_such_call");
}

TEST(Error, EverySyscallNameRoundTrips) {
  // The last enumerator: the check after the loop fails when one is added after it, so that
  // this loop keeps covering every value.
  constexpr auto last = static_cast<int>(ipcxx::Syscall::pthread_mutex_consistent);
  for (int value = 1; value <= last; ++value) {
    const auto call = static_cast<ipcxx::Syscall>(value);
    const std::string_view name = ipcxx::syscall_name(call);
    EXPECT_FALSE(name.empty()) << value;
    EXPECT_EQ(ipcxx::syscall_from_name(name), call) << name;
  }
  EXPECT_EQ(ipcxx::syscall_name(static_cast<ipcxx::Syscall>(last + 1)), "");
  EXPECT_EQ(ipcxx::syscall_name(ipcxx::Syscall::unknown), "");
}

TEST(Error, RobustMutexPthreadCallsHaveTheirOwnNames) {
  using ipcxx::Syscall;
  EXPECT_EQ(ipcxx::syscall_name(Syscall::pthread_mutex_lock), "pthread_mutex_lock");
  EXPECT_EQ(ipcxx::syscall_name(Syscall::pthread_mutex_clocklock), "pthread_mutex_clocklock");
  EXPECT_EQ(ipcxx::syscall_name(Syscall::pthread_mutexattr_setrobust),
            "pthread_mutexattr_setrobust");
  // Python's RobustLock tells "nothing to repair" by this name
  // (python/src/extensions/robust_lock.cpp).
  const ipcxx::Error error(EINVAL, Syscall::pthread_mutex_consistent, "/lock");
  EXPECT_EQ(error.call(), "pthread_mutex_consistent");
  EXPECT_STREQ(error.what(), "pthread_mutex_consistent(/lock): Invalid argument");
  EXPECT_EQ(ipcxx::Error(EPERM, "pthread_mutex_unlock", "/lock").syscall(),
            Syscall::pthread_mutex_unlock);
}

TEST(Error, CoreCallsReportTheirTypedSyscall) {
  try {
    ipcxx::posix::Semaphore::open("/ipcxx_gt_surely_absent_semaphore");
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.syscall(), ipcxx::Syscall::sem_open);
    EXPECT_EQ(error.errno_value(), ENOENT);
  }
  try {
    ipcxx::sysv::Semaphore::from_id(-1).value();
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.syscall(), ipcxx::Syscall::semctl_getval);
  }
}

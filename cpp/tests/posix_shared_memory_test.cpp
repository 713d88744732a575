// ipcxx::posix::SharedMemory and Mapping: sizes, spans, descriptors and cross-process data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"

using ipcxx::posix::SharedMemory;
using ipcxx::testing::ChildProcess;
using ipcxx::testing::unique_name;

namespace {
using Unlinker = ipcxx::testing::NameGuard<&SharedMemory::unlink>;
}  // namespace

TEST(PosixSharedMemory, CreateSetsTheSizeAndMapsItAsASpan) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 3333);
  EXPECT_EQ(memory.size(), 3333u);
  auto mapping = memory.map();
  ASSERT_EQ(mapping.bytes().size(), 3333u);
  std::fill(mapping.bytes().begin(), mapping.bytes().end(), std::byte{7});
  EXPECT_EQ(memory.map().bytes()[3332], std::byte{7});
}

TEST(PosixSharedMemory, ResizeIsSeenByOtherHandles) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 10);
  SharedMemory other = SharedMemory::open(cleanup.name);
  other.resize(8192);
  EXPECT_EQ(memory.size(), 8192u);
}

TEST(PosixSharedMemory, FailedResizeLeavesAPreExistingSegment) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 10);
  EXPECT_THROW(SharedMemory(cleanup.name, 0, 0600, 4096, /*read_only=*/true), ipcxx::Error);
  EXPECT_NO_THROW(SharedMemory::open(cleanup.name));
}

TEST(PosixSharedMemory, AllocateSetsTheSizeWithEveryPageTaken) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 0);
  memory.allocate(5 * 4096 + 1);
  EXPECT_EQ(memory.size(), 5u * 4096 + 1);
  struct stat info {};
  ASSERT_EQ(::fstat(memory.fd(), &info), 0);
  EXPECT_GE(info.st_blocks * 512, 6 * 4096);  // allocated, not a sparse file
}

TEST(PosixSharedMemory, AllocateOnAFullFilesystemThrowsEnospcAndKeepsTheSize) {
  ChildProcess child([] {
    if (!ipcxx::testing::enter_small_dev_shm(1 << 20, 8192)) return ipcxx::testing::kChildSkipped;
    SharedMemory memory = SharedMemory::create("/full", 0);
    try {
      memory.allocate(3 * 4096);
      return 1;
    } catch (const ipcxx::Error& error) {
      if (error.errno_value() != ENOSPC || error.syscall() != ipcxx::Syscall::fallocate) return 2;
    }
    if (memory.size() != 0) return 3;
    if (ipcxx::testing::dev_shm_free_bytes() != 8192) return 4;  // nothing kept
    memory.allocate(2 * 4096);
    return memory.size() == 2 * 4096 ? 0 : 5;
  });
  const int code = child.wait();
  if (code == ipcxx::testing::kChildSkipped) GTEST_SKIP() << "needs root for a private /dev/shm";
  EXPECT_EQ(code, 0);
}

TEST(PosixSharedMemory, CloseFdKeepsMappingsAndReleaseFdGivesItAway) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 4096);
  auto mapping = memory.map();
  memory.close_fd();
  EXPECT_EQ(memory.fd(), -1);
  memory.close_fd();
  mapping.bytes()[0] = std::byte{1};
  EXPECT_THROW(memory.size(), ipcxx::Error);

  SharedMemory second = SharedMemory::open(cleanup.name);
  const int fd = second.release_fd();
  EXPECT_EQ(second.fd(), -1);
  EXPECT_EQ(::close(fd), 0);
}

TEST(PosixSharedMemory, ChildWritesAreVisibleToTheParent) {
  Unlinker cleanup{unique_name()};
  SharedMemory memory = SharedMemory::create(cleanup.name, 64);
  auto mapping = memory.map();
  ChildProcess child([&] {
    auto view = SharedMemory::open(cleanup.name).map();
    std::memcpy(view.bytes().data(), "from child", 10);
    return 0;
  });
  ASSERT_EQ(child.wait(), 0);
  EXPECT_EQ(std::memcmp(mapping.bytes().data(), "from child", 10), 0);
}

TEST(PosixSharedMemory, CloseFdAfterTheUserClosedItShowsTheNumberButNeverClosesItAgain) {
  Unlinker cleanup{unique_name()};
  int reused = -1;
  {
    SharedMemory memory = SharedMemory::create(cleanup.name, 4096);
    const int number = memory.fd();
    ASSERT_EQ(::close(number), 0);  // behind the object's back
    try {
      memory.close_fd();
      FAIL() << "no exception";
    } catch (const ipcxx::Error& error) {
      EXPECT_EQ(error.errno_value(), EBADF);
      EXPECT_EQ(error.syscall(), ipcxx::Syscall::close);
    }
    EXPECT_EQ(memory.fd(), number);  // upstream leaves `fd` showing it
    EXPECT_FALSE(memory.has_fd());
    reused = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(reused, number);
    EXPECT_THROW(memory.close_fd(), ipcxx::Error);  // EBADF again, without closing `reused`
    EXPECT_THROW(memory.size(), ipcxx::Error);      // no fstat of someone else's file
  }
  EXPECT_NE(::fcntl(reused, F_GETFD), -1);  // the destructor left it alone too
  ::close(reused);
}

// The small handle owners: move-only, and a failed close forgets the handle (no fd reuse bug).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "ipcxx/detail/unique_handle.hpp"
#include "ipcxx/error.hpp"

using ipcxx::detail::UniqueFd;
using ipcxx::detail::UniqueMapping;
using ipcxx::detail::UniqueSemaphore;

namespace {

int open_null() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open /dev/null failed");
  return fd;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST(DetailUniqueFd, DestructorClosesAndMoveTransfersOwnership) {
  const int number = open_null();
  {
    UniqueFd first(number);
    UniqueFd second(std::move(first));
    EXPECT_FALSE(first.valid());
    EXPECT_EQ(second.get(), number);
    EXPECT_TRUE(is_open(number));
  }
  EXPECT_FALSE(is_open(number));
}

TEST(DetailUniqueFd, ResetForgetsTheNumberWhenCloseFailsSoAReusedNumberStaysOpen) {
  const int number = open_null();
  UniqueFd owner(number);
  ASSERT_EQ(::close(number), 0);  // behind the owner's back
  errno = 0;
  EXPECT_EQ(owner.reset(), EBADF);
  EXPECT_EQ(errno, 0);  // reset() reports through its result, errno untouched
  EXPECT_FALSE(owner.valid());
  const int other = open_null();  // the lowest free number: the one the owner had
  ASSERT_EQ(other, number);
  EXPECT_EQ(owner.reset(), 0);  // nothing left to close
  owner = UniqueFd();           // nor on move-assignment
  EXPECT_TRUE(is_open(other));
  ::close(other);
}

TEST(DetailUniqueFd, CloseThrowsOnceAndTheDestructorDoesNotCloseTheReusedNumber) {
  const int number = open_null();
  int other = -1;
  {
    UniqueFd owner(number);
    ASSERT_EQ(::close(number), 0);
    try {
      owner.close("test");
      FAIL() << "no exception";
    } catch (const ipcxx::Error& error) {
      EXPECT_EQ(error.errno_value(), EBADF);
      EXPECT_EQ(error.syscall(), ipcxx::Syscall::close);
    }
    other = open_null();
    ASSERT_EQ(other, number);
    EXPECT_NO_THROW(owner.close("test"));
  }
  EXPECT_TRUE(is_open(other));
  ::close(other);
}

TEST(DetailUniqueFd, ReleaseGivesTheNumberAwayWithoutClosing) {
  UniqueFd owner(open_null());
  const int number = owner.release();
  EXPECT_FALSE(owner.valid());
  EXPECT_TRUE(is_open(number));
  ::close(number);
}

TEST(DetailUniqueSemaphore, FailedSemCloseIsReportedAndForgotten) {
  sem_t not_from_sem_open{};  // glibc's sem_close refuses what sem_open did not map
  UniqueSemaphore owner(&not_from_sem_open);
  try {
    owner.close("/bogus");
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EINVAL);
    EXPECT_EQ(error.syscall(), ipcxx::Syscall::sem_close);
    EXPECT_STREQ(error.what(), "sem_close(/bogus): Invalid argument");
  }
  EXPECT_FALSE(owner.valid());
  EXPECT_EQ(owner.get(), nullptr);
}

TEST(DetailUniqueMapping, ResetUnmapsAndAFailedMunmapIsForgotten) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const auto length = static_cast<std::size_t>(page);
  void* address =
      ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(address, MAP_FAILED);
  UniqueMapping mapping(address, length);
  UniqueMapping moved(std::move(mapping));
  EXPECT_FALSE(mapping.valid());
  EXPECT_EQ(moved.address(), address);
  EXPECT_EQ(moved.reset(), 0);
  EXPECT_FALSE(moved.valid());
  EXPECT_EQ(::msync(address, length, MS_ASYNC), -1);  // unmapped: ENOMEM
  EXPECT_EQ(errno, ENOMEM);

  UniqueMapping misaligned(static_cast<char*>(nullptr) + 1, length);
  try {
    misaligned.close("mapping");
    FAIL() << "no exception";
  } catch (const ipcxx::Error& error) {
    EXPECT_EQ(error.errno_value(), EINVAL);
    EXPECT_EQ(error.syscall(), ipcxx::Syscall::munmap);
  }
  EXPECT_FALSE(misaligned.valid());
  EXPECT_NO_THROW(misaligned.close("mapping"));
}

// ipcxx::sysv::SharedMemory and Attachment: sizes, spans, fill, detach, cross-process data.
#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <cstring>

#include "child_process.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/shared_memory.hpp"

using ipcxx::sysv::SharedMemory;
using ipcxx::testing::ChildProcess;

namespace {
using Removal = ipcxx::testing::Removal<SharedMemory>;
}  // namespace

TEST(SysvSharedMemory, OpenAttachedFillsANewSegment) {
  auto opened =
      ipcxx::sysv::open_attached(std::nullopt, IPC_CREAT | IPC_EXCL, 0600, 100, std::byte{'x'});
  Removal removal{opened.memory};
  ASSERT_EQ(opened.attachment.size(), 100u);
  for (std::byte b : opened.attachment.bytes()) ASSERT_EQ(b, std::byte{'x'});
  EXPECT_EQ(opened.memory.status().number_attached, 1u);
}

TEST(SysvSharedMemory, SizeZeroWithCrexMeansOnePage) {
  auto opened =
      ipcxx::sysv::open_attached(std::nullopt, IPC_CREAT | IPC_EXCL, 0600, 0, std::byte{' '});
  Removal removal{opened.memory};
  EXPECT_EQ(opened.memory.status().size, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
}

TEST(SysvSharedMemory, ReadOnlyModeAttachesReadOnly) {
  auto opened =
      ipcxx::sysv::open_attached(std::nullopt, IPC_CREAT | IPC_EXCL, 0400, 64, std::byte{' '});
  Removal removal{opened.memory};
  EXPECT_TRUE(opened.attachment.read_only());
}

TEST(SysvSharedMemory, DetachEmptiesTheAttachmentAndSecondDetachFails) {
  const SharedMemory memory = SharedMemory::create_unique(0, 0600, 64);
  Removal removal{memory};
  auto attachment = memory.attach();
  EXPECT_TRUE(attachment.attached());
  attachment.detach();
  EXPECT_FALSE(attachment.attached());
  EXPECT_TRUE(attachment.bytes().empty());
}

TEST(SysvSharedMemory, ChildWritesAreVisible) {
  const SharedMemory memory = SharedMemory::create_unique(0, 0600, 64);
  Removal removal{memory};
  auto mine = memory.attach();
  ChildProcess child([&] {
    auto theirs = memory.attach();
    std::memcpy(theirs.address(), "child", 5);
    return 0;
  });
  ASSERT_EQ(child.wait(), 0);
  EXPECT_EQ(std::memcmp(mine.address(), "child", 5), 0);
}

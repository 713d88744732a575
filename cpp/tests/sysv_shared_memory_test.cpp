// ipcxx::sysv::SharedMemory and Attachment: sizes, spans, fill, detach, cross-process data,
// SHM_REMAP refused over pinned (exported) ranges.
#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <cstring>
#include <stdexcept>

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

TEST(SysvSharedMemory, RemapOverAPinnedRangeIsRefusedAndLeavesTheMappingAlone) {
  const SharedMemory first = SharedMemory::create_unique(0, 0600, 8192);
  Removal first_removal{first};
  const SharedMemory second = SharedMemory::create_unique(0, 0600, 8192);
  Removal second_removal{second};
  auto viewed = first.attach();
  std::memcpy(viewed.address(), "first", 5);
  auto other = second.attach();
  std::memcpy(other.address(), "other", 5);
  other.detach();
  {
    ipcxx::sysv::RangePin pin(static_cast<std::byte*>(viewed.address()) + 4096, 1);
    EXPECT_TRUE(ipcxx::sysv::RangePin::any_overlaps(viewed.address(), 8192));
    EXPECT_FALSE(ipcxx::sysv::RangePin::any_overlaps(viewed.address(), 4096));
    ipcxx::sysv::RangePin whole(viewed.address(), viewed.size());
    EXPECT_THROW((void)second.attach(viewed.address(), SHM_REMAP), std::invalid_argument);
    EXPECT_EQ(std::memcmp(viewed.address(), "first", 5), 0);
    EXPECT_EQ(first.status().number_attached, 1u);
    // SHM_RND rounds down into the pinned range as well.
    EXPECT_THROW(
        (void)second.attach(static_cast<std::byte*>(viewed.address()) + 10, SHM_REMAP | SHM_RND),
        std::invalid_argument);
  }
  EXPECT_FALSE(ipcxx::sysv::RangePin::any_overlaps(viewed.address(), viewed.size()));
  // No pin: SHM_REMAP replaces the mapping as the kernel does.
  auto remapped = second.attach(viewed.address(), SHM_REMAP);
  EXPECT_EQ(remapped.address(), viewed.address());
  EXPECT_EQ(std::memcmp(viewed.address(), "other", 5), 0);
  EXPECT_EQ(first.status().number_attached, 0u);  // fully replaced
  remapped.release();                             // `viewed` detaches that address once
}

TEST(SysvSharedMemory, PinsMoveAndUnpinOnce) {
  alignas(64) static std::byte area[64];
  ipcxx::sysv::RangePin pin(area, sizeof area);
  ipcxx::sysv::RangePin moved(std::move(pin));
  EXPECT_FALSE(pin.pinned());  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_TRUE(moved.pinned());
  EXPECT_TRUE(ipcxx::sysv::RangePin::any_overlaps(area + 63, 1));
  moved = ipcxx::sysv::RangePin();
  EXPECT_FALSE(ipcxx::sysv::RangePin::any_overlaps(area, sizeof area));
}

// Process-wide facts the classes need to survive fork(): a counter of fork generations.
#pragma once

#include <cstdint>

namespace ipcxx {

/// How many fork() calls separate this process from the one that loaded ipcxx: 0 there, one
/// more in each fork child (counted by a pthread_atfork child handler). Compare a value saved
/// with a handle against it to learn that the handle was inherited across a fork (threads that
/// pinned it in the parent do not exist here). Never blocks, never throws.
std::uint64_t fork_generation() noexcept;

}  // namespace ipcxx

// Who takes part in a channel: process identities that survive PID reuse, owner tags, and the
// liveness check the death recovery relies on (docs/channel.md, "Participants and owner tags").
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "channel/layout.hpp"

namespace ipcxx::channel {

/// This process's identity, pid << 42 | start time in clock ticks (read from /proc once per
/// process). Never 0.
std::uint64_t own_identity();

/// Whether the process of `identity` still runs: its /proc entry exists, is not a zombie and
/// has the same start time. One open+read of /proc (microseconds): only for recovery.
bool identity_alive(std::uint64_t identity);

/// Tag layout: incarnation << 10 | (slot + 1).
constexpr std::uint32_t kIncarnationMask = (1u << 22) - 1;
constexpr std::uint32_t make_tag(std::uint32_t slot, std::uint32_t incarnation) {
  return (incarnation & kIncarnationMask) << 10 | (slot + 1);
}

/// Claims a free slot, or one whose process died, and returns this process's new tag. Throws
/// ChannelError when all kParticipants slots belong to live processes.
std::uint32_t register_participant(Slot* slots, std::uint64_t identity);
/// Gives the slot of `tag` back (its incarnation moves on, so the tag is dead from now on).
void unregister_participant(Slot* slots, std::uint32_t tag) noexcept;
/// Whether `tag` belongs to a live registration. `self` is this process's own tag (alive
/// without a /proc read).
bool tag_alive(const Slot* slots, std::uint32_t tag, std::uint32_t self);

}  // namespace ipcxx::channel

// Creating, opening and validating a channel segment (docs/channel.md, "Segment layout").
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "ipcxx/posix/mapping.hpp"

namespace ipcxx::channel {

/// The ring size for a requested capacity: the next power of two, at least 4096. Throws
/// std::invalid_argument beyond Channel::kMaxCapacity.
std::size_t ring_capacity(std::size_t requested);

/// Opens `name`, creating it with a ring of `capacity` bytes when `create` and it does not
/// exist; waits up to a second for a creator to finish. The mapping holds a valid segment
/// (ChannelError otherwise).
posix::Mapping open_or_create(const std::string& name, bool create, std::size_t capacity,
                              mode_t mode);
/// Creates `name` (Error(EEXIST) when taken).
posix::Mapping create(const std::string& name, std::size_t capacity, mode_t mode);

}  // namespace ipcxx::channel

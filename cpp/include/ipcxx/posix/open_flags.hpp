// Shared rules for POSIX open flags and names, used by all three POSIX classes.
#pragma once

#include <string>
#include <string_view>

namespace ipcxx::posix {

/// Throws std::invalid_argument("O_EXCL must be combined with O_CREAT") for O_EXCL without
/// O_CREAT; every POSIX constructor calls it before opening anything.
void validate_open_flags(int flags);

/// Throws std::invalid_argument("embedded null byte") when `name` cannot be a C string.
void validate_name(std::string_view name);

/// A fresh random name: "/" followed by 5 to 12 lowercase letters, drawn from the OS RNG.
std::string random_name();

}  // namespace ipcxx::posix

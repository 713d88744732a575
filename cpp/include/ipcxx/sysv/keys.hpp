// System V keys: ftok, random keys, and the flag rule shared by the three System V classes.
#pragma once

#include <sys/types.h>

#include <string>

namespace ipcxx::sysv {

/// ftok(path, id) (glibc uses the low 8 bits of id). Throws ipcxx::Error when `path` is not
/// reachable, std::invalid_argument for a NUL in the path.
key_t ftok(const std::string& path, int id);

/// A key in 1..32766 drawn from the OS RNG (the range sysv_ipc uses for key=None).
key_t random_key();

/// Throws std::invalid_argument("IPC_EXCL must be combined with IPC_CREAT").
void validate_get_flags(int flags);

/// The text used for a key or an id in error messages: "key 1234" / "id 5".
std::string describe_key(key_t key);
std::string describe_id(int id);

}  // namespace ipcxx::sysv

// System V key helpers.
#include "ipcxx/sysv/keys.hpp"

#include <sys/ipc.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include "detail/syscall.hpp"

namespace ipcxx::sysv {

key_t ftok(const std::string& path, int id) {
  if (path.find('\0') != std::string::npos) throw std::invalid_argument("embedded null character");
  const key_t key = ::ftok(path.c_str(), id);
  if (key == static_cast<key_t>(-1)) detail::throw_errno(Syscall::ftok, path);
  return key;
}

key_t random_key() {
  // Upstream draws rand() seeded with the time, so processes started in the same second pick
  // the same keys (compatibility.md, sysv DC-29); the range 1..32766 is kept.
  std::uint32_t random = 0;
  while (::getrandom(&random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
    if (errno != EINTR) detail::throw_errno(Syscall::getrandom, "key");
  }
  return static_cast<key_t>(random % 32766 + 1);
}

void validate_get_flags(int flags) {
  if ((flags & IPC_EXCL) && !(flags & IPC_CREAT))
    throw std::invalid_argument("IPC_EXCL must be combined with IPC_CREAT");
}

std::string describe_key(key_t key) { return "key " + std::to_string(key); }

std::string describe_id(int id) { return "id " + std::to_string(id); }

}  // namespace ipcxx::sysv

// Flag and name validation plus random name generation for the POSIX classes.
#include "ipcxx/posix/open_flags.hpp"

#include <fcntl.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include "detail/syscall.hpp"

namespace ipcxx::posix {

void validate_open_flags(int flags) {
  if ((flags & O_EXCL) && !(flags & O_CREAT))
    throw std::invalid_argument("O_EXCL must be combined with O_CREAT");
}

void validate_name(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) throw std::invalid_argument("embedded null byte");
}

std::string random_name() {
  // Upstream draws rand() seeded with time(NULL), so processes started in the same second
  // collide (compatibility.md, DC-17); the OS RNG keeps the format without that flaw.
  std::array<std::uint8_t, 16> random{};
  std::size_t filled = 0;
  while (filled < random.size()) {
    const ssize_t got = getrandom(random.data() + filled, random.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      detail::throw_errno(Syscall::getrandom, "name");
    }
    filled += static_cast<std::size_t>(got);
  }
  // Total length 6..13 like upstream (the 14-character cap exists for FreeBSD).
  const std::size_t letters = 5 + random[0] % 8;
  std::string name = "/";
  for (std::size_t i = 0; i < letters; ++i) name += static_cast<char>('a' + random[1 + i] % 26);
  return name;
}

}  // namespace ipcxx::posix

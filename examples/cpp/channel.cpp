// A parent streams records and then a zero-copy payload to a forked child through an
// ipcxx::Channel; the child checks every byte. Usage: ipcxx_channel_example [records]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>

#include "ipcxx/ipcxx.hpp"

namespace {

using namespace std::chrono_literals;
using ipcxx::Channel;

struct Record {
  std::uint64_t sequence;
  double value;
};

constexpr std::size_t kPayloadBytes = 256 * 1024;

std::byte payload_byte(std::size_t i) { return std::byte(i * 7 + 1); }

// The child: opens the channel by name, as an unrelated process would, and receives. Every
// wait is bounded, so a parent that died cannot leave it waiting forever.
int consume(const std::string& name, std::uint64_t count) {
  Channel channel(name);
  for (std::uint64_t i = 0; i < count; ++i) {
    Record record;
    // Copied into the caller's memory: no allocation per message.
    const ipcxx::ChannelReceived received =
        channel.receive_into_for(std::as_writable_bytes(std::span(&record, 1)), 10s);
    if (!received || received.size != sizeof record || record.sequence != i ||
        record.value != static_cast<double>(i) / 2) {
      std::fprintf(stderr, "child: record %llu missing or wrong\n",
                   static_cast<unsigned long long>(i));
      return 1;
    }
  }
  // Read in place in shared memory; consumed (its space given back) at the end of the scope.
  std::optional<ipcxx::ChannelDeliveryGuard> payload = channel.claim_for(10s);
  if (!payload || payload->size() != kPayloadBytes) {
    std::fprintf(stderr, "child: no payload\n");
    return 1;
  }
  for (std::size_t i = 0; i < kPayloadBytes; ++i)
    if (payload->bytes()[i] != payload_byte(i)) {
      std::fprintf(stderr, "child: payload byte %zu wrong\n", i);
      return 1;
    }
  return 0;
}

// The parent's side; false when the child stopped taking messages.
bool produce(Channel& channel, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) {
    // Written straight into the ring; committed when `slot` goes out of scope (discarded if an
    // exception left the scope first).
    std::optional<ipcxx::ChannelReservationGuard> slot = channel.reserve_for(sizeof(Record), 10s);
    if (!slot) return false;
    const Record record{i, static_cast<double>(i) / 2};
    std::memcpy(slot->data(), &record, sizeof record);
  }
  std::optional<ipcxx::ChannelReservationGuard> payload = channel.reserve_for(kPayloadBytes, 10s);
  if (!payload) return false;
  std::span<std::byte> bytes = payload->bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = payload_byte(i);
  payload->commit();  // explicit, the same as leaving the scope
  return true;
}

int run(std::uint64_t count) {
  Channel channel = Channel::create_unique();
  // The name goes when main returns or throws: the child has opened the segment by then, or
  // failed (a mapped segment outlives its name).
  struct Unlink {
    const Channel& channel;
    ~Unlink() {
      try {
        channel.unlink();
      } catch (const std::exception&) {
      }
    }
  } unlink{channel};

  const pid_t child = ::fork();
  if (child == 0) {
    int status = 1;
    try {
      status = consume(channel.name(), count);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child: %s\n", error.what());
    }
    ::_exit(status);  // not through main's scope: the parent removes the name
  }
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  const auto started = std::chrono::steady_clock::now();
  const bool sent = produce(channel, count);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  if (!sent || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "the transfer failed (child status %d)\n", status);
    return 1;
  }
  std::printf("%llu records and a %zu KiB payload in %.3f s (%.2f M records/s); lost %llu\n",
              static_cast<unsigned long long>(count), kPayloadBytes / 1024, elapsed.count(),
              static_cast<double>(count) / elapsed.count() / 1e6,
              static_cast<unsigned long long>(channel.lost()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  try {
    return run(count);  // caught here, so that run()'s scopes unwind and remove the name
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
}

// The C++ side of bench/run.py's channel_2proc_16B_cpp_* rows: 16-byte records/s between two
// processes through ipcxx::Channel. Usage: ipcxx_channel_bench CASE SECONDS -> {"ns": ...}
// Measured as bench/floor.c and bench/cases.py measure their stream(): the parent (first core)
// sends n messages, the child (second core) receives them and says so through a pipe; the best
// batch per message. The channel is named with $IPCXX_BENCH_PREFIX (run.py removes leftovers).
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "ipcxx/channel.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Pins this process to the index-th CPU it may use (when it may use two), as floor.c does.
void pin_to(int index) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == index) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::exit(1);
  }
}

constexpr std::array<std::byte, 16> kMessage = [] {
  std::array<std::byte, 16> bytes{};
  bytes.fill(std::byte{'m'});
  return bytes;
}();

// send(channel) in the parent, receive(channel) in the child (inlined: no call through a pointer
// per message, which the C floor does not pay either).
template <typename Send, typename Receive>
double stream(double seconds, Send send, Receive receive) {
  const char* prefix = std::getenv("IPCXX_BENCH_PREFIX");
  const std::string channel_name = "/" + std::string(prefix && *prefix ? prefix : "ipcxx_cpp_") +
                                   std::to_string(::getpid()) + "_channel";
  ipcxx::Channel channel(channel_name, true);
  int commands[2], replies[2];
  check(::pipe(commands) == 0 && ::pipe(replies) == 0, "pipe");
  const pid_t child = ::fork();
  check(child >= 0, "fork");
  if (child == 0) {
    ::close(commands[1]);
    pin_to(1);
    int status = 0;
    try {
      ipcxx::Channel mine(channel_name);  // by name, as the Python consumer opens it
      long n = 0;
      while (::read(commands[0], &n, sizeof n) == sizeof n) {
        for (long i = 0; i < n; ++i) receive(mine);
        if (::write(replies[1], "k", 1) != 1) break;
      }
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child: %s\n", error.what());
      status = 1;
    }
    ::_exit(status);
  }
  ::close(commands[0]);
  ::close(replies[1]);
  pin_to(0);
  const auto step = [&](long n) {
    check(::write(commands[1], &n, sizeof n) == sizeof n, "write");
    for (long i = 0; i < n; ++i) send(channel);
    char ack;
    check(::read(replies[0], &ack, 1) == 1, "read (the child failed)");
  };
  // Calibrate a batch of at least 20 ms, then keep the best batch until the time is up.
  long batch = 1;
  std::chrono::duration<double, std::nano> elapsed{};
  for (;;) {
    const auto started = Clock::now();
    step(batch);
    elapsed = Clock::now() - started;
    if (elapsed > std::chrono::milliseconds(20) || batch >= (1L << 28)) break;
    batch *= 4;
  }
  double best = elapsed.count() / static_cast<double>(batch);
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    const auto started = Clock::now();
    step(batch);
    best = std::min(best, std::chrono::duration<double, std::nano>(Clock::now() - started).count() /
                              static_cast<double>(batch));
  }
  ::close(commands[1]);  // the child sees the end of the commands and exits
  int status = 0;
  ::waitpid(child, &status, 0);
  channel.unlink();
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
  return best;
}

double run(const std::string& name, double seconds) {
  if (name == "channel_2proc_16B_cpp_vs_python")  // copies: send(span), receive_into(span)
    return stream(
        seconds, [](ipcxx::Channel& channel) { channel.send(kMessage); },
        [](ipcxx::Channel& channel) {
          std::array<std::byte, 16> buffer;
          if (!channel.receive_into(buffer)) std::abort();
        });
  if (name == "channel_2proc_16B_cpp_guards_vs_python")  // zero copy: reserve(), claim()
    return stream(
        seconds,
        [](ipcxx::Channel& channel) {
          ipcxx::ChannelReservationGuard slot = channel.reserve(kMessage.size());
          std::memcpy(slot.data(), kMessage.data(), kMessage.size());
        },
        [](ipcxx::Channel& channel) {
          ipcxx::ChannelDeliveryGuard message = channel.claim();
          if (message.size() != kMessage.size()) std::abort();
        });
  std::fprintf(stderr, "unknown case %s\n", name.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: ipcxx_channel_bench CASE SECONDS\n");
    return 2;
  }
  try {
    std::printf("{\"ns\": %.3f}\n", run(argv[1], std::atof(argv[2])));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
  return 0;
}

// What a guard against a Channel or RobustMutex segment truncated by a peer would cost
// (docs/reliability.md, "Known limit: a Channel or RobustLock segment truncated after open"):
// each hot call alone, with a size check (fstat) or a fault probe (madvise POPULATE_WRITE)
// before it, and with a sigsetjmp recovery point; then a wait that sleeps, with and without a
// probe after each wake-up. Prints nanoseconds per round.
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <thread>

#include "ipcxx/channel.hpp"
#include "ipcxx/robust_mutex.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace {

constexpr int kRounds = 1'000'000;

template <typename Body>
double nanoseconds_per_round(Body body, int rounds = kRounds) {
  double best = 1e30;
  for (int repeat = 0; repeat < 5; ++repeat) {  // best of 5 against scheduler noise
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) body();
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    if (took.count() / rounds < best) best = took.count() / rounds;
  }
  return best;
}

std::atomic<long> sink{0};
thread_local sigjmp_buf recovery;

// The checks a guard would make before touching the segment.
struct Guard {
  int fd;
  void* page;  // the segment's first page, mapped again here (same cost as the object's own)
  void size() const {
    struct stat info {};
    ::fstat(fd, &info);
    sink.fetch_add(info.st_size, std::memory_order_relaxed);
  }
  void probe() const { sink.fetch_add(::madvise(page, 4096, MADV_POPULATE_WRITE)); }
};

Guard guard_for(const std::string& name) {
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return {fd, page};
}

void report(const char* what, double ns) { std::printf("%-52s %8.1f ns\n", what, ns); }

}  // namespace

int main() {
  const std::byte payload[16]{};
  ipcxx::Channel channel = ipcxx::Channel::create_unique(1 << 16);
  const Guard channel_guard = guard_for(channel.name());
  channel.unlink();
  if (channel_guard.fd < 0 || channel_guard.page == MAP_FAILED) return 1;
  if (::madvise(channel_guard.page, 4096, MADV_POPULATE_WRITE) != 0)
    std::printf("madvise(MADV_POPULATE_WRITE) is not supported here: its rows are void\n");

  auto pair = [&] {
    channel.try_send(payload);
    ipcxx::ChannelDelivery delivery;
    if (channel.try_claim(delivery) == ipcxx::ChannelStatus::done) channel.consume(delivery);
  };
  report("Channel try_send + try_claim/consume (16 B)", nanoseconds_per_round(pair));
  report("  + fstat before each of the 2 calls", nanoseconds_per_round([&] {
           channel_guard.size();
           channel.try_send(payload);
           channel_guard.size();
           ipcxx::ChannelDelivery delivery;
           if (channel.try_claim(delivery) == ipcxx::ChannelStatus::done) channel.consume(delivery);
         }));
  report("  + madvise(POPULATE_WRITE) probe before each", nanoseconds_per_round([&] {
           channel_guard.probe();
           channel.try_send(payload);
           channel_guard.probe();
           ipcxx::ChannelDelivery delivery;
           if (channel.try_claim(delivery) == ipcxx::ChannelStatus::done) channel.consume(delivery);
         }));
  report("  + sigsetjmp(env, 0) before each", nanoseconds_per_round([&] {
           if (sigsetjmp(recovery, 0) == 0) channel.try_send(payload);
           ipcxx::ChannelDelivery delivery;
           if (sigsetjmp(recovery, 0) == 0 &&
               channel.try_claim(delivery) == ipcxx::ChannelStatus::done)
             channel.consume(delivery);
         }));
  report("  + sigsetjmp(env, 1) before each", nanoseconds_per_round([&] {
           if (sigsetjmp(recovery, 1) == 0) channel.try_send(payload);
           ipcxx::ChannelDelivery delivery;
           if (sigsetjmp(recovery, 1) == 0 &&
               channel.try_claim(delivery) == ipcxx::ChannelStatus::done)
             channel.consume(delivery);
         }));

  ipcxx::RobustMutex mutex = ipcxx::RobustMutex::create_unique();
  const Guard mutex_guard = guard_for(mutex.name());
  mutex.unlink();
  if (mutex_guard.fd < 0 || mutex_guard.page == MAP_FAILED) return 1;
  report("RobustMutex try_acquire + release", nanoseconds_per_round([&] {
           mutex.try_acquire();
           mutex.release();
         }));
  report("  + fstat before each of the 2 calls", nanoseconds_per_round([&] {
           mutex_guard.size();
           mutex.try_acquire();
           mutex_guard.size();
           mutex.release();
         }));
  report("  + madvise(POPULATE_WRITE) probe before each", nanoseconds_per_round([&] {
           mutex_guard.probe();
           mutex.try_acquire();
           mutex_guard.probe();
           mutex.release();
         }));

  // Slow path: a round trip through two channels with no spin, so each side sleeps in the
  // futex every time; a probe after each wake-up is the cheapest check a wait could make.
  ipcxx::Channel ping = ipcxx::Channel::create_unique(1 << 12);
  ipcxx::Channel pong = ipcxx::Channel::create_unique(1 << 12);
  ping.unlink();
  pong.unlink();
  ping.set_spin(std::chrono::nanoseconds{0});
  pong.set_spin(std::chrono::nanoseconds{0});
  constexpr int kTrips = 20'000;
  std::atomic<bool> probing{false};
  auto wait_for = [&](ipcxx::Channel& from) {
    ipcxx::ChannelDelivery delivery;
    while (from.try_claim(delivery) != ipcxx::ChannelStatus::done) {
      from.wait_readable(std::chrono::seconds{1});
      if (probing.load(std::memory_order_relaxed)) channel_guard.probe();
    }
    from.consume(delivery);
  };
  for (bool probe : {false, true}) {
    probing = probe;
    std::thread echo([&] {
      for (int i = 0; i < 5 * kTrips; ++i) {
        wait_for(ping);
        pong.try_send(payload);
      }
    });
    const double trip = nanoseconds_per_round(
        [&] {
          ping.try_send(payload);
          wait_for(pong);
        },
        kTrips);
    echo.join();
    report(probe ? "  + madvise probe after each wake-up"
                 : "round trip, both sides sleeping in the futex (spin 0)",
           trip);
  }
  return 0;
}

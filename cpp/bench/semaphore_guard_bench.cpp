// What a per-call guard against a truncated semaphore file would cost (docs/reliability.md,
// "Known limit: a semaphore file truncated after open"): sem_trywait+sem_post alone and with
// each candidate check. No dependencies; prints nanoseconds per trywait+post pair.
#include <fcntl.h>
#include <semaphore.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

constexpr int kRounds = 2'000'000;

template <typename Body>
double nanoseconds_per_round(Body body) {
  double best = 1e30;
  for (int repeat = 0; repeat < 5; ++repeat) {  // best of 5 against scheduler noise
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) body();
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    if (took.count() / kRounds < best) best = took.count() / kRounds;
  }
  return best;
}

// Results land here so the compiler keeps every call and check.
std::atomic<long> sink{0};
thread_local sigjmp_buf recovery;

}  // namespace

int main() {
  const std::string name = "/ipcxx_guard_bench_" + std::to_string(::getpid());
  sem_t* semaphore = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 1);
  if (semaphore == SEM_FAILED) return 1;
  // The descriptor a guard would keep: the backing file, opened beside glibc's mapping.
  const int fd = ::open(("/dev/shm/sem." + name.substr(1)).c_str(), O_RDONLY | O_CLOEXEC);
  ::sem_unlink(name.c_str());
  if (fd < 0) return 1;

  const double plain = nanoseconds_per_round([&] {
    sink.fetch_add(::sem_trywait(semaphore), std::memory_order_relaxed);
    ::sem_post(semaphore);
  });
  // Guard 1: fstat the kept descriptor before each call, refusing a file shorter than sem_t.
  const double with_fstat = nanoseconds_per_round([&] {
    struct stat info {};
    ::fstat(fd, &info);
    sink.fetch_add(info.st_size < static_cast<off_t>(sizeof(sem_t)), std::memory_order_relaxed);
    sink.fetch_add(::sem_trywait(semaphore), std::memory_order_relaxed);
    ::fstat(fd, &info);
    sink.fetch_add(info.st_size < static_cast<off_t>(sizeof(sem_t)), std::memory_order_relaxed);
    ::sem_post(semaphore);
  });
  // Guard 2: a SIGBUS handler that siglongjmps back; each call arms a recovery point.
  // Without the signal mask saved (sigsetjmp(.., 0)) ...
  const double with_setjmp = nanoseconds_per_round([&] {
    if (sigsetjmp(recovery, 0) == 0)
      sink.fetch_add(::sem_trywait(semaphore), std::memory_order_relaxed);
    if (sigsetjmp(recovery, 0) == 0) ::sem_post(semaphore);
  });
  // ... and with it (needed to unblock SIGBUS after jumping out of the handler).
  const double with_sigsetjmp = nanoseconds_per_round([&] {
    if (sigsetjmp(recovery, 1) == 0)
      sink.fetch_add(::sem_trywait(semaphore), std::memory_order_relaxed);
    if (sigsetjmp(recovery, 1) == 0) ::sem_post(semaphore);
  });

  std::printf("sem_trywait+sem_post                 %6.1f ns\n", plain);
  std::printf("  + fstat before each call           %6.1f ns\n", with_fstat);
  std::printf("  + sigsetjmp(env, 0) per call       %6.1f ns\n", with_setjmp);
  std::printf("  + sigsetjmp(env, 1) per call       %6.1f ns\n", with_sigsetjmp);
  ::close(fd);
  ::sem_close(semaphore);
  return 0;
}

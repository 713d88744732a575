// Each core call ("Core/...") next to the raw syscall sequence it wraps ("Raw/...").
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <mqueue.h>
#include <semaphore.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "ipcxx/posix/message_queue.hpp"
#include "ipcxx/posix/semaphore.hpp"
#include "ipcxx/sysv/message_queue.hpp"
#include "ipcxx/sysv/semaphore.hpp"

namespace {

std::string name_for(const char* what) {
  return "/ipcxx_bench_" + std::string(what) + "_" + std::to_string(::getpid());
}

// A posix semaphore with `initial` units, unlinked right away (the handle keeps it alive).
ipcxx::posix::Semaphore posix_semaphore(unsigned initial) {
  auto semaphore = ipcxx::posix::Semaphore::create(name_for("sem"), initial);
  semaphore.unlink();
  return semaphore;
}

void RawSemTrywaitPost(benchmark::State& state) {
  sem_t* semaphore = sem_open(name_for("raw").c_str(), O_CREAT | O_EXCL, 0600, 1);
  sem_unlink(name_for("raw").c_str());
  for (auto _ : state) {
    benchmark::DoNotOptimize(sem_trywait(semaphore));
    sem_post(semaphore);
  }
  sem_close(semaphore);
}
BENCHMARK(RawSemTrywaitPost)->Name("Raw/posix_try_acquire_release");

void CoreTryAcquireRelease(benchmark::State& state) {
  auto semaphore = posix_semaphore(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(semaphore.try_acquire());
    semaphore.release();
  }
}
BENCHMARK(CoreTryAcquireRelease)->Name("Core/posix_try_acquire_release");

void RawSemTrywaitBusy(benchmark::State& state) {
  sem_t* semaphore = sem_open(name_for("rawbusy").c_str(), O_CREAT | O_EXCL, 0600, 0);
  sem_unlink(name_for("rawbusy").c_str());
  for (auto _ : state) benchmark::DoNotOptimize(sem_trywait(semaphore) == 0 || errno == EAGAIN);
  sem_close(semaphore);
}
BENCHMARK(RawSemTrywaitBusy)->Name("Raw/posix_try_acquire_busy");

void CoreTryAcquireBusy(benchmark::State& state) {
  auto semaphore = posix_semaphore(0);
  for (auto _ : state) benchmark::DoNotOptimize(semaphore.try_acquire());
}
BENCHMARK(CoreTryAcquireBusy)->Name("Core/posix_try_acquire_busy");

constexpr timespec kPast{0, 0};

void RawMqTimedSendReceive(benchmark::State& state) {
  mq_attr attr{};
  attr.mq_maxmsg = 4;
  attr.mq_msgsize = 16;
  const std::string name = name_for("rawmq");
  mqd_t queue = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
  mq_unlink(name.c_str());
  std::array<char, 16> message{}, buffer{};
  unsigned priority = 0;
  for (auto _ : state) {
    mq_timedsend(queue, message.data(), message.size(), 0, &kPast);
    benchmark::DoNotOptimize(
        mq_timedreceive(queue, buffer.data(), buffer.size(), &priority, &kPast));
  }
  mq_close(queue);
}
BENCHMARK(RawMqTimedSendReceive)->Name("Raw/posix_mq_try_send_receive_16B");

void CoreMqTrySendReceive(benchmark::State& state) {
  auto queue = ipcxx::posix::MessageQueue::create(name_for("mq"), {4, 16});
  queue.unlink();
  std::array<std::byte, 16> message{}, buffer{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(queue.try_send(message));
    benchmark::DoNotOptimize(queue.try_receive(buffer));
  }
}
BENCHMARK(CoreMqTrySendReceive)->Name("Core/posix_mq_try_send_receive_16B");

void RawSysvSemop(benchmark::State& state) {
  const int id = semget(IPC_PRIVATE, 1, 0600);
  semctl(id, 0, SETVAL, 1);
  sembuf take{0, -1, IPC_NOWAIT}, give{0, 1, IPC_NOWAIT};
  for (auto _ : state) {
    benchmark::DoNotOptimize(semop(id, &take, 1));
    semop(id, &give, 1);
  }
  semctl(id, 0, IPC_RMID);
}
BENCHMARK(RawSysvSemop)->Name("Raw/sysv_try_acquire_release");

void CoreSysvTryAcquireRelease(benchmark::State& state) {
  const ipcxx::sysv::Semaphore semaphore(IPC_PRIVATE, IPC_CREAT, 0600, 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(semaphore.try_acquire());
    semaphore.release();
  }
  semaphore.remove();
}
BENCHMARK(CoreSysvTryAcquireRelease)->Name("Core/sysv_try_acquire_release");

void RawSysvNowaitBusy(benchmark::State& state) {
  const int id = semget(IPC_PRIVATE, 1, 0600);
  sembuf take{0, -1, IPC_NOWAIT};
  for (auto _ : state) benchmark::DoNotOptimize(semop(id, &take, 1));
  semctl(id, 0, IPC_RMID);
}
BENCHMARK(RawSysvNowaitBusy)->Name("Raw/sysv_try_acquire_busy");

void CoreSysvTryAcquireBusy(benchmark::State& state) {
  const ipcxx::sysv::Semaphore semaphore(IPC_PRIVATE, IPC_CREAT, 0600, 0);
  for (auto _ : state) benchmark::DoNotOptimize(semaphore.try_acquire());
  semaphore.remove();
}
BENCHMARK(CoreSysvTryAcquireBusy)->Name("Core/sysv_try_acquire_busy");

void RawSysvMsg(benchmark::State& state) {
  const int id = msgget(IPC_PRIVATE, 0600);
  struct {
    long type;
    char text[16];
  } message{1, {}}, buffer{};
  for (auto _ : state) {
    msgsnd(id, &message, sizeof message.text, IPC_NOWAIT);
    benchmark::DoNotOptimize(msgrcv(id, &buffer, sizeof buffer.text, 0, IPC_NOWAIT));
  }
  msgctl(id, IPC_RMID, nullptr);
}
BENCHMARK(RawSysvMsg)->Name("Raw/sysv_mq_send_receive_16B");

void CoreSysvMsg(benchmark::State& state) {
  const ipcxx::sysv::MessageQueue queue(IPC_PRIVATE, IPC_CREAT, 0600);
  std::array<std::byte, 16> message{};
  std::vector<std::byte> scratch;
  for (auto _ : state) {
    benchmark::DoNotOptimize(queue.send(1, message, false));
    benchmark::DoNotOptimize(queue.receive(0, 16, scratch, false));
  }
  queue.remove();
}
BENCHMARK(CoreSysvMsg)->Name("Core/sysv_mq_send_receive_16B");

}  // namespace

BENCHMARK_MAIN();

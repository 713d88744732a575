// A parent and a forked child exchange a message and a shared-memory greeting through ipcxx.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <string>

#include "ipcxx/ipcxx.hpp"

int main() {
  using namespace std::chrono_literals;
  namespace posix = ipcxx::posix;
  const std::string suffix = std::to_string(::getpid());
  posix::Semaphore ready = posix::Semaphore::create("/ipcxx_example_sem_" + suffix, 0);
  posix::SharedMemory memory = posix::SharedMemory::create("/ipcxx_example_shm_" + suffix, 64);
  posix::MessageQueue queue =
      posix::MessageQueue::create("/ipcxx_example_mq_" + suffix, posix::QueueLimits{4, 64});
  posix::Mapping view = memory.map();

  const pid_t child = ::fork();
  if (child == 0) {
    std::memcpy(view.bytes().data(), "hello from the child", 21);
    const std::string reply = "queued by the child";
    (void)queue.send(std::as_bytes(std::span(reply.data(), reply.size())), 3);
    ready.release();
    ::_exit(0);
  }
  const bool signalled = ready.acquire_for(10s);
  const auto message = queue.try_receive();
  int status = 0;
  ::waitpid(child, &status, 0);
  ready.unlink();
  memory.unlink();
  queue.unlink();
  if (!signalled || !message) {
    std::cerr << "the child did not answer\n";
    return 1;
  }
  std::cout << "shared memory: " << reinterpret_cast<const char*>(view.bytes().data()) << "\n"
            << "message queue: "
            << std::string(reinterpret_cast<const char*>(message->data.data()),
                           message->data.size())
            << " (priority " << message->priority << ")\n";
  return 0;
}

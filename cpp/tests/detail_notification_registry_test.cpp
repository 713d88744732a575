// The mq_notify callback registry: fork-safe under contention, a forced unwind passes through,
// and the process fork generation counts forks.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "child_process.hpp"
#include "detail/notification_registry.hpp"
#include "ipcxx/process.hpp"

namespace detail = ipcxx::detail;

namespace {

sigval as_sigval(std::uint64_t token) {
  sigval value{};
  value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
  return value;
}

void on_alarm(int) {}

// waitpid with an alarm as the timeout guard: a child deadlocked after fork is killed and
// reported as -1 instead of hanging the suite.
int wait_with_timeout(pid_t pid, unsigned seconds) {
  struct sigaction action {};
  action.sa_handler = on_alarm;  // no SA_RESTART: waitpid returns EINTR when it fires
  struct sigaction previous {};
  ::sigaction(SIGALRM, &action, &previous);
  ::alarm(seconds);
  int status = 0;
  const pid_t got = ::waitpid(pid, &status, 0);
  const int saved = errno;
  ::alarm(0);
  ::sigaction(SIGALRM, &previous, nullptr);
  if (got != pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return saved == EINTR ? -1 : -2;
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// In a fork child: the registry must answer (no lock left held by a thread that is gone), and
// hold none of the parent's callbacks (the kernel registration is not inherited).
int use_registry_in_child(std::uint64_t parents_token, const std::atomic<bool>& parents_ran) {
  bool ran = false;
  const std::uint64_t token = detail::store_notification_callback([&ran] { ran = true; });
  detail::run_notification_callback(as_sigval(token));
  if (!ran) return 1;
  detail::drop_notification_callback(detail::store_notification_callback([] {}));
  detail::run_notification_callback(as_sigval(parents_token));
  if (parents_ran.load()) return 2;
  return 0;
}

}  // namespace

TEST(DetailNotificationRegistry, RunsAStoredCallbackOnceAndNeverADroppedOne) {
  int runs = 0;
  const std::uint64_t token = detail::store_notification_callback([&runs] { ++runs; });
  detail::run_notification_callback(as_sigval(token));
  detail::run_notification_callback(as_sigval(token));
  EXPECT_EQ(runs, 1);
  const std::uint64_t dropped = detail::store_notification_callback([&runs] { ++runs; });
  detail::drop_notification_callback(dropped);
  detail::run_notification_callback(as_sigval(dropped));
  EXPECT_EQ(runs, 1);
}

TEST(DetailNotificationRegistry, AnExceptionFromTheCallbackIsSwallowed) {
  const std::uint64_t token =
      detail::store_notification_callback([] { throw std::runtime_error("ignored"); });
  EXPECT_NO_THROW(detail::run_notification_callback(as_sigval(token)));
}

TEST(DetailNotificationRegistry, ForkChildrenCanUseTheRegistryWhileAThreadHammersIt) {
  std::atomic<bool> stop{false};
  std::atomic<bool> parents_ran{false};
  const std::uint64_t parents_token =
      detail::store_notification_callback([&parents_ran] { parents_ran = true; });
  std::thread hammer([&stop] {
    while (!stop.load(std::memory_order_relaxed))
      detail::drop_notification_callback(detail::store_notification_callback([] {}));
  });
  int failures = 0;
  for (int round = 0; round < 200 && failures == 0; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(use_registry_in_child(parents_token, parents_ran));
    const int code = wait_with_timeout(pid, 20);
    EXPECT_EQ(code, 0) << "round " << round << " (-1: the child hung)";
    if (code != 0) ++failures;
  }
  stop = true;
  hammer.join();
  detail::drop_notification_callback(parents_token);
  EXPECT_FALSE(parents_ran.load());
}

TEST(DetailNotificationRegistry, AForcedUnwindFromTheCallbackEndsTheThreadWithoutTerminate) {
  // Interpreter exit ends a thread running Python code with pthread_exit (a forced unwind).
  // Run in a child: std::terminate would abort the whole process.
  ipcxx::testing::ChildProcess child([] {
    std::atomic<bool> after_exit{false};
    const std::uint64_t token = detail::store_notification_callback([&after_exit] {
      ::pthread_exit(nullptr);
      after_exit = true;
    });
    pthread_t thread{};
    auto entry = [](void* argument) -> void* {
      detail::run_notification_callback(as_sigval(*static_cast<std::uint64_t*>(argument)));
      return reinterpret_cast<void*>(1);  // not reached: the callback exits the thread
    };
    std::uint64_t argument = token;
    if (::pthread_create(&thread, nullptr, entry, &argument) != 0) return 3;
    void* result = nullptr;
    if (::pthread_join(thread, &result) != 0) return 4;
    if (result != nullptr || after_exit) return 5;
    return 0;
  });
  EXPECT_EQ(child.wait(), 0);
}

TEST(ProcessForkGeneration, AForkChildSeesTheGenerationGoUpAndTheParentDoesNot) {
  const std::uint64_t before = ipcxx::fork_generation();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(ipcxx::fork_generation() == before + 1 ? 0 : 1);
  EXPECT_EQ(wait_with_timeout(pid, 20), 0);
  EXPECT_EQ(ipcxx::fork_generation(), before);
}

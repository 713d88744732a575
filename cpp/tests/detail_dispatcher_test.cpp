// The dispatcher thread: one thread, post order, errors swallowed, signals blocked, a fork child
// that never runs the parent's pending tasks and starts its own thread, a task that ends the
// thread.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "detail/dispatcher.hpp"

namespace detail = ipcxx::detail;
using namespace std::chrono_literals;

namespace {

// A flag that tasks set and tests wait for, with a timeout instead of a hang.
class Latch {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  bool wait(std::chrono::seconds timeout = 20s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

}  // namespace

TEST(DetailDispatcher, RunsTasksOneAtATimeInPostOrderOnOneOtherThread) {
  constexpr int kPosters = 4;
  constexpr int kEach = 500;
  std::mutex mutex;
  std::vector<int> last(kPosters, -1);
  std::set<std::thread::id> threads;
  std::atomic<int> running{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> out_of_order{0};
  std::atomic<int> done{0};
  Latch finished;
  std::vector<std::thread> posters;
  for (int poster = 0; poster < kPosters; ++poster) {
    posters.emplace_back([&, poster] {
      for (int i = 0; i < kEach; ++i) {
        detail::post_to_dispatcher([&, poster, i] {
          if (running.fetch_add(1) != 0) ++overlaps;
          {
            std::lock_guard lock(mutex);
            if (last[poster] != i - 1) ++out_of_order;
            last[poster] = i;
            threads.insert(std::this_thread::get_id());
          }
          running.fetch_sub(1);
          if (done.fetch_add(1) + 1 == kPosters * kEach) finished.open();
        });
      }
    });
  }
  for (std::thread& poster : posters) poster.join();
  ASSERT_TRUE(finished.wait());
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(out_of_order.load(), 0);
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_NE(*threads.begin(), std::this_thread::get_id());
}

TEST(DetailDispatcher, ATaskThatThrowsDoesNotStopTheNextAndSignalsAreBlocked) {
  Latch ran;
  bool all_blocked = false;
  detail::post_to_dispatcher([] { throw std::runtime_error("swallowed"); });
  detail::post_to_dispatcher([&] {
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    all_blocked = ::sigismember(&mask, SIGINT) == 1 && ::sigismember(&mask, SIGTERM) == 1 &&
                  ::sigismember(&mask, SIGUSR1) == 1;
    ran.open();
  });
  ASSERT_TRUE(ran.wait());
  EXPECT_TRUE(all_blocked);
}

TEST(DetailDispatcher, AForkChildNeverRunsTheParentsPendingTasksAndStartsItsOwnThread) {
  // The dispatcher is busy with one task while another waits behind it, and the main thread
  // forks, as a program does: the child's own task must run, the parent's waiting one not.
  Latch blocking;
  std::atomic<bool> release{false};
  std::atomic<bool> pending_ran{false};
  detail::post_to_dispatcher([&] {
    blocking.open();
    while (!release.load()) std::this_thread::yield();
  });
  detail::post_to_dispatcher([&] { pending_ran = true; });
  ASSERT_TRUE(blocking.wait());
  ipcxx::testing::ChildProcess child([&] {
    Latch own;
    detail::post_to_dispatcher([&] { own.open(); });
    if (!own.wait()) return 1;  // no thread started in the child
    // FIFO: had the parent's pending task been carried over, it would have run before ours.
    return pending_ran.load() ? 2 : 0;
  });
  EXPECT_EQ(child.wait(), 0);
  release = true;
  Latch after;
  detail::post_to_dispatcher([&] { after.open(); });
  ASSERT_TRUE(after.wait());
  EXPECT_TRUE(pending_ran.load());  // the parent still runs its own
}

TEST(DetailDispatcher, ATaskThatForksLeavesAChildWhoseNextPostStartsAThread) {
  Latch forked;
  pid_t pid = -1;
  detail::post_to_dispatcher([&] {
    pid = ::fork();
    if (pid == 0) {
      // The child's only thread is this old dispatcher thread, inside a task.
      Latch own;
      detail::post_to_dispatcher([&] { own.open(); });
      ::_exit(own.wait() ? 0 : 1);
    }
    forked.open();
  });
  ASSERT_TRUE(forked.wait());
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Latch still;
  detail::post_to_dispatcher([&] { still.open(); });
  EXPECT_TRUE(still.wait());  // the parent's thread serves on
}

TEST(DetailDispatcher, ATaskThatEndsTheThreadHandsTheQueueToANewThread) {
  // Interpreter exit ends a thread running Python code with pthread_exit (a forced unwind).
  // In a child: std::terminate would abort the whole process.
  ipcxx::testing::ChildProcess child([] {
    // Kernel thread ids: a pthread_t is reused at once for the next thread.
    std::atomic<pid_t> first{0};
    std::atomic<pid_t> second{0};
    Latch ran;
    detail::post_to_dispatcher([&] {
      first = ::gettid();
      ::pthread_exit(nullptr);
    });
    // Posted at once, so usually before the ended thread has unwound: it must not be stranded.
    detail::post_to_dispatcher([&] {
      second = ::gettid();
      ran.open();
    });
    if (!ran.wait()) return 1;
    return first.load() == second.load() ? 2 : 0;
  });
  EXPECT_EQ(child.wait(), 0);
}

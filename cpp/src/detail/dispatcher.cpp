// The process's dispatcher thread: a mutex+condvar task queue, restarted lazily after fork.
#include "detail/dispatcher.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

namespace ipcxx::detail {

namespace {

// Everything a fork child abandons at once: a thread of the parent may have been inside the
// condition variable or the queue at the fork, so the child gets fresh ones instead of trusting
// their state (glibc's condvar counts waiters that do not exist in the child).
struct State {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> tasks;
  bool serving = false;  // a thread runs serve() for this state, or is being started
};

std::atomic<State*>& current_state();

void lock_before_fork() noexcept { current_state().load()->mutex.lock(); }
void unlock_in_parent() noexcept { current_state().load()->mutex.unlock(); }

void reset_in_child() noexcept {
  State* parents = current_state().load();
  // The parent's pending tasks belong to its notifications, which the child does not have:
  // never run here. Not destroyed either: a task's destructor may run arbitrary code, which
  // must not happen inside an atfork handler. The dispatcher thread is gone; the next post
  // starts one. This thread locked the mutex in lock_before_fork() and is the only thread: a
  // dispatcher thread that forked from inside a task finds its state abandoned and ends.
  current_state().store(new State);
  parents->mutex.unlock();
}

// Deliberately never destroyed: a notification thread may still post while the process exits,
// and nothing may join the dispatcher thread at exit (it may be running a task forever).
std::atomic<State*>& current_state() {
  static std::atomic<State*>* instance = [] {
    auto* created = new std::atomic<State*>(new State);
    ::pthread_atfork(lock_before_fork, unlock_in_parent, reset_in_child);
    return created;
  }();
  return *instance;
}

// Built at load time, so the fork handlers exist before any thread can be using the queue.
[[maybe_unused]] std::atomic<State*>& state_at_load = current_state();

bool start_thread(State* state);

// When a task ended the thread (a forced unwind), hands what is queued to a new thread, or
// marks the thread gone so that the next post starts one: no task is stranded.
struct ServingGuard {
  State* state;
  ~ServingGuard() {
    if (current_state().load() != state) return;  // abandoned by a fork in a task: nobody cares
    bool restart = false;
    {
      std::lock_guard lock(state->mutex);
      restart = !state->tasks.empty();
      state->serving = restart;
    }
    if (restart && !start_thread(state)) {
      std::lock_guard lock(state->mutex);
      state->serving = false;
    }
  }
};

void* serve(void* argument) {
  State* const state = static_cast<State*>(argument);
  ServingGuard guard{state};
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(state->mutex);
      state->wake.wait(lock, [state] { return !state->tasks.empty(); });
      task = std::move(state->tasks.front());
      state->tasks.pop_front();
    }
    run_swallowing_errors(task);
    task = nullptr;  // destroyed before the next wait, outside the lock: it may run any code
    // A task that forked and returned in the child: this thread is the child's only one and
    // its queue was abandoned; ending the thread ends the child as it would on a notification
    // thread of its own (SIGEV_THREAD).
    if (current_state().load() != state) return nullptr;
  }
}

bool start_thread(State* state) { return start_detached_thread(serve, state); }

}  // namespace

void post_to_dispatcher(std::function<void()> task) {
  State* const state = current_state().load();
  bool start = false;
  {
    std::lock_guard lock(state->mutex);
    state->tasks.push_back(std::move(task));
    start = !std::exchange(state->serving, true);
  }
  if (!start) {
    state->wake.notify_one();
    return;
  }
  if (start_thread(state)) return;
  std::lock_guard lock(state->mutex);
  state->serving = false;  // the task stays queued for the next post's attempt
}

bool start_detached_thread(void* (*entry)(void*), void* argument) noexcept {
  pthread_attr_t attributes;
  if (::pthread_attr_init(&attributes) != 0) return false;
  ::pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  // Signals go to the application's threads, never to ours: the new thread inherits this mask
  // (glibc's SIGEV_THREAD threads block everything in the same way).
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_t thread{};
  const int failure = ::pthread_create(&thread, &attributes, entry, argument);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ::pthread_attr_destroy(&attributes);
  return failure == 0;
}

// libsupc++ hands a catch of abi::__forced_unwind& no object (it is a foreign exception), a
// reference UBSan reports as bound to null; nothing reads it, so that check is off here.
__attribute__((no_sanitize_undefined)) void run_swallowing_errors(
    const std::function<void()>& task) {
  try {
    task();
  } catch (abi::__forced_unwind&) {
    // pthread_exit (CPython ends threads that way at interpreter exit) must pass, or glibc
    // aborts ("exception not rethrown").
    throw;
  } catch (...) {
    // A notification has nobody to report to; callbacks handle their own errors.
  }
}

}  // namespace ipcxx::detail

// The one way a method waits: run pending signal handlers, re-read the object's state, release
// the GIL, wait, re-take the GIL. Every C++ failure of the wait is caught before the GIL is
// taken back and is translated afterwards, with the GIL held.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <cxxabi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "common/python_compat.hpp"

namespace ipcxx::python {

/// What a wait without the GIL produced: its result, or the exception it threw.
template <typename Result>
struct Waited {
  std::optional<Result> result;
  std::exception_ptr failure;
};

/// Whether this thread must not re-take the GIL: the interpreter is shutting down and this is
/// not the thread that shuts it down (normally the main thread, whose thread id is the
/// process id; a __del__ that waits during finalization runs there and must go on). CPython
/// would end such a thread inside PyEval_RestoreThread by unwinding our frames, whose
/// destructors would touch Python objects without the GIL.
inline bool must_not_retake_gil() {
  return interpreter_finalizing() && ::syscall(SYS_gettid) != ::getpid();
}

/// Parks a thread for good; the process exits around it (CPython 3.14 parks such threads the
/// same way).
[[noreturn]] inline void park_thread_for_shutdown() {
  for (;;) ::pause();
}

/// Re-takes the GIL. If CPython ends this thread instead (the interpreter began shutting down
/// after must_not_retake_gil() said no: it calls pthread_exit inside PyEval_RestoreThread),
/// the forced unwind stops here and the thread parks: unwinding further would run our
/// destructors, which release Python objects, without the GIL. The handler never finishes,
/// so the unwind is not swallowed (glibc aborts only when a catch of it ends). libsupc++
/// binds the abi::__forced_unwind& to no object, which UBSan reports; nothing reads it.
__attribute__((no_sanitize_undefined)) inline void retake_gil(PyThreadState* saved) {
  try {
    PyEval_RestoreThread(saved);
  } catch (abi::__forced_unwind&) {
    park_thread_for_shutdown();
  }
}

/// Runs `wait()` with the GIL released and returns what it produced (never throws what the
/// wait threw). Touches no Python object while the GIL is released.
template <typename Wait>
auto run_without_gil(Wait&& wait) -> Waited<std::invoke_result_t<Wait&>> {
  Waited<std::invoke_result_t<Wait&>> waited;
  PyThreadState* saved = PyEval_SaveThread();
  try {
    waited.result.emplace(wait());
  } catch (...) {
    // std::bad_alloc included; nothing the wait throws may escape with the GIL released.
    waited.failure = std::current_exception();
  }
  if (must_not_retake_gil()) park_thread_for_shutdown();
  retake_gil(saved);
  return waited;
}

/// The blocking path of a method: runs pending signal handlers (Ctrl-C just before the call
/// wins over a wait nothing may end), then `pin()`, which re-reads the object's state after
/// that Python code and returns what the wait needs (a handle, pinned) or std::nullopt with a
/// Python exception set, then `wait(pinned)` without the GIL. Returns std::nullopt with a
/// Python exception set when a handler raised or pin() failed.
template <typename Pin, typename Wait>
auto blocking_call(Pin&& pin, Wait&& wait) {
  using Pinned = typename std::invoke_result_t<Pin&>::value_type;
  using Result = std::invoke_result_t<Wait&, Pinned&>;
  std::optional<Waited<Result>> outcome;
  if (PyErr_CheckSignals() < 0) return outcome;
  std::optional<Pinned> pinned = pin();
  if (!pinned) return outcome;
  outcome.emplace(run_without_gil([&] { return wait(*pinned); }));
  return outcome;
}

}  // namespace ipcxx::python

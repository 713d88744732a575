// The GIL on a long-lived thread that Python did not create (the core's dispatcher thread,
// posix::CallbackThread::dispatcher), through one thread state per such thread, made on its
// first use and never deleted, so no notification creates or destroys a thread state: a fork
// in the middle of either left CPython's thread-state lock held in the child (issue 16, 7).
#pragma once

#include <atomic>
#include <mutex>

#include "common/python_compat.hpp"

namespace ipcxx::python {

namespace permanent_thread_state_detail {

// Held while a thread makes its thread state, and by a forking thread from its before-fork
// hook until fork() returned: CPython 3.11 and 3.12 fork without CPython's own lock on the
// thread-state list, so a thread state made at the moment of the fork would leave that lock
// held in the child. Never held by a thread that holds (or waits for) the GIL, except the
// forking thread, which holds nothing the maker waits for.
inline std::mutex& making() {
  static std::mutex* mutex = new std::mutex;  // never destroyed: a thread may make one at exit
  return *mutex;
}

// How deep this thread holds `making` for a fork (two threads of a free-threaded build may
// both register the hooks, so they can run twice).
inline thread_local int held_for_fork = 0;

inline PyObject* before_fork(PyObject*, PyObject*) {
  if (held_for_fork++ > 0) Py_RETURN_NONE;
  if (!making().try_lock()) {
    // A thread is making its state right now (a few microseconds, without the GIL).
    PyThreadState* saved = PyEval_SaveThread();
    making().lock();
    PyEval_RestoreThread(saved);
  }
  Py_RETURN_NONE;
}

inline PyObject* after_fork(PyObject*, PyObject*) {
  if (held_for_fork > 0 && --held_for_fork == 0) making().unlock();
  Py_RETURN_NONE;
}

inline PyMethodDef before_fork_def = {"_ipcxx_before_fork", before_fork, METH_NOARGS, nullptr};
inline PyMethodDef after_fork_def = {"_ipcxx_after_fork", after_fork, METH_NOARGS, nullptr};

}  // namespace permanent_thread_state_detail

/// With the GIL held, in the main interpreter: registers (once per process) the fork hooks
/// that keep a fork from landing while a thread makes its permanent thread state. Returns
/// false with a Python exception set when os.register_at_fork fails.
inline bool register_permanent_thread_state_fork_hooks() {
  namespace detail = permanent_thread_state_detail;
  // Two threads of a free-threaded build may both register: harmless (the hooks count).
  static std::atomic<bool> registered{false};  // a fork child inherits the hooks and the flag
  if (registered.load()) return true;
  PyObject* os = PyImport_ImportModule("os");
  PyObject* register_at_fork = os ? PyObject_GetAttrString(os, "register_at_fork") : nullptr;
  Py_XDECREF(os);
  if (!register_at_fork) return false;
  PyObject* before = PyCFunction_New(&detail::before_fork_def, nullptr);
  PyObject* after = before ? PyCFunction_New(&detail::after_fork_def, nullptr) : nullptr;
  PyObject* keywords = after ? Py_BuildValue("{sOsOsO}", "before", before, "after_in_parent", after,
                                             "after_in_child", after)
                             : nullptr;
  PyObject* empty = keywords ? PyTuple_New(0) : nullptr;
  PyObject* result = empty ? PyObject_Call(register_at_fork, empty, keywords) : nullptr;
  Py_XDECREF(empty);
  Py_XDECREF(keywords);
  Py_XDECREF(after);
  Py_XDECREF(before);
  Py_DECREF(register_at_fork);
  if (!result) return false;
  Py_DECREF(result);
  registered.store(true);
  return true;
}

/// On a thread Python did not create and that lives as long as the process: takes the GIL
/// (attaches, on the free-threaded build) with this thread's thread state of the main
/// interpreter, made on first use (PyThreadState_New needs no GIL) and never deleted; it is
/// bound to the thread, so PyGILState_Ensure/Release here reuse it too. Returns false without
/// touching Python once the interpreter is finalizing (or when no state can be made). If
/// finalization starts while it waits, CPython ends the thread (a forced unwind) or parks it
/// (3.14): the caller must hold nothing that needs the GIL to clean up. Pair a true result
/// with PyEval_SaveThread().
inline bool take_gil_with_permanent_thread_state() {
  static thread_local PyThreadState* state = nullptr;
  if (interpreter_finalizing()) return false;
  if (!state) {
    std::lock_guard lock(permanent_thread_state_detail::making());
    if (interpreter_finalizing()) return false;
    state = PyThreadState_New(PyInterpreterState_Main());
    if (!state) return false;
  }
  PyEval_RestoreThread(state);
  return true;
}

}  // namespace ipcxx::python

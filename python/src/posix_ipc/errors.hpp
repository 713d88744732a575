// posix_ipc's exception classes and its one errno -> exception translation table.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <exception>

#include "common/prepared_error.hpp"

namespace ipcxx::python::posix_errors {

/// A module instance's exception classes, created by its exec step (module state).
struct Classes {
  PyObject* error = nullptr;
  PyObject* signal_error = nullptr;
  PyObject* permissions_error = nullptr;
  PyObject* existential_error = nullptr;
  PyObject* busy_error = nullptr;
  // The BusyErrors of the hot paths, prepared at import.
  PreparedError semaphore_busy;
  PreparedError queue_empty;
  PreparedError queue_full;
};

/// The classes of the module instance that `owner` belongs to: the module itself or an
/// instance of one of its types (posix_ipc/state.hpp).
Classes& classes(PyObject* owner);

/// Which call failed: the same errno means different things for different calls.
enum class Operation {
  semaphore_open,
  semaphore_acquire,
  semaphore_release,
  semaphore_value,
  semaphore_close,
  semaphore_unlink,
  memory_open,
  memory_open_truncating,
  memory_resize,
  memory_size,
  memory_close,
  memory_unlink,
  memory_map,  // the buffer export (an ipcxx extension)
  queue_open,
  queue_send,
  queue_receive,
  queue_attributes,
  queue_set_blocking,
  queue_close,
  queue_notify,
  queue_unlink,
};

/// Sets the Python exception upstream raises for `errno_value` from `operation`; returns null.
PyObject* raise_errno(PyObject* owner, Operation operation, int errno_value);
/// EINTR during a wait: runs pending signal handlers; an exception they raise wins (DC-16),
/// otherwise SignalError. Returns null.
PyObject* raise_interrupted(PyObject* owner);
/// The exception `failure` (from a wait without the GIL) translated like
/// raise_current_exception(). Returns null.
PyObject* raise_exception(PyObject* owner, Operation operation, const std::exception_ptr& failure);
/// Translates the C++ exception currently being handled (ipcxx::Error via the table for
/// `operation`, invalid arguments as ValueError, bad_alloc as MemoryError). Returns null.
PyObject* raise_current_exception(PyObject* owner, Operation operation);

/// Runs `body` and translates any C++ exception; true when it completed.
template <typename Body>
bool guarded(PyObject* owner, Operation operation, Body&& body) {
  try {
    body();
    return true;
  } catch (...) {
    raise_current_exception(owner, operation);
    return false;
  }
}

}  // namespace ipcxx::python::posix_errors

// posix_ipc's exception classes and its one errno -> exception translation table.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <exception>

#include "prepared_error.hpp"

namespace ipcxx::python::posix_errors {

/// The module's exception classes, created once at import.
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

/// The classes of the imported module (set by the module's exec step).
Classes& classes();

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
PyObject* raise_errno(Operation operation, int errno_value);
/// EINTR during a wait: runs pending signal handlers; an exception they raise wins (DC-16),
/// otherwise SignalError. Returns null.
PyObject* raise_interrupted();
/// Translates the C++ exception currently being handled (ipcxx::Error via the table for
/// `operation`, invalid arguments as ValueError, bad_alloc as MemoryError). Returns null.
PyObject* raise_current_exception(Operation operation);

/// Runs `body` and translates any C++ exception; true when it completed.
template <typename Body>
bool guarded(Operation operation, Body&& body) {
  try {
    body();
    return true;
  } catch (...) {
    raise_current_exception(operation);
    return false;
  }
}

}  // namespace ipcxx::python::posix_errors

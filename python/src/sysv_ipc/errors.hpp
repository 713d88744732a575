// sysv_ipc's exception classes and its errno -> exception translation table.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/types.h>

#include <exception>

#include "common/prepared_error.hpp"

namespace ipcxx::python::sysv_errors {

/// A module instance's exception classes, created by its exec step (module state).
struct Classes {
  PyObject* error = nullptr;
  PyObject* internal_error = nullptr;
  PyObject* permissions_error = nullptr;
  PyObject* existential_error = nullptr;
  PyObject* busy_error = nullptr;
  PyObject* not_attached_error = nullptr;
  // The BusyErrors of the hot paths, prepared at import.
  PreparedError semaphore_busy;
  PreparedError queue_full;
  PreparedError no_message;
};
/// The classes of the module instance `owner` belongs to (the module or an instance of one of
/// its types: sysv_ipc/state.hpp).
Classes& classes(PyObject* owner);

/// Which call failed; each has its row of the table in docs/errors.md.
enum class Operation {
  semaphore,  // one table for semget, semop and every semctl
  memory_get,
  memory_attach,
  memory_detach,
  memory_stat,
  memory_set,
  memory_remove,
  queue_get,
  queue_send,
  queue_receive,
  queue_stat,
  queue_set,
  queue_remove,
};

/// What some messages name: the object's key and id, and the requested mode.
struct Subject {
  long key = 0;
  int id = -1;
  int mode = 0;
};

/// Sets the exception upstream raises for `errno_value` from `operation`; returns null.
PyObject* raise_errno(PyObject* owner, Operation operation, int errno_value,
                      const Subject& subject);
/// EINTR: pending signal handlers run first and their exception wins (DC-15); otherwise
/// Error("Signaled while waiting"). Returns null.
PyObject* raise_interrupted(PyObject* owner);
/// Translates the C++ exception being handled; returns null.
PyObject* raise_current_exception(PyObject* owner, Operation operation, const Subject& subject);
/// The exception `failure` (from a wait without the GIL) translated like
/// raise_current_exception(). Returns null.
PyObject* raise_exception(PyObject* owner, Operation operation, const Subject& subject,
                          const std::exception_ptr& failure);

/// Runs `body`, translating any C++ exception; true when it completed.
template <typename Body>
bool guarded(PyObject* owner, Operation operation, const Subject& subject, Body&& body) {
  try {
    body();
    return true;
  } catch (...) {
    raise_current_exception(owner, operation, subject);
    return false;
  }
}

}  // namespace ipcxx::python::sysv_errors

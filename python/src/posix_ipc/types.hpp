// The three posix_ipc classes as CPython heap-type specs (README, "Layout", says why).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::posix_types {

PyType_Spec& semaphore_spec();
PyType_Spec& shared_memory_spec();
PyType_Spec& message_queue_spec();

/// The shared setter of attributes upstream declares as read-only members.
int reject_write(PyObject* self, PyObject* value, void* closure);
/// "0" followed by the octal digits of `mode`, as upstream prints modes in repr().
PyObject* octal_mode(long mode);
/// The value stored for `mode`: upstream keeps a C int in a long, so -1 reads 4294967295.
long stored_mode(int mode);

}  // namespace ipcxx::python::posix_types

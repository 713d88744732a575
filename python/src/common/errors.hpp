// Error translation shared by both modules' tables: errno as OSError, and the C++ exceptions
// the core throws for arguments it rejects.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// OSError(errno, strerror(errno)); CPython picks the subclass (EPERM -> PermissionError).
/// Returns null.
PyObject* raise_os_error(int errno_value);
/// OSError(errno, strerror(errno), filename): e.g. FileNotFoundError naming the object.
PyObject* raise_os_error(int errno_value, const char* filename);

/// Translates the C++ exception being handled, other than ipcxx::Error: invalid_argument,
/// out_of_range and length_error become ValueError(what()), bad_alloc MemoryError("Out of
/// memory"), anything else RuntimeError. Call only inside a catch block. Returns null.
PyObject* raise_standard_exception();

}  // namespace ipcxx::python

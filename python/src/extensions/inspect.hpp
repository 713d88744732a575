// ipcxx._ipcxx.inspect_segment (extensions/inspect.cpp).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::ipcxx_state {

/// ipcxx._ipcxx.inspect_segment(name_or_fd): ipcxx::inspect_segment() as a dict.
PyObject* inspect_segment(PyObject* module, PyObject* argument);

}  // namespace ipcxx::python::ipcxx_state

// ipcxx.RobustLock and ipcxx.unlink_robust_lock (extensions/robust_lock.cpp).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::ipcxx_state {

/// ipcxx.RobustLock.
PyType_Spec& robust_lock_spec();

/// ipcxx.unlink_robust_lock(name).
PyObject* unlink_robust_lock(PyObject* module, PyObject* name);

}  // namespace ipcxx::python::ipcxx_state

// ipcxx._ipcxx's per-module state and the RobustLock type spec.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::ipcxx_state {

struct State {
  PyObject* owner_died_error = nullptr;
  PyObject* not_recoverable_error = nullptr;
  PyObject* channel_error = nullptr;      // ipcxx.ChannelError (a ValueError)
  PyObject* channel_view_type = nullptr;  // what Channel.reserve() and peek() return
  PyObject* release_name = nullptr;       // "release", interned: a view's exit calls it
};

/// The definition of the _ipcxx module (extensions/module.cpp).
extern PyModuleDef module_definition;

/// The state of the module instance `owner` belongs to: the module, or an instance of one of
/// its types (subclasses included).
State& of(PyObject* owner);

/// ipcxx.RobustLock (extensions/robust_lock.cpp).
PyType_Spec& robust_lock_spec();

/// ipcxx.unlink_robust_lock(name) (extensions/robust_lock.cpp).
PyObject* unlink_robust_lock(PyObject* module, PyObject* name);

}  // namespace ipcxx::python::ipcxx_state

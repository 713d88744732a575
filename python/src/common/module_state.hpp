// Per-module state of both extension modules: each module instance (a re-import, a second
// instance, a sub-interpreter) has its own exception classes, types and defaults, found from
// the module object or from any instance of the module's types. No mutable process globals.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/python_compat.hpp"

namespace ipcxx::python {

/// The state of the module made from `def`, reached from `owner`: the module itself, or an
/// instance (of a subclass, too) of one of its types. Null only for a foreign object.
template <typename State>
State* module_state(PyObject* owner, PyModuleDef* def) {
  PyObject* module = PyModule_Check(owner) ? owner : module_by_def(Py_TYPE(owner), def);
  return module ? static_cast<State*>(PyModule_GetState(module)) : nullptr;
}

}  // namespace ipcxx::python

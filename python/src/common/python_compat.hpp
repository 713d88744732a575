// The few CPython calls whose spelling differs across the supported versions (3.10 to 3.13).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// The module created from `def` that defines `type` or one of its bases (null when none).
/// Never sets an exception. PyType_GetModuleByDef where it exists (3.11+), else the same walk.
inline PyObject* module_by_def(PyTypeObject* type, PyModuleDef* def) {
  PyObject* mro = type->tp_mro;
  if (!mro) return nullptr;
  const Py_ssize_t count = PyTuple_GET_SIZE(mro);
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* base = PyTuple_GET_ITEM(mro, i);
    if (!PyType_HasFeature(reinterpret_cast<PyTypeObject*>(base), Py_TPFLAGS_HEAPTYPE)) continue;
    PyObject* module = reinterpret_cast<PyHeapTypeObject*>(base)->ht_module;
    if (module && PyModule_GetDef(module) == def) return module;
  }
  return nullptr;
}

/// Whether the main interpreter is shutting down (threads that re-take the GIL then exit).
inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

}  // namespace ipcxx::python

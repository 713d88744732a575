// An exception whose arguments tuple is built once at import, for the outcomes that hot paths
// report often (busy, empty, full): raising it allocates no message string and no tuple.
// One per module instance, in its state.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

class PreparedError {
 public:
  /// Builds (message,) for `type`; returns false with a Python error set on failure.
  bool prepare(PyObject* type, const char* message) {
    type_ = type;
    args_ = Py_BuildValue("(s)", message);
    return args_ != nullptr;
  }
  /// Sets the exception: type(*args), so e.args == (message,). Returns null.
  PyObject* raise() const {
    PyErr_SetObject(type_, args_);
    return nullptr;
  }
  /// For the module state's m_traverse.
  int traverse(visitproc visit, void* arg) {
    Py_VISIT(args_);
    return 0;
  }
  /// For the module state's m_free.
  void clear() { Py_CLEAR(args_); }

 private:
  PyObject* type_ = nullptr;  // borrowed: the module state holds the class
  PyObject* args_ = nullptr;
};

}  // namespace ipcxx::python

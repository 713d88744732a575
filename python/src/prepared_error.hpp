// An exception whose arguments tuple is built once at import, for the outcomes that hot paths
// report often (busy, empty, full): raising it allocates no message string and no tuple.
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

 private:
  PyObject* type_ = nullptr;
  PyObject* args_ = nullptr;  // kept for the life of the process, like the type
};

}  // namespace ipcxx::python

// Arguments of ipcxx's own classes (RobustLock, Channel): timeouts and the name of unlink_*().
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <chrono>
#include <cmath>
#include <string>

#include "common/conversions.hpp"

namespace ipcxx::python {

/// None: forever; a non-negative int or float: that many seconds (values beyond any deadline
/// mean forever). A bool or a non-number raises TypeError; NaN or a negative ValueError.
inline bool parse_wait_timeout(PyObject* object, Timeout& timeout) {
  timeout = Timeout{};
  if (object == Py_None) return true;
  if (!PyNumber_Check(object) || PyBool_Check(object)) {
    PyErr_Format(PyExc_TypeError, "timeout must be None or a number, not %.50s",
                 Py_TYPE(object)->tp_name);
    return false;
  }
  const double seconds = PyFloat_AsDouble(object);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (std::isnan(seconds) || seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "timeout must be None or a non-negative number");
    return false;
  }
  if (seconds >= 9.0e9) return true;  // beyond any deadline: forever
  timeout.forever = false;
  timeout.duration = std::chrono::nanoseconds(static_cast<long long>(seconds * 1e9));
  return true;
}

/// Parses the (timeout=None) arguments of a METH_FASTCALL | METH_KEYWORDS method with
/// CPython's own messages, then the timeout itself (parse_wait_timeout).
inline bool parse_only_timeout(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                               Timeout& timeout) {
  PyObject* timeout_object = Py_None;
  if (!kwnames && nargs <= 1) {
    if (nargs == 1) timeout_object = args[0];
  } else {
    static const char* keywords[] = {"timeout", nullptr};
    PackedArguments packed(args, nargs, kwnames);
    if (!packed.ok()) return false;
    if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|O",
                                     const_cast<char**>(keywords), &timeout_object))
      return false;
  }
  return parse_wait_timeout(timeout_object, timeout);
}

/// The mode argument: permission bits only (a negative int would set setuid/setgid/sticky
/// bits once cast to mode_t). ValueError otherwise.
inline bool check_mode(int mode) {
  if (mode >= 0 && mode <= 07777) return true;
  PyErr_SetString(PyExc_ValueError, "mode must be between 0 and 0o7777");
  return false;
}

/// The name argument of unlink_robust_lock() / unlink_channel(): str or bytes (TypeError
/// otherwise), encoded like os.fsencode.
inline bool parse_unlink_name(PyObject* object, std::string& name) {
  if (!PyUnicode_Check(object) && !PyBytes_Check(object)) {
    PyErr_Format(PyExc_TypeError, "name must be str or bytes, not %.50s", Py_TYPE(object)->tp_name);
    return false;
  }
  return convert_required_name(object, &name) != 0;
}

}  // namespace ipcxx::python

// Error translation shared by both modules.
#include "common/errors.hpp"

#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace ipcxx::python {

PyObject* raise_os_error(int errno_value) {
  PyObject* error =
      PyObject_CallFunction(PyExc_OSError, "is", errno_value, std::strerror(errno_value));
  if (error) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_DECREF(error);
  }
  return nullptr;
}

PyObject* raise_os_error(int errno_value, const char* filename) {
  PyObject* name = PyUnicode_DecodeFSDefault(filename);
  if (!name) return nullptr;
  PyObject* error =
      PyObject_CallFunction(PyExc_OSError, "isO", errno_value, std::strerror(errno_value), name);
  Py_DECREF(name);
  if (error) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_DECREF(error);
  }
  return nullptr;
}

PyObject* raise_standard_exception() {
  try {
    throw;
  } catch (const std::invalid_argument& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
  } catch (const std::out_of_range& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
  } catch (const std::length_error& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, "Out of memory");
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
  return nullptr;
}

void set_on_raised(const char* name, PyObject* value) {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject* raised = PyErr_GetRaisedException();
  if (!raised) return;
  if (PyObject_SetAttrString(raised, name, value) < 0) PyErr_Clear();
  PyErr_SetRaisedException(raised);
#else
  PyObject *type = nullptr, *raised = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &raised, &traceback);
  PyErr_NormalizeException(&type, &raised, &traceback);
  if (raised && PyObject_SetAttrString(raised, name, value) < 0) PyErr_Clear();
  PyErr_Restore(type, raised, traceback);
#endif
}

#if PY_VERSION_HEX >= 0x030C0000
HeldException::HeldException() : raised_(PyErr_GetRaisedException()) {}
HeldException::~HeldException() { Py_XDECREF(raised_); }
void HeldException::restore() {
  if (raised_) PyErr_SetRaisedException(std::exchange(raised_, nullptr));
}
#else
HeldException::HeldException() { PyErr_Fetch(&type_, &value_, &traceback_); }
HeldException::~HeldException() {
  Py_XDECREF(type_);
  Py_XDECREF(value_);
  Py_XDECREF(traceback_);
}
void HeldException::restore() {
  if (type_)
    PyErr_Restore(std::exchange(type_, nullptr), std::exchange(value_, nullptr),
                  std::exchange(traceback_, nullptr));
}
#endif

}  // namespace ipcxx::python

// Error translation shared by both modules.
#include "common/errors.hpp"

#include <cstring>
#include <new>
#include <stdexcept>

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

}  // namespace ipcxx::python

// Helpers shared by the three posix_ipc classes.
#include <cstdio>

#include "posix_ipc/types.hpp"

namespace ipcxx::python::posix_types {

int reject_write(PyObject*, PyObject*, void*) {
  PyErr_SetString(PyExc_AttributeError, "readonly attribute");
  return -1;
}

PyObject* octal_mode(long mode) {
  char text[32];
  std::snprintf(text, sizeof text, "0%lo", static_cast<unsigned long>(mode));
  return PyUnicode_FromString(text);
}

long stored_mode(int mode) { return static_cast<long>(static_cast<unsigned>(mode)); }

}  // namespace ipcxx::python::posix_types

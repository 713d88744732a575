// Helpers shared by the three sysv_ipc classes.
#include <climits>

#include "common/conversions.hpp"
#include "sysv_ipc/types.hpp"

namespace ipcxx::python::sysv_types {

int reject_id_write(PyObject*, PyObject*, void*) {
  PyErr_SetString(PyExc_AttributeError, "readonly attribute");
  return -1;
}

int truth_for_setter(PyObject* value, const char* name) {
  if (!value) {
    PyErr_Format(PyExc_AttributeError, "cannot delete attribute '%s'", name);
    return -1;
  }
  return PyObject_IsTrue(value);
}

int owner_id_for_setter(PyObject* value, const char* type_message, unsigned& out) {
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
    return -1;
  }
  long number = 0;
  if (!long_from_int(value, number, type_message)) return -1;
  // uid/gid -1 means "unchanged" to the kernel and larger values wrap modulo 2**32 (DC-13).
  if (number < 0 || number > static_cast<long>(UINT_MAX) - 1) {
    PyErr_SetString(PyExc_OverflowError, "user and group ids must be in 0..4294967294");
    return -1;
  }
  out = static_cast<unsigned>(number);
  return 0;
}

int mode_for_setter(PyObject* value, const char* type_message, int& out) {
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'mode'");
    return -1;
  }
  long number = 0;
  if (!long_from_int(value, number, type_message)) return -1;
  if (number < INT_MIN || number > INT_MAX) {
    PyErr_SetString(PyExc_OverflowError, "signed integer is greater than maximum");
    return -1;
  }
  out = static_cast<int>(number);
  return 0;
}

PyObject* key_id_text(long key, int id) { return PyUnicode_FromFormat("Key=%ld, id=%d", key, id); }

PyObject* class_key_text(const char* class_name, long key) {
  return PyUnicode_FromFormat("sysv_ipc.%s(%ld)", class_name, key);
}

}  // namespace ipcxx::python::sysv_types

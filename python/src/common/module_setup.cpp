// Exception classes, heap types, functions and constants for the extension modules.
#include "common/module_setup.hpp"

#include <string>

namespace ipcxx::python {

bool add_value(PyObject* module, const char* name, PyObject* value) {
  if (!value) return false;
  const int status = PyModule_AddObjectRef(module, name, value);
  Py_DECREF(value);
  return status == 0;
}

PyObject* add_exception(PyObject* module, const char* public_module, const char* name,
                        PyObject* base) {
  const std::string qualified = std::string(public_module) + "." + name;
  PyObject* type = PyErr_NewException(qualified.c_str(), base, nullptr);
  if (!type || PyModule_AddObjectRef(module, name, type) < 0) {
    Py_XDECREF(type);
    return nullptr;
  }
  return type;
}

PyObject* add_type(PyObject* module, const char* name, PyType_Spec& spec) {
  PyObject* type = PyType_FromModuleAndSpec(module, &spec, nullptr);
  if (!type || PyModule_AddObjectRef(module, name, type) < 0) {
    Py_XDECREF(type);
    return nullptr;
  }
  return type;
}

bool add_functions(PyObject* module, const char* public_module, PyMethodDef* functions) {
  PyObject* module_name = PyUnicode_FromString(public_module);
  if (!module_name) return false;
  bool ok = true;
  for (PyMethodDef* def = functions; ok && def->ml_name; ++def)
    ok = add_value(module, def->ml_name, PyCMethod_New(def, module, module_name, nullptr));
  Py_DECREF(module_name);
  return ok;
}

}  // namespace ipcxx::python

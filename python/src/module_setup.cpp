// Exception classes, heap types and functions for the extension modules.
#include "module_setup.hpp"

#include <string>

namespace nb = nanobind;

namespace ipcxx::python {

PyObject* add_exception(nb::module_& module, const char* public_module, const char* name,
                        PyObject* base) {
  const std::string qualified = std::string(public_module) + "." + name;
  PyObject* type = PyErr_NewException(qualified.c_str(), base, nullptr);
  if (!type) throw nb::python_error();
  module.attr(name) = nb::steal(type);
  return type;
}

PyObject* add_type(nb::module_& module, const char* name, PyType_Spec& spec) {
  PyObject* type = PyType_FromModuleAndSpec(module.ptr(), &spec, nullptr);
  if (!type) throw nb::python_error();
  module.attr(name) = nb::steal(type);
  return type;
}

void add_functions(nb::module_& module, const char* public_module, PyMethodDef* functions) {
  nb::object module_name = nb::str(public_module);
  for (PyMethodDef* def = functions; def->ml_name; ++def) {
    PyObject* function = PyCMethod_New(def, nullptr, module_name.ptr(), nullptr);
    if (!function) throw nb::python_error();
    module.attr(def->ml_name) = nb::steal(function);
  }
}

}  // namespace ipcxx::python

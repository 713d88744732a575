// Building blocks of both extension modules' exec step: exception classes, heap types,
// module-level functions and constants, all reporting the public module name (not the
// _extension's). Each returns false (or null) with a Python exception set on failure.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// Creates `public_module.name` deriving from `base`, adds it to `module` and returns a new
/// reference for the module state.
PyObject* add_exception(PyObject* module, const char* public_module, const char* name,
                        PyObject* base);

/// Creates the heap type described by `spec` (its name says the public module), owned by
/// `module` (PyType_GetModuleByDef finds it), and adds it as `name`. Returns a new reference.
PyObject* add_type(PyObject* module, const char* name, PyType_Spec& spec);

/// Adds each function of `functions` (ending with a null entry) bound to `module` (their
/// `self`), with __module__ set to `public_module`.
bool add_functions(PyObject* module, const char* public_module, PyMethodDef* functions);

/// Adds `value` (a new reference, stolen; null fails) as `name`.
bool add_value(PyObject* module, const char* name, PyObject* value);
inline bool add_int(PyObject* module, const char* name, long value) {
  return add_value(module, name, PyLong_FromLong(value));
}
inline bool add_bool(PyObject* module, const char* name, bool value) {
  return add_value(module, name, PyBool_FromLong(value));
}

}  // namespace ipcxx::python

// Building blocks of both extension modules' exec step: exception classes, heap types and
// module-level functions, all reporting the public module name (not the _extension's).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <nanobind/nanobind.h>

namespace ipcxx::python {

/// Creates `public_module.name` deriving from `base` and adds it to `module`. The module keeps
/// the class alive for the life of the process; the returned pointer is borrowed.
PyObject* add_exception(nanobind::module_& module, const char* public_module, const char* name,
                        PyObject* base);

/// Creates the heap type described by `spec` (its name says the public module) and adds it
/// to `module` as `name`. Returns a borrowed pointer.
PyObject* add_type(nanobind::module_& module, const char* name, PyType_Spec& spec);

/// Adds each function of `functions` (ending with a null entry), with __module__ set to
/// `public_module`.
void add_functions(nanobind::module_& module, const char* public_module, PyMethodDef* functions);

}  // namespace ipcxx::python

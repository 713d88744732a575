// sysv_ipc's per-module state: exception classes and the SharedMemory type that attach() makes.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sysv_ipc/errors.hpp"

namespace ipcxx::python::sysv_state {

struct State {
  sysv_errors::Classes classes;
  PyObject* shared_memory_type = nullptr;  // cleared by m_clear: it refers back to the module

  // The module's scaffold (common/module_scaffold.hpp).
  bool exec(PyObject* module);
  int traverse(visitproc visit, void* arg);
  void clear_cycles();
  void release();
};

/// The definition of the _sysv_ipc module (sysv_ipc/module.cpp).
extern PyModuleDef module_definition;

/// The state of the module instance `owner` belongs to: the module, or an instance of one of
/// its types (subclasses included). `owner` must be one of those.
State& of(PyObject* owner);

}  // namespace ipcxx::python::sysv_state

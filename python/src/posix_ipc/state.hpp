// posix_ipc's per-module state: exception classes and the queue defaults read at import.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "posix_ipc/errors.hpp"

namespace ipcxx::python::posix_state {

struct State {
  posix_errors::Classes classes;
  long queue_messages_max = 10;
  long queue_message_size_max = 8192;

  // The module's scaffold (common/module_scaffold.hpp); nothing here refers back to the module.
  bool exec(PyObject* module);
  int traverse(visitproc visit, void* arg);
  void clear_cycles() {}
  void release();
};

/// The definition of the _posix_ipc module (posix_ipc/module.cpp).
extern PyModuleDef module_definition;

/// The state of the module instance `owner` belongs to: the module, or an instance of one of
/// its types (subclasses included). `owner` must be one of those.
State& of(PyObject* owner);

}  // namespace ipcxx::python::posix_state

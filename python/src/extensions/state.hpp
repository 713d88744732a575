// ipcxx._ipcxx's per-module state: its exception classes and what the Channel's views need.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::ipcxx_state {

struct State {
  PyObject* owner_died_error = nullptr;
  PyObject* not_recoverable_error = nullptr;
  PyObject* channel_error = nullptr;      // ipcxx.ChannelError (a ValueError)
  PyObject* end_of_stream = nullptr;      // ipcxx.EndOfStream (an EOFError)
  PyObject* channel_view_type = nullptr;  // what Channel.reserve() and peek() return
  PyTypeObject* channel_type = nullptr;   // ipcxx.Channel (the queue's native half checks it)
  PyObject* release_name = nullptr;       // "release", interned: a view's exit calls it

  // The module's scaffold (common/module_scaffold.hpp); nothing here refers back to the module.
  bool exec(PyObject* module);
  int traverse(visitproc visit, void* arg);
  void clear_cycles() {}
  void release();
};

/// The definition of the _ipcxx module (extensions/module.cpp).
extern PyModuleDef module_definition;

/// The state of the module instance `owner` belongs to: the module, or an instance of one of
/// its types (subclasses included).
State& of(PyObject* owner);

}  // namespace ipcxx::python::ipcxx_state

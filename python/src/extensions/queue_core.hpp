// ipcxx._QueueCore: the native half of ipcxx.Queue (extensions/queue_core.cpp).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::ipcxx_state {

/// ipcxx._QueueCore, the base class of ipcxx.queues' QueueBase.
PyType_Spec& queue_core_spec();

}  // namespace ipcxx::python::ipcxx_state

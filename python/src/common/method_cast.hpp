// PyMethodDef stores every C entry point as a PyCFunction; this casts one without warnings.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// `Function` (METH_FASTCALL or METH_KEYWORDS signature) as the PyCFunction PyMethodDef wants.
template <auto Function>
PyCFunction as_method() {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Function));
}

}  // namespace ipcxx::python

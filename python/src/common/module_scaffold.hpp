// The scaffold every extension module shares, written once: multi-phase initialisation with
// per-module state, the state's GC hooks, and the slots each module declares.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// The PyModuleDef machinery of a module whose per-module state is `State` (zero-filled by
/// CPython, one per module instance: a re-import, a second instance, a sub-interpreter). The
/// module's own code is `State`'s four members:
///   bool exec(PyObject* module)                fills the module and the state (false: error set)
///   int traverse(visitproc visit, void* arg)   visits every reference the state holds
///   void clear_cycles()                        drops what refers back to the module (m_clear)
///   void release()                             drops every reference (m_free, after m_clear)
/// References that do not lead back to the module stay until m_free, so a method that a
/// finalizer runs during teardown still finds the module's exception classes.
template <typename State>
class ModuleScaffold {
 public:
  /// The definition of module `name` (the extension's own name, e.g. "_posix_ipc").
  static PyModuleDef definition(const char* name, const char* doc) {
    return {PyModuleDef_HEAD_INIT, name, doc, sizeof(State), nullptr, slots, traverse, clear, free};
  }

 private:
  static State* state(PyObject* module) { return static_cast<State*>(PyModule_GetState(module)); }

  static int exec(PyObject* module) {
    State* module_state = state(module);
    return module_state && module_state->exec(module) ? 0 : -1;
  }
  static int traverse(PyObject* module, visitproc visit, void* arg) {
    State* module_state = state(module);
    return module_state ? module_state->traverse(visit, arg) : 0;
  }
  static int clear(PyObject* module) {
    if (State* module_state = state(module)) module_state->clear_cycles();
    return 0;
  }
  static void free(void* module) {
    State* module_state = state(static_cast<PyObject*>(module));
    if (!module_state) return;
    module_state->clear_cycles();
    module_state->release();
  }

  static inline PyModuleDef_Slot slots[] = {
      {Py_mod_exec, reinterpret_cast<void*>(exec)},
#if PY_VERSION_HEX >= 0x030C0000
      // Nothing process-wide refers to Python objects (docs/reliability.md, "Module state").
      {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
      // Every object the modules define is audited for use without the GIL (object locks,
      // counted pins, Field<>: docs/free-threading.md), so a free-threaded interpreter need
      // not re-enable the GIL on import.
      {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
      {0, nullptr}};
};

}  // namespace ipcxx::python

// The ipcxx._ipcxx extension module: ipcxx's own native classes (RobustLock) and exceptions,
// with per-module state like posix_ipc and sysv_ipc (multi-phase init, sub-interpreters).
#include "common/module_setup.hpp"
#include "common/module_state.hpp"
#include "extensions/channel.hpp"
#include "extensions/robust_lock.hpp"

namespace ipcxx::python {

namespace {

PyMethodDef module_functions[] = {
    {"unlink_robust_lock", ipcxx_state::unlink_robust_lock, METH_O,
     "unlink_robust_lock(name, /)\n--\n\nRemove the robust lock `name` from the system "
     "(FileNotFoundError when there is none). Processes that have it open keep using it."},
    {"unlink_channel", ipcxx_state::unlink_channel, METH_O,
     "unlink_channel(name, /)\n--\n\nRemove the channel `name` from the system "
     "(FileNotFoundError when there is none). Processes that have it open keep using it."},
    {nullptr, nullptr, 0, nullptr}};

int exec_module(PyObject* module) {
  ipcxx_state::State& state = ipcxx_state::of(module);
  state.owner_died_error = add_exception(module, "ipcxx", "OwnerDiedError", PyExc_RuntimeError);
  if (!state.owner_died_error) return -1;
  state.not_recoverable_error =
      add_exception(module, "ipcxx", "NotRecoverableError", PyExc_RuntimeError);
  if (!state.not_recoverable_error) return -1;
  if (!add_functions(module, "ipcxx", module_functions)) return -1;
  PyObject* type = add_type(module, "RobustLock", ipcxx_state::robust_lock_spec());
  if (!type) return -1;
  Py_DECREF(type);  // the module keeps it
  state.channel_error = add_exception(module, "ipcxx", "ChannelError", PyExc_ValueError);
  if (!state.channel_error) return -1;
  type = add_type(module, "Channel", ipcxx_state::channel_spec());
  if (!type) return -1;
  Py_DECREF(type);
  state.channel_view_type = add_type(module, "ChannelView", ipcxx_state::channel_view_spec());
  if (!state.channel_view_type) return -1;
  state.release_name = PyUnicode_InternFromString("release");
  return state.release_name ? 0 : -1;
}

int traverse_module(PyObject* module, visitproc visit, void* arg) {
  auto* state = static_cast<ipcxx_state::State*>(PyModule_GetState(module));
  if (!state) return 0;
  Py_VISIT(state->owner_died_error);
  Py_VISIT(state->not_recoverable_error);
  Py_VISIT(state->channel_error);
  Py_VISIT(state->channel_view_type);
  Py_VISIT(state->release_name);
  return 0;
}

// No m_clear, as in posix_ipc: the classes stay until m_free for finalizers run in teardown.
void free_module(void* module) {
  auto* state = static_cast<ipcxx_state::State*>(PyModule_GetState(static_cast<PyObject*>(module)));
  if (!state) return;
  Py_CLEAR(state->release_name);
  Py_CLEAR(state->channel_view_type);
  Py_CLEAR(state->channel_error);
  Py_CLEAR(state->not_recoverable_error);
  Py_CLEAR(state->owner_died_error);
}

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(exec_module)},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    // Every object this module defines is audited for use without the GIL (object locks,
    // counted pins, Field<>: docs/free-threading.md), so a free-threaded interpreter need not
    // re-enable the GIL on import.
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, nullptr}};

}  // namespace

namespace ipcxx_state {

PyModuleDef module_definition = {PyModuleDef_HEAD_INIT, "_ipcxx", "ipcxx native extras",
                                 sizeof(State),         nullptr,  module_slots,
                                 traverse_module,       nullptr,  free_module};

State& of(PyObject* owner) { return *module_state<State>(owner, &module_definition); }

}  // namespace ipcxx_state

}  // namespace ipcxx::python

PyMODINIT_FUNC PyInit__ipcxx() {
  return PyModuleDef_Init(&ipcxx::python::ipcxx_state::module_definition);
}

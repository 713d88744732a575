// The ipcxx._ipcxx extension module: ipcxx's own native classes (RobustLock) and exceptions,
// with per-module state like posix_ipc and sysv_ipc (multi-phase init, sub-interpreters).
#include "common/module_scaffold.hpp"
#include "common/module_setup.hpp"
#include "common/module_state.hpp"
#include "extensions/channel.hpp"
#include "extensions/inspect.hpp"
#include "extensions/queue_core.hpp"
#include "extensions/robust_lock.hpp"
#include "extensions/state.hpp"

namespace ipcxx::python {

namespace {

PyMethodDef module_functions[] = {
    {"unlink_robust_lock", ipcxx_state::unlink_robust_lock, METH_O,
     "unlink_robust_lock(name, /)\n--\n\nRemove the robust lock `name` from the system "
     "(FileNotFoundError when there is none). Processes that have it open keep using it."},
    {"unlink_channel", ipcxx_state::unlink_channel, METH_O,
     "unlink_channel(name, /)\n--\n\nRemove the channel `name` from the system "
     "(FileNotFoundError when there is none). Processes that have it open keep using it."},
    {"inspect_segment", ipcxx_state::inspect_segment, METH_O,
     "inspect_segment(name_or_fd, /)\n--\n\nRead the POSIX shared memory segment `name` (or the "
     "one open on file descriptor `fd`) without joining, locking or writing it, and say whether "
     "it is an ipcxx Channel or RobustLock: a dict with kind ('channel', 'lock' or None), "
     "problem (why there are no details, else None), size, channel and lock (dicts of the "
     "details, or None). OSError when it cannot be opened or read."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

namespace ipcxx_state {

bool State::exec(PyObject* module) {
  owner_died_error = add_exception(module, "ipcxx", "OwnerDiedError", PyExc_RuntimeError);
  if (!owner_died_error) return false;
  not_recoverable_error = add_exception(module, "ipcxx", "NotRecoverableError", PyExc_RuntimeError);
  if (!not_recoverable_error) return false;
  if (!add_functions(module, "ipcxx", module_functions)) return false;
  PyObject* type = add_type(module, "RobustLock", robust_lock_spec());
  if (!type) return false;
  Py_DECREF(type);  // the module keeps it
  channel_error = add_exception(module, "ipcxx", "ChannelError", PyExc_ValueError);
  if (!channel_error) return false;
  end_of_stream = add_exception(module, "ipcxx", "EndOfStream", PyExc_EOFError);
  if (!end_of_stream) return false;
  type = add_type(module, "Channel", channel_spec());
  if (!type) return false;
  channel_type = reinterpret_cast<PyTypeObject*>(type);  // this reference is the state's
  type = add_type(module, "_QueueCore", queue_core_spec());
  if (!type) return false;
  Py_DECREF(type);
  channel_view_type = add_type(module, "ChannelView", channel_view_spec());
  if (!channel_view_type) return false;
  release_name = PyUnicode_InternFromString("release");
  return release_name != nullptr;
}

int State::traverse(visitproc visit, void* arg) {
  Py_VISIT(owner_died_error);
  Py_VISIT(not_recoverable_error);
  Py_VISIT(channel_error);
  Py_VISIT(end_of_stream);
  Py_VISIT(channel_view_type);
  Py_VISIT(channel_type);
  Py_VISIT(release_name);
  return 0;
}

void State::release() {
  Py_CLEAR(release_name);
  Py_CLEAR(channel_view_type);
  Py_CLEAR(channel_type);
  Py_CLEAR(end_of_stream);
  Py_CLEAR(channel_error);
  Py_CLEAR(not_recoverable_error);
  Py_CLEAR(owner_died_error);
}

PyModuleDef module_definition = ModuleScaffold<State>::definition("_ipcxx", "ipcxx native extras");

State& of(PyObject* owner) { return *module_state<State>(owner, &module_definition); }

}  // namespace ipcxx_state

}  // namespace ipcxx::python

PyMODINIT_FUNC PyInit__ipcxx() {
  return PyModuleDef_Init(&ipcxx::python::ipcxx_state::module_definition);
}

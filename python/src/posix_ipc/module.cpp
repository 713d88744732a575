// The posix_ipc extension module: exceptions, constants computed at import, unlink functions
// and the three classes. Types are CPython heap types (PyType_Spec) so that argument errors,
// read-only attributes, pickling and subclassing behave exactly like upstream's C module;
// nanobind provides the module (multi-phase init) and object handling.
#include <fcntl.h>
#include <signal.h>

#include "common/conversions.hpp"
#include "common/module_scaffold.hpp"
#include "common/module_setup.hpp"
#include "common/module_state.hpp"
#include "ipcxx/posix/limits.hpp"
#include "ipcxx/posix/message_queue.hpp"
#include "ipcxx/posix/semaphore.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "posix_ipc/errors.hpp"
#include "posix_ipc/state.hpp"
#include "posix_ipc/types.hpp"

namespace ipcxx::python {

namespace {

using posix_errors::Operation;

template <typename Unlink>
PyObject* unlink_by_name(PyObject* module, PyObject* name_object, Operation operation,
                         Unlink unlink) {
  std::string name;
  // str is encoded like the constructors do, and bytes are accepted too (DC-18).
  if (!PyUnicode_Check(name_object) && !PyBytes_Check(name_object)) {
    PyErr_Format(PyExc_TypeError, "argument 1 must be str, not %.50s",
                 Py_TYPE(name_object)->tp_name);
    return nullptr;
  }
  if (!convert_required_name(name_object, &name)) return nullptr;
  if (!posix_errors::guarded(module, operation, [&] { unlink(name); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* unlink_semaphore(PyObject* module, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(module, name, Operation::semaphore_unlink,
                        [](const std::string& text) { posix::Semaphore::unlink(text); });
}

PyObject* unlink_shared_memory(PyObject* module, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(module, name, Operation::memory_unlink,
                        [](const std::string& text) { posix::SharedMemory::unlink(text); });
}

PyObject* unlink_message_queue(PyObject* module, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(module, name, Operation::queue_unlink,
                        [](const std::string& text) { posix::MessageQueue::unlink(text); });
}

PyMethodDef module_functions[] = {
    {"unlink_semaphore", unlink_semaphore, METH_VARARGS,
     "unlink_semaphore(name, /)\n--\n\nRemove the named semaphore."},
    {"unlink_shared_memory", unlink_shared_memory, METH_VARARGS,
     "unlink_shared_memory(name, /)\n--\n\nRemove the named shared memory segment."},
    {"unlink_message_queue", unlink_message_queue, METH_VARARGS,
     "unlink_message_queue(name, /)\n--\n\nRemove the named message queue."},
    {nullptr, nullptr, 0, nullptr}};

bool add_exceptions(PyObject* module, posix_errors::Classes& classes) {
  auto add = [&](PyObject*& slot, const char* name, PyObject* base) {
    slot = add_exception(module, "posix_ipc", name, base);
    return slot != nullptr;
  };
  return add(classes.error, "Error", PyExc_Exception) &&
         add(classes.signal_error, "SignalError", classes.error) &&
         add(classes.permissions_error, "PermissionsError", classes.error) &&
         add(classes.existential_error, "ExistentialError", classes.error) &&
         add(classes.busy_error, "BusyError", classes.error) &&
         classes.semaphore_busy.prepare(classes.busy_error, "Semaphore is busy") &&
         classes.queue_empty.prepare(classes.busy_error, "The queue is empty") &&
         classes.queue_full.prepare(classes.busy_error, "The queue is full");
}

bool add_constants(PyObject* module, posix_state::State& state) {
  state.queue_messages_max = posix::queue_messages_max_default();
  state.queue_message_size_max = posix::queue_message_size_max_default();
  // Read from the running system at import, not frozen at build time (DC-21).
  return add_int(module, "O_CREAT", O_CREAT) && add_int(module, "O_EXCL", O_EXCL) &&
         add_int(module, "O_CREX", O_CREAT | O_EXCL) && add_int(module, "O_TRUNC", O_TRUNC) &&
         add_int(module, "O_RDONLY", O_RDONLY) && add_int(module, "O_WRONLY", O_WRONLY) &&
         add_int(module, "O_RDWR", O_RDWR) && add_int(module, "O_NONBLOCK", O_NONBLOCK) &&
         add_int(module, "PAGE_SIZE", posix::page_size()) &&
         add_int(module, "SEMAPHORE_VALUE_MAX", posix::semaphore_value_max()) &&
         add_bool(module, "SEMAPHORE_TIMEOUT_SUPPORTED", true) &&
         add_bool(module, "SEMAPHORE_VALUE_SUPPORTED", true) &&
         add_bool(module, "MESSAGE_QUEUES_SUPPORTED", true) &&
         add_int(module, "QUEUE_MESSAGES_MAX_DEFAULT", state.queue_messages_max) &&
         add_int(module, "QUEUE_MESSAGE_SIZE_MAX_DEFAULT", state.queue_message_size_max) &&
         add_int(module, "QUEUE_PRIORITY_MAX", posix::queue_priority_max()) &&
         add_int(module, "USER_SIGNAL_MIN", SIGRTMIN) &&
         add_int(module, "USER_SIGNAL_MAX", SIGRTMAX);
}

bool add_type_only(PyObject* module, const char* name, PyType_Spec& spec) {
  PyObject* type = add_type(module, name, spec);
  Py_XDECREF(type);  // the module keeps it; the state needs none of the posix types
  return type != nullptr;
}

}  // namespace

namespace posix_state {

bool State::exec(PyObject* module) {
  return add_exceptions(module, classes) && add_constants(module, *this) &&
         add_functions(module, "posix_ipc", module_functions) &&
         add_type_only(module, "Semaphore", posix_types::semaphore_spec()) &&
         add_type_only(module, "SharedMemory", posix_types::shared_memory_spec()) &&
         add_type_only(module, "MessageQueue", posix_types::message_queue_spec());
}

int State::traverse(visitproc visit, void* arg) {
  Py_VISIT(classes.error);
  Py_VISIT(classes.signal_error);
  Py_VISIT(classes.permissions_error);
  Py_VISIT(classes.existential_error);
  Py_VISIT(classes.busy_error);
  if (int status = classes.semaphore_busy.traverse(visit, arg)) return status;
  if (int status = classes.queue_empty.traverse(visit, arg)) return status;
  return classes.queue_full.traverse(visit, arg);
}

void State::release() {
  classes.semaphore_busy.clear();
  classes.queue_empty.clear();
  classes.queue_full.clear();
  Py_CLEAR(classes.busy_error);
  Py_CLEAR(classes.existential_error);
  Py_CLEAR(classes.permissions_error);
  Py_CLEAR(classes.signal_error);
  Py_CLEAR(classes.error);
}

PyModuleDef module_definition = ModuleScaffold<State>::definition("_posix_ipc", "POSIX IPC module");

State& of(PyObject* owner) { return *module_state<State>(owner, &module_definition); }

}  // namespace posix_state

}  // namespace ipcxx::python

// Multi-phase initialisation with per-module state. nanobind builds the extension; its own
// NB_MODULE would declare sub-interpreters unsupported and own the module state.
PyMODINIT_FUNC PyInit__posix_ipc() {
  return PyModuleDef_Init(&ipcxx::python::posix_state::module_definition);
}

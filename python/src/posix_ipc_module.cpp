// The posix_ipc extension module: exceptions, constants computed at import, unlink functions
// and the three classes. Types are CPython heap types (PyType_Spec) so that argument errors,
// read-only attributes, pickling and subclassing behave exactly like upstream's C module;
// nanobind provides the module (multi-phase init) and object handling.
#include <fcntl.h>
#include <nanobind/nanobind.h>
#include <signal.h>

#include "conversions.hpp"
#include "errors_posix.hpp"
#include "ipcxx/posix/limits.hpp"
#include "ipcxx/posix/message_queue.hpp"
#include "ipcxx/posix/semaphore.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "module_setup.hpp"
#include "posix_types.hpp"

namespace nb = nanobind;

namespace ipcxx::python {

namespace {

using posix_errors::Operation;

template <typename Unlink>
PyObject* unlink_by_name(PyObject* name_object, Operation operation, Unlink unlink) {
  std::string name;
  // str is encoded like the constructors do, and bytes are accepted too (DC-18).
  if (!PyUnicode_Check(name_object) && !PyBytes_Check(name_object)) {
    PyErr_Format(PyExc_TypeError, "argument 1 must be str, not %.50s",
                 Py_TYPE(name_object)->tp_name);
    return nullptr;
  }
  if (!convert_required_name(name_object, &name)) return nullptr;
  if (!posix_errors::guarded(operation, [&] { unlink(name); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* unlink_semaphore(PyObject*, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(name, Operation::semaphore_unlink,
                        [](const std::string& text) { posix::Semaphore::unlink(text); });
}

PyObject* unlink_shared_memory(PyObject*, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(name, Operation::memory_unlink,
                        [](const std::string& text) { posix::SharedMemory::unlink(text); });
}

PyObject* unlink_message_queue(PyObject*, PyObject* args) {
  PyObject* name = nullptr;
  if (!PyArg_ParseTuple(args, "O", &name)) return nullptr;
  return unlink_by_name(name, Operation::queue_unlink,
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

PyObject* new_exception(nb::module_& module, const char* name, PyObject* base) {
  return add_exception(module, "posix_ipc", name, base);
}

void add_exceptions(nb::module_& module) {
  posix_errors::Classes& classes = posix_errors::classes();
  classes.error = new_exception(module, "Error", PyExc_Exception);
  classes.signal_error = new_exception(module, "SignalError", classes.error);
  classes.permissions_error = new_exception(module, "PermissionsError", classes.error);
  classes.existential_error = new_exception(module, "ExistentialError", classes.error);
  classes.busy_error = new_exception(module, "BusyError", classes.error);
  if (!classes.semaphore_busy.prepare(classes.busy_error, "Semaphore is busy") ||
      !classes.queue_empty.prepare(classes.busy_error, "The queue is empty") ||
      !classes.queue_full.prepare(classes.busy_error, "The queue is full"))
    throw nb::python_error();
}

void add_constants(nb::module_& module) {
  module.attr("O_CREAT") = O_CREAT;
  module.attr("O_EXCL") = O_EXCL;
  module.attr("O_CREX") = O_CREAT | O_EXCL;
  module.attr("O_TRUNC") = O_TRUNC;
  module.attr("O_RDONLY") = O_RDONLY;
  module.attr("O_WRONLY") = O_WRONLY;
  module.attr("O_RDWR") = O_RDWR;
  module.attr("O_NONBLOCK") = O_NONBLOCK;
  // Read from the running system at import, not frozen at build time (DC-21).
  module.attr("PAGE_SIZE") = posix::page_size();
  module.attr("SEMAPHORE_VALUE_MAX") = posix::semaphore_value_max();
  module.attr("SEMAPHORE_TIMEOUT_SUPPORTED") = true;
  module.attr("SEMAPHORE_VALUE_SUPPORTED") = true;
  module.attr("MESSAGE_QUEUES_SUPPORTED") = true;
  posix_types::Defaults& defaults = posix_types::defaults();
  defaults.queue_messages_max = posix::queue_messages_max_default();
  defaults.queue_message_size_max = posix::queue_message_size_max_default();
  module.attr("QUEUE_MESSAGES_MAX_DEFAULT") = defaults.queue_messages_max;
  module.attr("QUEUE_MESSAGE_SIZE_MAX_DEFAULT") = defaults.queue_message_size_max;
  module.attr("QUEUE_PRIORITY_MAX") = posix::queue_priority_max();
  module.attr("USER_SIGNAL_MIN") = static_cast<int>(SIGRTMIN);
  module.attr("USER_SIGNAL_MAX") = static_cast<int>(SIGRTMAX);
}

}  // namespace

}  // namespace ipcxx::python

NB_MODULE(_posix_ipc, module) {
  using namespace ipcxx::python;
  module.doc() = "POSIX IPC module";
  add_exceptions(module);
  add_constants(module);
  add_functions(module, "posix_ipc", module_functions);
  add_type(module, "Semaphore", posix_types::semaphore_spec());
  add_type(module, "SharedMemory", posix_types::shared_memory_spec());
  add_type(module, "MessageQueue", posix_types::message_queue_spec());
}

// The sysv_ipc extension module: exceptions, constants computed at import, the module
// functions and the three classes (CPython heap types, as in posix_ipc_module.cpp).
#include <nanobind/nanobind.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "conversions.hpp"
#include "errors_sysv.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "ipcxx/sysv/message_queue.hpp"
#include "ipcxx/sysv/semaphore.hpp"
#include "ipcxx/sysv/shared_memory.hpp"
#include "method_cast.hpp"
#include "module_setup.hpp"
#include "sysv_types.hpp"

namespace nb = nanobind;

namespace ipcxx::python {

namespace {

using sysv_errors::guarded;
using sysv_errors::Operation;

PyObject* attach(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"id", "address", "flags", nullptr};
  int id = 0;
  PyObject* address = Py_None;
  int flags = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|Oi", const_cast<char**>(keywords), &id,
                                   &address, &flags))
    return nullptr;
  return sysv_types::attach_by_id(id, address, flags);
}

PyObject* ftok(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"path", "id", "silence_warning", nullptr};
  const char* path = nullptr;
  int id = 0;
  int silence_warning = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "si|i", const_cast<char**>(keywords), &path, &id,
                                   &silence_warning))
    return nullptr;
  // A warnings filter that turns this into an error stops here, before ftok (DC-8).
  if (!silence_warning &&
      PyErr_WarnEx(PyExc_Warning, "Use of ftok() is not recommended; see sysv_ipc documentation",
                   1) < 0)
    return nullptr;
  key_t key = 0;
  try {
    key = sysv::ftok(path, id);
  } catch (const Error& error) {
    errno = error.errno_value();
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  return PyLong_FromLong(key);
}

template <Operation Kind, typename Remove>
PyObject* remove_by_id(PyObject* args, Remove remove) {
  int id = 0;
  if (!PyArg_ParseTuple(args, "i", &id)) return nullptr;
  if (!guarded(Kind, sysv_errors::Subject{0, id, 0}, [&] { remove(id); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* remove_semaphore(PyObject*, PyObject* args) {
  return remove_by_id<Operation::semaphore>(args, [](int id) { sysv::Semaphore::remove(id); });
}
PyObject* remove_shared_memory(PyObject*, PyObject* args) {
  return remove_by_id<Operation::memory_remove>(args,
                                                [](int id) { sysv::SharedMemory::remove(id); });
}
PyObject* remove_message_queue(PyObject*, PyObject* args) {
  return remove_by_id<Operation::queue_remove>(args,
                                               [](int id) { sysv::MessageQueue::remove(id); });
}

PyMethodDef module_functions[] = {
    {"attach", as_method<attach>(), METH_VARARGS | METH_KEYWORDS,
     "attach(id, address=None, flags=0)\n--\n\nA new SharedMemory object attached to the "
     "existing segment id."},
    {"ftok", as_method<ftok>(), METH_VARARGS | METH_KEYWORDS,
     "ftok(path, id, silence_warning=False)\n--\n\nA key derived from path and id (warns "
     "unless silence_warning)."},
    {"remove_semaphore", remove_semaphore, METH_VARARGS,
     "remove_semaphore(id, /)\n--\n\nDestroy the semaphore with this id."},
    {"remove_shared_memory", remove_shared_memory, METH_VARARGS,
     "remove_shared_memory(id, /)\n--\n\nMark the segment with this id for destruction."},
    {"remove_message_queue", remove_message_queue, METH_VARARGS,
     "remove_message_queue(id, /)\n--\n\nDestroy the queue with this id."},
    {nullptr, nullptr, 0, nullptr}};

PyObject* new_exception(nb::module_& module, const char* name, PyObject* base) {
  return add_exception(module, "sysv_ipc", name, base);
}

void add_exceptions(nb::module_& module) {
  sysv_errors::Classes& classes = sysv_errors::classes();
  classes.error = new_exception(module, "Error", PyExc_Exception);
  classes.internal_error = new_exception(module, "InternalError", classes.error);
  classes.permissions_error = new_exception(module, "PermissionsError", classes.error);
  classes.existential_error = new_exception(module, "ExistentialError", classes.error);
  classes.busy_error = new_exception(module, "BusyError", classes.error);
  classes.not_attached_error = new_exception(module, "NotAttachedError", classes.error);
  if (!classes.semaphore_busy.prepare(classes.busy_error, "The semaphore is busy") ||
      !classes.queue_full.prepare(classes.busy_error,
                                  "The queue is full, or a system-wide limit on the number of "
                                  "queue messages has been reached") ||
      !classes.no_message.prepare(classes.busy_error,
                                  "No available messages of the specified type"))
    throw nb::python_error();
}

void add_constants(nb::module_& module) {
  module.attr("IPC_CREAT") = IPC_CREAT;
  module.attr("IPC_EXCL") = IPC_EXCL;
  module.attr("IPC_CREX") = IPC_CREAT | IPC_EXCL;
  module.attr("IPC_PRIVATE") = static_cast<long>(IPC_PRIVATE);
  module.attr("KEY_MIN") = LONG_MIN;
  module.attr("KEY_MAX") = LONG_MAX;
  // Read from the running system at import (sysv DC-40).
  module.attr("PAGE_SIZE") = ::sysconf(_SC_PAGESIZE);
  module.attr("SEMAPHORE_VALUE_MAX") = 32767;
  module.attr("SEMAPHORE_TIMEOUT_SUPPORTED") = true;
  module.attr("SHM_RDONLY") = SHM_RDONLY;
  module.attr("SHM_RND") = SHM_RND;
  module.attr("SHM_REMAP") = SHM_REMAP;
  module.attr("SHM_HUGETLB") = SHM_HUGETLB;
  module.attr("SHM_NORESERVE") = SHM_NORESERVE;
}

}  // namespace

}  // namespace ipcxx::python

NB_MODULE(_sysv_ipc, module) {
  using namespace ipcxx::python;
  module.doc() = "SYSV IPC module";
  add_exceptions(module);
  add_constants(module);
  add_functions(module, "sysv_ipc", module_functions);
  add_type(module, "Semaphore", sysv_types::semaphore_spec());
  sysv_types::shared_memory_type() =
      add_type(module, "SharedMemory", sysv_types::shared_memory_spec());
  add_type(module, "MessageQueue", sysv_types::message_queue_spec());
}

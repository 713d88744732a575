// The sysv_ipc extension module: exceptions, constants computed at import, the module
// functions and the three classes (CPython heap types, as in posix_ipc/module.cpp).
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "common/conversions.hpp"
#include "common/method_cast.hpp"
#include "common/module_scaffold.hpp"
#include "common/module_setup.hpp"
#include "common/module_state.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "ipcxx/sysv/message_queue.hpp"
#include "ipcxx/sysv/semaphore.hpp"
#include "ipcxx/sysv/shared_memory.hpp"
#include "sysv_ipc/errors.hpp"
#include "sysv_ipc/state.hpp"
#include "sysv_ipc/types.hpp"

namespace ipcxx::python {

namespace {

using sysv_errors::guarded;
using sysv_errors::Operation;

PyObject* attach(PyObject* module, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"id", "address", "flags", nullptr};
  int id = 0;
  PyObject* address = Py_None;
  int flags = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|Oi", const_cast<char**>(keywords), &id,
                                   &address, &flags))
    return nullptr;
  return sysv_types::attach_by_id(module, id, address, flags);
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
PyObject* remove_by_id(PyObject* module, PyObject* args, Remove remove) {
  int id = 0;
  if (!PyArg_ParseTuple(args, "i", &id)) return nullptr;
  if (!guarded(module, Kind, sysv_errors::Subject{0, id, 0}, [&] { remove(id); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* remove_semaphore(PyObject* module, PyObject* args) {
  return remove_by_id<Operation::semaphore>(module, args,
                                            [](int id) { sysv::Semaphore::remove(id); });
}
PyObject* remove_shared_memory(PyObject* module, PyObject* args) {
  return remove_by_id<Operation::memory_remove>(module, args,
                                                [](int id) { sysv::SharedMemory::remove(id); });
}
PyObject* remove_message_queue(PyObject* module, PyObject* args) {
  return remove_by_id<Operation::queue_remove>(module, args,
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

bool add_exceptions(PyObject* module, sysv_errors::Classes& classes) {
  auto add = [&](PyObject*& slot, const char* name, PyObject* base) {
    slot = add_exception(module, "sysv_ipc", name, base);
    return slot != nullptr;
  };
  return add(classes.error, "Error", PyExc_Exception) &&
         add(classes.internal_error, "InternalError", classes.error) &&
         add(classes.permissions_error, "PermissionsError", classes.error) &&
         add(classes.existential_error, "ExistentialError", classes.error) &&
         add(classes.busy_error, "BusyError", classes.error) &&
         add(classes.not_attached_error, "NotAttachedError", classes.error) &&
         classes.semaphore_busy.prepare(classes.busy_error, "The semaphore is busy") &&
         classes.queue_full.prepare(classes.busy_error,
                                    "The queue is full, or a system-wide limit on the number of "
                                    "queue messages has been reached") &&
         classes.no_message.prepare(classes.busy_error,
                                    "No available messages of the specified type");
}

bool add_constants(PyObject* module) {
  // PAGE_SIZE is read from the running system at import (sysv DC-40).
  return add_int(module, "IPC_CREAT", IPC_CREAT) && add_int(module, "IPC_EXCL", IPC_EXCL) &&
         add_int(module, "IPC_CREX", IPC_CREAT | IPC_EXCL) &&
         add_int(module, "IPC_PRIVATE", static_cast<long>(IPC_PRIVATE)) &&
         add_int(module, "KEY_MIN", LONG_MIN) && add_int(module, "KEY_MAX", LONG_MAX) &&
         add_int(module, "PAGE_SIZE", ::sysconf(_SC_PAGESIZE)) &&
         add_int(module, "SEMAPHORE_VALUE_MAX", 32767) &&
         add_int(module, "IPC_NOWAIT", IPC_NOWAIT) && add_int(module, "SEM_UNDO", SEM_UNDO) &&
         add_bool(module, "SEMAPHORE_TIMEOUT_SUPPORTED", true) &&
         add_int(module, "SHM_RDONLY", SHM_RDONLY) && add_int(module, "SHM_RND", SHM_RND) &&
         add_int(module, "SHM_REMAP", SHM_REMAP) && add_int(module, "SHM_HUGETLB", SHM_HUGETLB) &&
         add_int(module, "SHM_NORESERVE", SHM_NORESERVE);
}

bool add_types(PyObject* module, sysv_state::State& state) {
  PyObject* semaphore = add_type(module, "Semaphore", sysv_types::semaphore_spec());
  Py_XDECREF(semaphore);
  if (!semaphore) return false;
  PyObject* semaphore_set = add_type(module, "SemaphoreSet", sysv_types::semaphore_set_spec());
  Py_XDECREF(semaphore_set);
  if (!semaphore_set) return false;
  state.shared_memory_type = add_type(module, "SharedMemory", sysv_types::shared_memory_spec());
  if (!state.shared_memory_type) return false;
  PyObject* queue = add_type(module, "MessageQueue", sysv_types::message_queue_spec());
  Py_XDECREF(queue);
  return queue != nullptr;
}

}  // namespace

namespace sysv_state {

bool State::exec(PyObject* module) {
  return add_exceptions(module, classes) && add_constants(module) &&
         add_functions(module, "sysv_ipc", module_functions) && add_types(module, *this);
}

int State::traverse(visitproc visit, void* arg) {
  Py_VISIT(classes.error);
  Py_VISIT(classes.internal_error);
  Py_VISIT(classes.permissions_error);
  Py_VISIT(classes.existential_error);
  Py_VISIT(classes.busy_error);
  Py_VISIT(classes.not_attached_error);
  Py_VISIT(shared_memory_type);
  if (int status = classes.semaphore_busy.traverse(visit, arg)) return status;
  if (int status = classes.queue_full.traverse(visit, arg)) return status;
  return classes.no_message.traverse(visit, arg);
}

// Only the type refers back to the module (a cycle the collector must be able to break).
void State::clear_cycles() { Py_CLEAR(shared_memory_type); }

void State::release() {
  classes.semaphore_busy.clear();
  classes.queue_full.clear();
  classes.no_message.clear();
  Py_CLEAR(classes.not_attached_error);
  Py_CLEAR(classes.busy_error);
  Py_CLEAR(classes.existential_error);
  Py_CLEAR(classes.permissions_error);
  Py_CLEAR(classes.internal_error);
  Py_CLEAR(classes.error);
}

PyModuleDef module_definition = ModuleScaffold<State>::definition("_sysv_ipc", "SYSV IPC module");

State& of(PyObject* owner) { return *module_state<State>(owner, &module_definition); }

}  // namespace sysv_state

}  // namespace ipcxx::python

// Multi-phase initialisation with per-module state (posix_ipc/module.cpp says why not
// nanobind's NB_MODULE).
PyMODINIT_FUNC PyInit__sysv_ipc() {
  return PyModuleDef_Init(&ipcxx::python::sysv_state::module_definition);
}

// The three sysv_ipc classes as CPython heap-type specs, and helpers they share.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python::sysv_types {

PyType_Spec& semaphore_spec();
PyType_Spec& semaphore_set_spec();
PyType_Spec& shared_memory_spec();
PyType_Spec& message_queue_spec();

/// A new SharedMemory object (of `module`'s type) for segment `id`, attached at `address`
/// with `flags`; key -1.
PyObject* attach_by_id(PyObject* module, int id, PyObject* address, int flags);

/// Setter of the `id` attribute: AttributeError("readonly attribute"), as upstream's member.
int reject_id_write(PyObject* self, PyObject* value, void* closure);
/// Reads a truthiness for block/undo-style attributes; a failing __bool__ propagates (DC-14);
/// deleting raises AttributeError (upstream crashes: DC-9). Returns -1 on error.
int truth_for_setter(PyObject* value, const char* name);
/// Converts an owner id for a uid/gid setter: an int in 0..2**32-2 (DC-13). -1 on error.
int owner_id_for_setter(PyObject* value, const char* type_message, unsigned& out);
/// Converts a mode for a setter: an int within C int (DC-13). -1 on error.
int mode_for_setter(PyObject* value, const char* type_message, int& out);

/// "Key=<key>, id=<id>" and "sysv_ipc.<Class>(<key>)".
PyObject* key_id_text(long key, int id);
PyObject* class_key_text(const char* class_name, long key);

}  // namespace ipcxx::python::sysv_types

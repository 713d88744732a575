// sysv_ipc.SemaphoreSet (an ipcxx extension): argument conversion, GIL handling and errors
// around sysv::SemaphoreSet.
#include "ipcxx/sysv/semaphore_set.hpp"

#include <sys/ipc.h>
#include <sys/sem.h>

#include <climits>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include "common/blocking_call.hpp"
#include "common/conversions.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "sysv_ipc/errors.hpp"
#include "sysv_ipc/types.hpp"

namespace ipcxx::python::sysv_types {

namespace {

using sysv_errors::Operation;

constexpr const char* kBadTimeout = "The timeout must be None or a non-negative number";
constexpr const char* kBadOperation =
    "each operation must be a tuple (index, delta) or (index, delta, flags)";
constexpr const char* kBadIndex = "semaphore index out of range";
constexpr const char* kRange = "The semaphore's value must remain between 0 and SEMVMX";

// As for sysv.Semaphore, the kernel validates the id of every call, so the fields are Field<>
// only to be no data race without the GIL. `id` and `count` must agree (a core value built
// from one set's id and another's count would check indices against the wrong size), so
// core() reads them, and __init__ writes them, under `lock` (docs/free-threading.md).
struct SemaphoreSetObject {
  PyObject_HEAD
  Field<long> key;
  Field<int> id;            // -1 until __init__ succeeds
  Field<Py_ssize_t> count;  // the kernel's member count; 0 until __init__ succeeds
  mutable ObjectLock lock;
};

SemaphoreSetObject* as_set(PyObject* self) { return reinterpret_cast<SemaphoreSetObject*>(self); }

sysv::SemaphoreSet core(const SemaphoreSetObject* set) {
  ObjectLockGuard guard(set->lock);
  return sysv::SemaphoreSet::from_id(set->id, static_cast<std::size_t>(set->count),
                                     static_cast<key_t>(set->key));
}

sysv_errors::Subject subject_of(const SemaphoreSetObject* set) { return {set->key, set->id, 0}; }

// The core's std::out_of_range is a bad member index: IndexError, as for a list. Everything
// else goes through sysv_ipc's table (the Semaphore row). Returns null.
PyObject* raise_current(PyObject* self) {
  try {
    throw;
  } catch (const std::out_of_range& error) {
    PyErr_SetString(PyExc_IndexError, error.what());
    return nullptr;
  } catch (...) {
    return sysv_errors::raise_current_exception(self, Operation::semaphore,
                                                subject_of(as_set(self)));
  }
}

template <typename Body>
bool guarded(PyObject* self, Body&& body) {
  try {
    body();
    return true;
  } catch (...) {
    raise_current(self);
    return false;
  }
}

PyObject* raise_busy(PyObject* self) {
  return sysv_errors::raise_errno(self, Operation::semaphore, EAGAIN, subject_of(as_set(self)));
}

PyObject* set_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  SemaphoreSetObject* set = as_set(self);
  new (&set->key) Field<long>();
  new (&set->id) Field<int>(-1);
  new (&set->count) Field<Py_ssize_t>();
  new (&set->lock) ObjectLock();
  return self;
}

void set_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  as_set(self)->lock.~ObjectLock();
  type->tp_free(self);
  Py_DECREF(type);
}

int set_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"key", "flags", "mode", "count", "initial_value", nullptr};
  OptionalKey key;
  int flags = 0;
  int mode = 0600;
  int count = 1;
  int initial_value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|iiii", const_cast<char**>(keywords),
                                   convert_key, &key, &flags, &mode, &count, &initial_value))
    return -1;
  if (!guarded(self, [&] { sysv::validate_get_flags(flags); })) return -1;
  if (!key && !(flags & IPC_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Key can only be None if IPC_EXCL is set");
    return -1;
  }
  if (count < 1) count = 0;  // the core refuses it (ValueError), with its message
  std::optional<sysv::SemaphoreSet> opened;
  const auto members = static_cast<std::size_t>(count);
  if (!guarded(self, [&] {
        opened.emplace(
            key ? sysv::SemaphoreSet(static_cast<key_t>(*key), flags, mode, members, initial_value)
                : sysv::SemaphoreSet::create_unique(flags, mode, members, initial_value));
      }))
    return -1;
  SemaphoreSetObject* set = as_set(self);
  {
    ObjectLockGuard guard(set->lock);
    set->key = opened->key();
    set->id = opened->id();
    set->count = static_cast<Py_ssize_t>(opened->count());
  }
  return 0;
}

// ---- argument conversion -------------------------------------------------------------------

// A member index: an int (or __index__); negative or huge is out of range (IndexError). The
// upper bound is the core's check.
bool index_from(PyObject* object, std::size_t& index) {
  PyObject* number = PyNumber_Index(object);
  if (!number) return false;
  const Py_ssize_t value = PyLong_AsSsize_t(number);
  Py_DECREF(number);
  if (value == -1 && PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return false;
    PyErr_Clear();
  }
  if (value < 0) {
    PyErr_SetString(PyExc_IndexError, kBadIndex);
    return false;
  }
  index = static_cast<std::size_t>(value);
  return true;
}

int convert_index(PyObject* object, void* out) {
  return index_from(object, *static_cast<std::size_t*>(out)) ? 1 : 0;
}

// A delta as a C short with the "h" format's errors (Semaphore's delta rules).
bool delta_from(PyObject* object, short& delta) {
  if (PyFloat_Check(object)) {
    PyErr_SetString(PyExc_TypeError, "'float' object cannot be interpreted as an integer");
    return false;
  }
  const long value = PyLong_AsLong(object);
  if (value == -1 && PyErr_Occurred()) return false;
  if (value > SHRT_MAX) {
    PyErr_SetString(PyExc_OverflowError, "signed short integer is greater than maximum");
    return false;
  }
  if (value < SHRT_MIN) {
    PyErr_SetString(PyExc_OverflowError, "signed short integer is less than minimum");
    return false;
  }
  delta = static_cast<short>(value);
  return true;
}

bool flags_from(PyObject* object, int& flags) {
  const long value = PyLong_AsLong(object);
  if (value == -1 && PyErr_Occurred()) return false;
  if (value < INT_MIN || value > INT_MAX) {
    PyErr_SetString(PyExc_OverflowError, "signed integer is greater than maximum");
    return false;
  }
  flags = static_cast<int>(value);
  return true;
}

// The operation list as C++ values. The list is copied into a tuple first, so Python code run
// by a conversion (__index__) cannot reallocate what is being read.
bool operations_from(PyObject* object, std::vector<sysv::SemaphoreOperation>& operations) {
  if (!PyList_Check(object) && !PyTuple_Check(object)) {
    PyErr_SetString(PyExc_TypeError, "operations must be a list or tuple of tuples");
    return false;
  }
  PyObject* items = PySequence_Tuple(object);
  if (!items) return false;
  const Py_ssize_t size = PyTuple_GET_SIZE(items);
  operations.reserve(static_cast<std::size_t>(size));
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < size; ++i) {
    PyObject* item = PyTuple_GET_ITEM(items, i);
    const Py_ssize_t fields = PyTuple_Check(item) ? PyTuple_GET_SIZE(item) : -1;
    if (fields != 2 && fields != 3) {
      PyErr_SetString(PyExc_TypeError, kBadOperation);
      ok = false;
      break;
    }
    sysv::SemaphoreOperation operation;
    ok = index_from(PyTuple_GET_ITEM(item, 0), operation.index) &&
         delta_from(PyTuple_GET_ITEM(item, 1), operation.delta) &&
         (fields == 2 || flags_from(PyTuple_GET_ITEM(item, 2), operation.flags));
    if (ok) operations.push_back(operation);
  }
  Py_DECREF(items);
  return ok;
}

// ---- op ------------------------------------------------------------------------------------

// One semop over the whole list: first without waiting and with the GIL held (as Semaphore:
// DC-4, DC-5), then, if it must wait and may, with the GIL released.
PyObject* set_op(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"operations", "timeout", "undo", "block", nullptr};
  PyObject* list = nullptr;
  PyObject* timeout_object = Py_None;
  int undo = 0;
  int block = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|Opp", const_cast<char**>(keywords), &list,
                                   &timeout_object, &undo, &block))
    return nullptr;
  std::vector<sysv::SemaphoreOperation> operations;
  if (!operations_from(list, operations)) return nullptr;
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  if (undo)
    for (sysv::SemaphoreOperation& operation : operations) operation.flags |= SEM_UNDO;
  // Read the object only now: converting the arguments may have run Python code.
  SemaphoreSetObject* set = as_set(self);
  const sysv::SemaphoreSet handle = core(set);
  bool done = false;
  if (!guarded(self, [&] { done = handle.try_op(operations); })) return nullptr;
  if (done) Py_RETURN_NONE;
  if (!block || timeout.is_zero()) return raise_busy(self);
  auto waited = blocking_call(
      // A signal handler may have re-run __init__: wait on what the object names now.
      [&] { return std::optional<sysv::SemaphoreSet>(core(set)); },
      [&](sysv::SemaphoreSet& pinned) {
        return timeout.forever ? pinned.op(operations)
                               : pinned.op_for(operations, timeout.duration);
      });
  if (!waited) return nullptr;
  if (waited->failure) {
    try {
      std::rethrow_exception(waited->failure);
    } catch (...) {
      return raise_current(self);
    }
  }
  if (!*waited->result) return raise_busy(self);
  Py_RETURN_NONE;
}

// ---- per-member methods --------------------------------------------------------------------

template <typename Read>
PyObject* member_int(PyObject* self, PyObject* args, PyObject* kwargs, Read read) {
  static const char* keywords[] = {"index", nullptr};
  std::size_t index = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&", const_cast<char**>(keywords), convert_index,
                                   &index))
    return nullptr;
  SemaphoreSetObject* set = as_set(self);
  long value = 0;
  if (!guarded(self, [&] { value = static_cast<long>(read(core(set), index)); })) return nullptr;
  return PyLong_FromLong(value);
}

PyObject* set_value_of(PyObject* self, PyObject* args, PyObject* kwargs) {
  return member_int(self, args, kwargs,
                    [](const sysv::SemaphoreSet& s, std::size_t i) { return s.value(i); });
}
PyObject* set_last_pid(PyObject* self, PyObject* args, PyObject* kwargs) {
  return member_int(self, args, kwargs,
                    [](const sysv::SemaphoreSet& s, std::size_t i) { return s.last_pid(i); });
}
PyObject* set_waiting_for_nonzero(PyObject* self, PyObject* args, PyObject* kwargs) {
  return member_int(self, args, kwargs, [](const sysv::SemaphoreSet& s, std::size_t i) {
    return s.waiting_for_nonzero(i);
  });
}
PyObject* set_waiting_for_zero(PyObject* self, PyObject* args, PyObject* kwargs) {
  return member_int(self, args, kwargs, [](const sysv::SemaphoreSet& s, std::size_t i) {
    return s.waiting_for_zero(i);
  });
}

PyObject* set_set_value(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"index", "value", nullptr};
  std::size_t index = 0;
  PyObject* value = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O", const_cast<char**>(keywords), convert_index,
                                   &index, &value))
    return nullptr;
  long number = 0;
  if (!long_from_int(value, number, "The value must be an integer")) return nullptr;
  if (number < 0 || number > 32767) {
    PyErr_SetString(PyExc_ValueError, kRange);
    return nullptr;
  }
  SemaphoreSetObject* set = as_set(self);
  if (!guarded(self, [&] { core(set).set_value(index, static_cast<int>(number)); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* set_remove(PyObject* self, PyObject*) {
  SemaphoreSetObject* set = as_set(self);
  if (!guarded(self, [&] { core(set).remove(); })) return nullptr;
  Py_RETURN_NONE;
}

// ---- attributes ----------------------------------------------------------------------------

template <typename Read>
PyObject* live_int(PyObject* self, Read read) {
  SemaphoreSetObject* set = as_set(self);
  long value = 0;
  if (!guarded(self, [&] { value = static_cast<long>(read(core(set))); })) return nullptr;
  return PyLong_FromLong(value);
}

PyObject* get_key(PyObject* self, void*) { return PyLong_FromLong(as_set(self)->key); }
PyObject* get_id(PyObject* self, void*) { return PyLong_FromLong(as_set(self)->id); }
PyObject* get_count(PyObject* self, void*) { return PyLong_FromSsize_t(as_set(self)->count); }

PyObject* get_values(PyObject* self, void*) {
  SemaphoreSetObject* set = as_set(self);
  std::vector<int> values;
  if (!guarded(self, [&] { values = core(set).values(); })) return nullptr;
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(values.size()));
  if (!list) return nullptr;
  for (std::size_t i = 0; i < values.size(); ++i) {
    PyObject* item = PyLong_FromLong(values[i]);
    if (!item) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

PyObject* get_mode(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().mode; });
}
PyObject* get_uid(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().uid; });
}
PyObject* get_gid(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().gid; });
}
PyObject* get_cuid(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().cuid; });
}
PyObject* get_cgid(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().cgid; });
}
PyObject* get_o_time(PyObject* self, void*) {
  return live_int(self, [](const sysv::SemaphoreSet& s) { return s.status().o_time; });
}

enum class OwnerField { uid, gid, mode };

// As Semaphore's setters: the same conversions, IPC_STAT then IPC_SET.
template <OwnerField Field>
int set_owner_field(PyObject* self, PyObject* value, void*) {
  constexpr const char* kTypeMessage = "The attribute must be an integer";
  unsigned owner = 0;
  int mode = 0;
  if constexpr (Field == OwnerField::mode) {
    if (mode_for_setter(value, kTypeMessage, mode) < 0) return -1;
  } else {
    if (owner_id_for_setter(value, kTypeMessage, owner) < 0) return -1;
  }
  SemaphoreSetObject* set = as_set(self);
  return guarded(self,
                 [&] {
                   const sysv::SemaphoreSet handle = core(set);
                   const sysv::SemaphoreStatus now = handle.status();
                   handle.set_owner(Field == OwnerField::uid ? owner : now.uid,
                                    Field == OwnerField::gid ? owner : now.gid,
                                    Field == OwnerField::mode ? mode : now.mode);
                 })
             ? 0
             : -1;
}

PyObject* set_str(PyObject* self) { return key_id_text(as_set(self)->key, as_set(self)->id); }
PyObject* set_repr(PyObject* self) { return class_key_text("SemaphoreSet", as_set(self)->key); }

PyMethodDef set_methods[] = {
    {"op", as_method<set_op>(), METH_VARARGS | METH_KEYWORDS,
     "op($self, operations, timeout=None, undo=False, block=True)\n--\n\n"
     "Apply every (index, delta[, flags]) of operations atomically, in one semop: delta < 0\n"
     "takes, > 0 gives, 0 waits until the member is zero; flags may hold IPC_NOWAIT and\n"
     "SEM_UNDO. undo adds SEM_UNDO to each, block=False IPC_NOWAIT to each. timeout None\n"
     "waits without limit, 0 never waits; BusyError when it cannot proceed."},
    {"value", as_method<set_value_of>(), METH_VARARGS | METH_KEYWORDS,
     "value($self, index)\n--\n\nThe value of member index, live."},
    {"set_value", as_method<set_set_value>(), METH_VARARGS | METH_KEYWORDS,
     "set_value($self, index, value)\n--\n\nSet member index to value (0..32767); clears every "
     "process's undo adjustments of it."},
    {"last_pid", as_method<set_last_pid>(), METH_VARARGS | METH_KEYWORDS,
     "last_pid($self, index)\n--\n\nPid of the last operation on member index."},
    {"waiting_for_nonzero", as_method<set_waiting_for_nonzero>(), METH_VARARGS | METH_KEYWORDS,
     "waiting_for_nonzero($self, index)\n--\n\nWaiters for member index to grow."},
    {"waiting_for_zero", as_method<set_waiting_for_zero>(), METH_VARARGS | METH_KEYWORDS,
     "waiting_for_zero($self, index)\n--\n\nWaiters for member index to reach zero."},
    {"remove", set_remove, METH_NOARGS,
     "remove($self)\n--\n\nDestroy the set; waiters in every process fail with ExistentialError."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef set_getset[] = {
    {"key", get_key, nullptr, "The key the set was opened with.", nullptr},
    {"id", get_id, reject_id_write, "The kernel's id of the set.", nullptr},
    {"count", get_count, nullptr, "The number of members (the kernel's count).", nullptr},
    {"values", get_values, nullptr, "Every member's value, one atomic snapshot (a new list).",
     nullptr},
    {"mode", get_mode, set_owner_field<OwnerField::mode>, "Permission bits, live.", nullptr},
    {"uid", get_uid, set_owner_field<OwnerField::uid>, "Owner's user id, live.", nullptr},
    {"gid", get_gid, set_owner_field<OwnerField::gid>, "Owner's group id, live.", nullptr},
    {"cuid", get_cuid, nullptr, "Creator's user id.", nullptr},
    {"cgid", get_cgid, nullptr, "Creator's group id.", nullptr},
    {"o_time", get_o_time, nullptr, "Time of the last operation (epoch seconds), 0 if none.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot set_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("SemaphoreSet(key, flags=0, mode=0o600, count=1, initial_value=0)\n--\n\n"
                       "System V semaphore set (an ipcxx extension): count semaphores operated on "
                       "atomically.\ninitial_value is set only when this call creates the set.")},
    {Py_tp_new, reinterpret_cast<void*>(set_new)},
    {Py_tp_init, reinterpret_cast<void*>(set_init)},
    {Py_tp_dealloc, reinterpret_cast<void*>(set_dealloc)},
    {Py_tp_methods, set_methods},
    {Py_tp_getset, set_getset},
    {Py_tp_str, reinterpret_cast<void*>(set_str)},
    {Py_tp_repr, reinterpret_cast<void*>(set_repr)},
    {0, nullptr}};

}  // namespace

PyType_Spec& semaphore_set_spec() {
  static PyType_Spec spec = {"sysv_ipc.SemaphoreSet", sizeof(SemaphoreSetObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, set_slots};
  return spec;
}

}  // namespace ipcxx::python::sysv_types

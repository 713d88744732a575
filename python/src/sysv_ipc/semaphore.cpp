// sysv_ipc.Semaphore: argument conversion, GIL handling and errors around sysv::Semaphore.
#include "ipcxx/sysv/semaphore.hpp"

#include <sys/ipc.h>

#include <climits>
#include <new>
#include <optional>

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

using sysv_errors::guarded;
using sysv_errors::Operation;

constexpr const char* kBadTimeout = "The timeout must be None or a non-negative number";

// Every call builds its core value from `id` and the kernel validates it (a removed or
// replaced id gives ExistentialError), so nothing can be freed under a call; the fields are
// Field<> only so that a concurrent __init__ or setter is no data race without the GIL (a
// mixed key/id pair then only shows in an error message: docs/free-threading.md).
struct SemaphoreObject {
  PyObject_HEAD
  Field<long> key;
  Field<int> id;  // -1 until __init__ succeeds (upstream uses 0, somebody's semaphore: DC-19)
  Field<bool> block;
  Field<bool> undo;
};

SemaphoreObject* as_semaphore(PyObject* self) { return reinterpret_cast<SemaphoreObject*>(self); }

sysv::Semaphore core(const SemaphoreObject* semaphore) {
  return sysv::Semaphore::from_id(semaphore->id, static_cast<key_t>(semaphore->key));
}

sysv_errors::Subject subject_of(const SemaphoreObject* semaphore) {
  return {semaphore->key, semaphore->id, 0};
}

PyObject* semaphore_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  SemaphoreObject* semaphore = as_semaphore(self);
  new (&semaphore->key) Field<long>();
  new (&semaphore->id) Field<int>(-1);
  new (&semaphore->block) Field<bool>(true);
  new (&semaphore->undo) Field<bool>();
  return self;
}

void semaphore_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

int semaphore_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"key", "flags", "mode", "initial_value", nullptr};
  OptionalKey key;
  int flags = 0;
  int mode = 0600;
  int initial_value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|iii", const_cast<char**>(keywords),
                                   convert_key, &key, &flags, &mode, &initial_value))
    return -1;
  const sysv_errors::Subject subject{key.value_or(0), -1, mode};
  if (!guarded(self, Operation::semaphore, subject, [&] { sysv::validate_get_flags(flags); }))
    return -1;
  if (!key && !(flags & IPC_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Key can only be None if IPC_EXCL is set");
    return -1;
  }
  std::optional<sysv::Semaphore> opened;
  if (!guarded(self, Operation::semaphore, subject, [&] {
        opened.emplace(key ? sysv::Semaphore(static_cast<key_t>(*key), flags, mode, initial_value)
                           : sysv::Semaphore::create_unique(flags, mode, initial_value));
      }))
    return -1;
  SemaphoreObject* semaphore = as_semaphore(self);
  semaphore->key = opened->key();
  semaphore->id = opened->id();
  semaphore->block = true;
  semaphore->undo = false;
  return 0;
}

// One semop: first without waiting and with the GIL held (DC-4, DC-5), then, if it must wait
// and may, with the GIL released.
PyObject* operate(PyObject* self, short sem_op, PyObject* timeout_object) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  // Read the object only now: converting the arguments may have run Python code.
  SemaphoreObject* semaphore = as_semaphore(self);
  const sysv::Semaphore handle = core(semaphore);
  const bool undo = semaphore->undo;
  bool done = false;
  if (!guarded(self, Operation::semaphore, subject_of(semaphore),
               [&] { done = handle.operate(sem_op, false, undo); }))
    return nullptr;
  if (done) Py_RETURN_NONE;
  if (!semaphore->block || timeout.is_zero())
    return sysv_errors::raise_errno(self, Operation::semaphore, EAGAIN, subject_of(semaphore));
  auto waited = blocking_call(
      // A signal handler may have re-run __init__: wait on what the object names now.
      [&] { return std::optional<sysv::Semaphore>(core(semaphore)); },
      [&](sysv::Semaphore& pinned) {
        return timeout.forever ? pinned.operate(sem_op, true, undo)
                               : pinned.operate(sem_op, true, undo, timeout.duration);
      });
  if (!waited) return nullptr;
  if (waited->failure)
    return sysv_errors::raise_exception(self, Operation::semaphore, subject_of(semaphore),
                                        waited->failure);
  if (!*waited->result)
    return sysv_errors::raise_errno(self, Operation::semaphore, EAGAIN, subject_of(semaphore));
  Py_RETURN_NONE;
}

// |delta| as a semop amount; 0 and -32768 (whose magnitude is no short: DC-11) are refused.
bool magnitude(short delta, short& amount) {
  if (delta == 0) {
    PyErr_SetString(PyExc_ValueError, "The delta must be non-zero");
    return false;
  }
  if (delta == SHRT_MIN) {
    PyErr_SetString(PyExc_OverflowError, "signed short integer is greater than maximum");
    return false;
  }
  amount = static_cast<short>(delta < 0 ? -delta : delta);
  return true;
}

PyObject* semaphore_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  if (!kwnames && nargs == 0) return operate(self, -1, Py_None);
  static const char* keywords[] = {"timeout", "delta", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  PyObject* timeout = Py_None;
  short delta = 1;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|Oh",
                                   const_cast<char**>(keywords), &timeout, &delta))
    return nullptr;
  short amount = 0;
  if (!magnitude(delta, amount)) return nullptr;
  return operate(self, static_cast<short>(-amount), timeout);
}

PyObject* semaphore_release(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  short amount = 1;
  if (kwnames || nargs != 0) {
    static const char* keywords[] = {"delta", nullptr};
    PackedArguments packed(args, nargs, kwnames);
    if (!packed.ok()) return nullptr;
    short delta = 1;
    if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|h",
                                     const_cast<char**>(keywords), &delta))
      return nullptr;
    if (!magnitude(delta, amount)) return nullptr;
  }
  // Adding never waits on Linux, so the GIL stays held (DC-5).
  SemaphoreObject* semaphore = as_semaphore(self);
  const sysv::Semaphore handle = core(semaphore);
  const bool undo = semaphore->undo;
  if (!guarded(self, Operation::semaphore, subject_of(semaphore),
               [&] { handle.operate(amount, false, undo); }))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* semaphore_z(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", const_cast<char**>(keywords), &timeout))
    return nullptr;
  return operate(self, 0, timeout);
}

PyObject* semaphore_remove(PyObject* self, PyObject*) {
  SemaphoreObject* semaphore = as_semaphore(self);
  if (!guarded(self, Operation::semaphore, subject_of(semaphore),
               [&] { core(semaphore).remove(); }))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* semaphore_enter(PyObject* self, PyObject*) {
  PyObject* result = operate(self, -1, Py_None);
  if (!result) return nullptr;
  Py_DECREF(result);
  return Py_NewRef(self);
}

PyObject* semaphore_exit(PyObject* self, PyObject*) {
  return semaphore_release(self, nullptr, 0, nullptr);
}

// ---- attributes ----------------------------------------------------------------------------

template <typename Read>
PyObject* live_int(PyObject* self, Read read) {
  SemaphoreObject* semaphore = as_semaphore(self);
  long value = 0;
  if (!guarded(self, Operation::semaphore, subject_of(semaphore),
               [&] { value = static_cast<long>(read(core(semaphore))); }))
    return nullptr;
  return PyLong_FromLong(value);
}

PyObject* get_key(PyObject* self, void*) { return PyLong_FromLong(as_semaphore(self)->key); }
PyObject* get_id(PyObject* self, void*) { return PyLong_FromLong(as_semaphore(self)->id); }

PyObject* get_value(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.value(); });
}

int set_value(PyObject* self, PyObject* value, void*) {
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'value'");
    return -1;
  }
  long number = 0;
  if (!long_from_int(value, number, "Attribute 'value' must be an integer")) return -1;
  // Upstream truncates to a C int, so 2**32 + n silently sets n (DC-12).
  if (number < 0 || number > 32767) {
    PyErr_SetString(PyExc_ValueError, "The semaphore's value must remain between 0 and SEMVMX");
    return -1;
  }
  SemaphoreObject* semaphore = as_semaphore(self);
  return guarded(self, Operation::semaphore, subject_of(semaphore),
                 [&] { core(semaphore).set_value(static_cast<int>(number)); })
             ? 0
             : -1;
}

PyObject* get_block(PyObject* self, void*) { return PyBool_FromLong(as_semaphore(self)->block); }
int set_block(PyObject* self, PyObject* value, void*) {
  const int truth = truth_for_setter(value, "block");
  if (truth < 0) return -1;
  as_semaphore(self)->block = truth != 0;
  return 0;
}

PyObject* get_undo(PyObject* self, void*) { return PyBool_FromLong(as_semaphore(self)->undo); }
int set_undo(PyObject* self, PyObject* value, void*) {
  const int truth = truth_for_setter(value, "undo");
  if (truth < 0) return -1;
  as_semaphore(self)->undo = truth != 0;
  return 0;
}

PyObject* get_mode(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().mode; });
}
PyObject* get_uid(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().uid; });
}
PyObject* get_gid(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().gid; });
}
PyObject* get_cuid(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().cuid; });
}
PyObject* get_cgid(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().cgid; });
}
PyObject* get_o_time(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.status().o_time; });
}
PyObject* get_last_pid(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.last_pid(); });
}
PyObject* get_waiting_for_nonzero(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.waiting_for_nonzero(); });
}
PyObject* get_waiting_for_zero(PyObject* self, void*) {
  return live_int(self, [](const sysv::Semaphore& s) { return s.waiting_for_zero(); });
}

enum class OwnerField { uid, gid, mode };

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
  SemaphoreObject* semaphore = as_semaphore(self);
  return guarded(self, Operation::semaphore, subject_of(semaphore),
                 [&] {
                   const sysv::Semaphore handle = core(semaphore);
                   const sysv::SemaphoreStatus now = handle.status();
                   handle.set_owner(Field == OwnerField::uid ? owner : now.uid,
                                    Field == OwnerField::gid ? owner : now.gid,
                                    Field == OwnerField::mode ? mode : now.mode);
                 })
             ? 0
             : -1;
}

PyObject* semaphore_str(PyObject* self) {
  return key_id_text(as_semaphore(self)->key, as_semaphore(self)->id);
}
PyObject* semaphore_repr(PyObject* self) {
  return class_key_text("Semaphore", as_semaphore(self)->key);
}

constexpr const char* kAcquireDoc =
    "Wait until the value is at least |delta|, then subtract |delta|. timeout None waits\n"
    "without limit, 0 never waits; BusyError when it cannot proceed (or block is False).";
constexpr const char* kReleaseDoc = "Add |delta| to the value; never waits.";

PyMethodDef semaphore_methods[] = {
    {"acquire", as_method<semaphore_acquire>(), METH_FASTCALL | METH_KEYWORDS, kAcquireDoc},
    {"P", as_method<semaphore_acquire>(), METH_FASTCALL | METH_KEYWORDS, kAcquireDoc},
    {"release", as_method<semaphore_release>(), METH_FASTCALL | METH_KEYWORDS, kReleaseDoc},
    {"V", as_method<semaphore_release>(), METH_FASTCALL | METH_KEYWORDS, kReleaseDoc},
    {"Z", as_method<semaphore_z>(), METH_VARARGS | METH_KEYWORDS,
     "Wait until the value is zero (same timeout rules)."},
    {"remove", semaphore_remove, METH_NOARGS,
     "Destroy the semaphore; waiters in every process fail with ExistentialError."},
    {"__enter__", semaphore_enter, METH_NOARGS, "acquire() and return self."},
    {"__exit__", semaphore_exit, METH_VARARGS, "release(); arguments are ignored."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef semaphore_getset[] = {
    {"key", get_key, nullptr, "The key the semaphore was opened with.", nullptr},
    {"id", get_id, reject_id_write, "The kernel's id of the semaphore.", nullptr},
    {"value", get_value, set_value, "The value, read and written live.", nullptr},
    {"block", get_block, set_block, "Whether acquire/Z may wait (this object only).", nullptr},
    {"undo", get_undo, set_undo, "Whether operations carry SEM_UNDO (this object only).", nullptr},
    {"mode", get_mode, set_owner_field<OwnerField::mode>, "Permission bits, live.", nullptr},
    {"uid", get_uid, set_owner_field<OwnerField::uid>, "Owner's user id, live.", nullptr},
    {"gid", get_gid, set_owner_field<OwnerField::gid>, "Owner's group id, live.", nullptr},
    {"cuid", get_cuid, nullptr, "Creator's user id.", nullptr},
    {"cgid", get_cgid, nullptr, "Creator's group id.", nullptr},
    {"last_pid", get_last_pid, nullptr, "Pid of the last operation.", nullptr},
    {"waiting_for_nonzero", get_waiting_for_nonzero, nullptr, "Waiters in acquire().", nullptr},
    {"waiting_for_zero", get_waiting_for_zero, nullptr, "Waiters in Z().", nullptr},
    {"o_time", get_o_time, nullptr, "Time of the last operation (epoch seconds), 0 if none.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot semaphore_slots[] = {{Py_tp_doc, const_cast<char*>("System V semaphore object")},
                                 {Py_tp_new, reinterpret_cast<void*>(semaphore_new)},
                                 {Py_tp_init, reinterpret_cast<void*>(semaphore_init)},
                                 {Py_tp_dealloc, reinterpret_cast<void*>(semaphore_dealloc)},
                                 {Py_tp_methods, semaphore_methods},
                                 {Py_tp_getset, semaphore_getset},
                                 {Py_tp_str, reinterpret_cast<void*>(semaphore_str)},
                                 {Py_tp_repr, reinterpret_cast<void*>(semaphore_repr)},
                                 {0, nullptr}};

}  // namespace

PyType_Spec& semaphore_spec() {
  static PyType_Spec spec = {"sysv_ipc.Semaphore", sizeof(SemaphoreObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, semaphore_slots};
  return spec;
}

}  // namespace ipcxx::python::sysv_types

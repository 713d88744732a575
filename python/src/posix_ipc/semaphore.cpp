// posix_ipc.Semaphore: argument conversion, GIL handling and errors around posix::Semaphore.
#include "ipcxx/posix/semaphore.hpp"

#include <fcntl.h>

#include <memory>
#include <new>

#include "common/blocking_call.hpp"
#include "common/conversions.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "common/waiter_count.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "posix_ipc/errors.hpp"
#include "posix_ipc/types.hpp"

namespace ipcxx::python::posix_types {

namespace {

using posix_errors::guarded;
using posix_errors::Operation;

constexpr const char* kClosed = "The semaphore has been closed";
constexpr const char* kBadTimeout = "The timeout must be None or a non-negative number";

struct SemaphoreObject {
  PyObject_HEAD
  // Shared so that a waiter that released the GIL pins the handle while another thread
  // closes the object (compatibility.md DC-14). `handle`, `waiters` and `name` are read and
  // replaced under `lock` (docs/free-threading.md).
  std::shared_ptr<posix::Semaphore> handle;
  WaiterCount waiters;  // threads of this process pinning `handle` for a wait
  PyObject* name;       // str; null until __init__ succeeds
  Field<long> mode;
  ObjectLock lock;
};

SemaphoreObject* as_semaphore(PyObject* self) { return reinterpret_cast<SemaphoreObject*>(self); }

// The handle for one non-blocking call (see UsedHandle).
UsedHandle<posix::Semaphore> used(SemaphoreObject* semaphore) {
  return UsedHandle(semaphore->handle, semaphore->waiters, semaphore->lock);
}

bool is_closed(SemaphoreObject* semaphore) {
  ObjectLockGuard guard(semaphore->lock);
  return !semaphore->handle;
}

PyObject* raise_closed(PyObject* self) {
  PyErr_SetString(posix_errors::classes(self).existential_error, kClosed);
  return nullptr;
}

PyObject* semaphore_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_semaphore(self)->handle) std::shared_ptr<posix::Semaphore>();
  new (&as_semaphore(self)->waiters) WaiterCount();
  new (&as_semaphore(self)->mode) Field<long>();
  new (&as_semaphore(self)->lock) ObjectLock();
  return self;
}

void semaphore_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  SemaphoreObject* semaphore = as_semaphore(self);
  // Unlike upstream, a collected Semaphore closes its handle (compatibility.md DC-1). In a
  // fork child, pins of the parent's threads would keep it open: close it regardless.
  if (semaphore->handle && !semaphore->waiters.any()) {
    try {
      semaphore->handle->close();
    } catch (const std::exception&) {
      // Nothing to report to from a deallocator; the handle is forgotten either way.
    }
  }
  semaphore->handle.~shared_ptr();
  semaphore->waiters.~WaiterCount();
  semaphore->lock.~ObjectLock();
  Py_CLEAR(semaphore->name);
  type->tp_free(self);
  Py_DECREF(type);
}

int semaphore_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"name", "flags", "mode", "initial_value", nullptr};
  OptionalName name;
  int flags = 0;
  int mode = 0600;
  unsigned initial_value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|iiO&", const_cast<char**>(keywords),
                                   convert_name, &name, &flags, &mode, convert_unsigned_int,
                                   &initial_value))
    return -1;
  if (!guarded(self, Operation::semaphore_open, [&] { posix::validate_open_flags(flags); }))
    return -1;
  if (!name && !(flags & O_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Name can only be None if O_EXCL is set");
    return -1;
  }
  std::shared_ptr<posix::Semaphore> opened;
  const bool ok = guarded(self, Operation::semaphore_open, [&] {
    opened = std::make_shared<posix::Semaphore>(
        name ? posix::Semaphore(*name, flags, static_cast<mode_t>(mode), initial_value)
             : posix::Semaphore::create_unique(flags, static_cast<mode_t>(mode), initial_value));
  });
  if (!ok) return -1;
  PyObject* name_object = name_to_python(opened->name());
  if (!name_object) return -1;
  SemaphoreObject* semaphore = as_semaphore(self);
  replace_under(semaphore->lock, semaphore->name, name_object);
  semaphore->mode = stored_mode(mode);
  // Released after the lock: the last reference to the old handle closes it.
  const std::shared_ptr<posix::Semaphore> replaced =
      replace_handle(semaphore->handle, std::move(opened), semaphore->lock);
  return 0;
}

PyObject* raise_busy(PyObject* self) { return posix_errors::classes(self).semaphore_busy.raise(); }

PyObject* acquire_with(PyObject* self, PyObject* timeout_object) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  // Read the handle only now: converting the arguments may have run Python code (a GC
  // callback, a __del__) that closed the object.
  SemaphoreObject* semaphore = as_semaphore(self);
  bool acquired = false;
  {
    const UsedHandle handle = used(semaphore);
    if (!handle) return raise_closed(self);
    // The non-blocking attempt keeps the GIL: most acquisitions never wait (DC-13).
    if (!guarded(self, Operation::semaphore_acquire, [&] { acquired = handle->try_acquire(); }))
      return nullptr;
  }
  if (acquired) Py_RETURN_NONE;
  if (timeout.is_zero()) return raise_busy(self);
  auto waited = blocking_call(
      [&]() -> std::optional<PinnedHandle<posix::Semaphore>> {
        // A signal handler may have closed the object; the pin outlives a close (DC-14).
        auto pinned = pin_handle(semaphore->handle, semaphore->waiters, semaphore->lock);
        if (!pinned) raise_closed(self);
        return pinned;
      },
      [&](PinnedHandle<posix::Semaphore>& pinned) {
        if (!timeout.forever) return pinned->acquire_for(timeout.duration);
        pinned->acquire();
        return true;
      });
  if (!waited) return nullptr;
  if (waited->failure)
    return posix_errors::raise_exception(self, Operation::semaphore_acquire, waited->failure);
  if (!*waited->result) return raise_busy(self);
  Py_RETURN_NONE;
}

PyObject* semaphore_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  if (is_closed(as_semaphore(self))) return raise_closed(self);
  if (!kwnames && nargs <= 1) return acquire_with(self, nargs ? args[0] : Py_None);
  static const char* keywords[] = {"timeout", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|O",
                                   const_cast<char**>(keywords), &timeout))
    return nullptr;
  return acquire_with(self, timeout);
}

PyObject* semaphore_release(PyObject* self, PyObject*) {
  const UsedHandle handle = used(as_semaphore(self));
  if (!handle) return raise_closed(self);
  if (!guarded(self, Operation::semaphore_release, [&] { handle->release(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* semaphore_close(PyObject* self, PyObject*) {
  SemaphoreObject* semaphore = as_semaphore(self);
  // Taken out first, so that no other thread can pin it any more.
  const auto [taken, pinned] = take_handle(semaphore->handle, semaphore->waiters, semaphore->lock);
  if (!taken) return raise_closed(self);
  // With a waiter still pinning the handle, sem_close runs when that waiter lets go (a fork
  // child counts only its own waiters).
  if (!pinned && !guarded(self, Operation::semaphore_close, [&] { taken->close(); }))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* semaphore_unlink(PyObject* self, PyObject*) {
  const UsedHandle handle = used(as_semaphore(self));
  // Linux upstream refuses unlink() after close() (compatibility.md DC-15: kept).
  if (!handle) return raise_closed(self);
  if (!guarded(self, Operation::semaphore_unlink, [&] { handle->unlink(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* semaphore_enter(PyObject* self, PyObject*) {
  PyObject* result = acquire_with(self, Py_None);
  if (!result) return nullptr;
  Py_DECREF(result);
  Py_INCREF(self);
  return self;
}

PyObject* semaphore_exit(PyObject* self, PyObject*) { return semaphore_release(self, nullptr); }

PyObject* semaphore_get_value(PyObject* self, void*) {
  const UsedHandle handle = used(as_semaphore(self));
  if (!handle) return raise_closed(self);
  int value = 0;
  if (!guarded(self, Operation::semaphore_value, [&] { value = handle->value(); })) return nullptr;
  return PyLong_FromLong(value);
}

PyObject* semaphore_get_name(PyObject* self, void*) {
  return new_reference_under(as_semaphore(self)->lock, as_semaphore(self)->name);
}

PyObject* semaphore_get_mode(PyObject* self, void*) {
  return PyLong_FromLong(as_semaphore(self)->mode);
}

PyObject* semaphore_str(PyObject* self) {
  PyObject* name = semaphore_get_name(self, nullptr);
  if (name != Py_None) return name;
  Py_DECREF(name);
  return PyUnicode_FromString("(no name)");
}

PyObject* semaphore_repr(PyObject* self) {
  PyObject* mode = octal_mode(as_semaphore(self)->mode);
  if (!mode) return nullptr;
  PyObject* name = semaphore_get_name(self, nullptr);
  PyObject* result =
      name != Py_None ? PyUnicode_FromFormat("posix_ipc.Semaphore(\"%U\", mode=%U)", name, mode)
                      : PyUnicode_FromFormat("posix_ipc.Semaphore(\"(no name)\", mode=%U)", mode);
  Py_DECREF(name);
  Py_DECREF(mode);
  return result;
}

PyMethodDef semaphore_methods[] = {
    {"acquire", as_method<semaphore_acquire>(), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, /, timeout=None)\n--\n\n"
     "Wait until the value is above zero, then decrement it. timeout None waits without\n"
     "limit, 0 never waits; BusyError when the timeout expires."},
    {"release", semaphore_release, METH_NOARGS,
     "release($self, /)\n--\n\nIncrement the value, waking one waiter. Never blocks."},
    {"close", semaphore_close, METH_NOARGS,
     "close($self, /)\n--\n\nClose this handle; the semaphore itself stays until unlinked."},
    {"unlink", semaphore_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\nRemove the semaphore's name from the system."},
    {"__enter__", semaphore_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nAcquire (waiting without limit) and return self."},
    {"__exit__", semaphore_exit, METH_VARARGS, "Release the semaphore; arguments are ignored."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef semaphore_getset[] = {
    {"name", semaphore_get_name, reject_write, "The name of the semaphore (read-only).", nullptr},
    {"mode", semaphore_get_mode, reject_write,
     "The permission bits given when the object was made (read-only).", nullptr},
    {"value", semaphore_get_value, nullptr, "The current value (read-only).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot semaphore_slots[] = {{Py_tp_doc, const_cast<char*>("POSIX semaphore object")},
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
  static PyType_Spec spec = {"posix_ipc.Semaphore", sizeof(SemaphoreObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, semaphore_slots};
  return spec;
}

}  // namespace ipcxx::python::posix_types

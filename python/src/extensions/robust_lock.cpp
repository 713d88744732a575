// ipcxx.RobustLock: argument conversion, sliced GIL-free waits and errors around RobustMutex.
#include "extensions/robust_lock.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "common/blocking_call.hpp"
#include "common/conversions.hpp"
#include "common/errors.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "common/waiter_count.hpp"
#include "extensions/arguments.hpp"
#include "extensions/state.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/robust_mutex.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, like the core's deadlines

// pthread_mutex_lock restarts after a signal handler, so Ctrl-C could never end it: waits run
// as clocklock slices of at most this long, with signal handlers run between slices. This is
// the worst-case delay of a KeyboardInterrupt (docs/guide.md, "A crash-robust lock").
constexpr std::chrono::milliseconds kSlice{20};

struct RobustLockObject {
  PyObject_HEAD
  // Shared so that a waiter that released the GIL pins the mapping while another thread
  // closes the object. Every field is read and replaced under `lock` (docs/free-threading.md).
  std::shared_ptr<RobustMutex> handle;
  WaiterCount waiters;
  PyObject* name;  // str; null until __init__ succeeds
  // Set while an asyncio task holds the lock (ipcxx.aio.lock): called with True before a
  // release, False before make_consistent(), it raises unless the current task is the holder.
  // The loop's thread owns the pthread mutex, so pthread cannot tell its tasks apart.
  PyObject* holder_check;
  ObjectLock lock;
};

RobustLockObject* as_lock(PyObject* self) { return reinterpret_cast<RobustLockObject*>(self); }

// The handle for one call (see UsedHandle).
UsedHandle<RobustMutex> used(RobustLockObject* lock) {
  return UsedHandle(lock->handle, lock->waiters, lock->lock);
}

bool is_closed(RobustLockObject* lock) {
  ObjectLockGuard guard(lock->lock);
  return !lock->handle;
}

PyObject* name_of(RobustLockObject* lock) { return new_reference_under(lock->lock, lock->name); }

PyObject* raise_closed() {
  PyErr_SetString(PyExc_ValueError, "the RobustLock is closed");
  return nullptr;
}

PyObject* raise_owner_died(PyObject* self) {
  PyErr_SetString(of(self).owner_died_error,
                  "the previous holder died holding the lock; this thread holds it now: repair "
                  "the shared state, then call make_consistent() before release()");
  return nullptr;
}

// `owner` finds the module state; `name` (may be null) names the lock in messages.
PyObject* raise_error(PyObject* owner, PyObject* name, const Error& error) {
  switch (error.errno_value()) {
    case ENOTRECOVERABLE:
      PyErr_Format(of(owner).not_recoverable_error,
                   "the lock %R is not recoverable: a holder released it after its previous "
                   "holder died without calling make_consistent(); unlink it and create a new one",
                   name ? name : Py_None);
      return nullptr;
    case EPERM:
      PyErr_SetString(PyExc_RuntimeError, "this thread does not hold the lock");
      return nullptr;
    case EDEADLK:
      PyErr_SetString(PyExc_RuntimeError, "this thread already holds the lock");
      return nullptr;
    case EINVAL:
      if (error.call() == "pthread_mutex_consistent") {
        PyErr_SetString(PyExc_RuntimeError,
                        "nothing to repair: no holder died since the lock was last consistent");
        return nullptr;
      }
      break;
    default:
      break;
  }
  return raise_os_error(error.errno_value(), error.object().c_str());
}

// Translates the C++ exception being handled. Returns null.
PyObject* raise_current(PyObject* self) {
  try {
    throw;
  } catch (const Error& error) {
    PyObject* name = name_of(as_lock(self));
    raise_error(self, name, error);
    Py_DECREF(name);
    return nullptr;
  } catch (const NotALockError& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
    return nullptr;
  } catch (...) {
    return raise_standard_exception();
  }
}

PyObject* raise_failure(PyObject* self, const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (...) {
    return raise_current(self);
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

PyObject* lock_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_lock(self)->handle) std::shared_ptr<RobustMutex>();
  new (&as_lock(self)->waiters) WaiterCount();
  new (&as_lock(self)->lock) ObjectLock();
  return self;
}

void lock_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  RobustLockObject* lock = as_lock(self);
  // A lock still held keeps its mapping (RobustMutex's destructor), so a death is reported.
  lock->handle.~shared_ptr();
  lock->waiters.~WaiterCount();
  lock->lock.~ObjectLock();
  Py_CLEAR(lock->name);
  Py_CLEAR(lock->holder_check);
  type->tp_free(self);
  Py_DECREF(type);
}

int lock_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"name", "create", "mode", "exclusive", nullptr};
  OptionalName name;
  int create = 0;
  int mode = 0600;
  int exclusive = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|$pip", const_cast<char**>(keywords),
                                   convert_name, &name, &create, &mode, &exclusive))
    return -1;
  if (!check_mode(mode)) return -1;
  if (!name && !create) {
    PyErr_SetString(PyExc_ValueError, "name can only be None with create=True");
    return -1;
  }
  if (exclusive && !create) {
    PyErr_SetString(PyExc_ValueError, "exclusive=True needs create=True");
    return -1;
  }
  if (!is_closed(as_lock(self))) {
    PyErr_SetString(PyExc_RuntimeError, "RobustLock.__init__ called twice");
    return -1;
  }
  std::shared_ptr<RobustMutex> opened;
  const bool ok = guarded(self, [&] {
    const auto permissions = static_cast<mode_t>(mode);
    opened =
        std::make_shared<RobustMutex>(!name       ? RobustMutex::create_unique(permissions)
                                      : exclusive ? RobustMutex::create(*name, permissions)
                                                  : RobustMutex(*name, create != 0, permissions));
  });
  if (!ok) return -1;
  PyObject* name_object = name_to_python(opened->name());
  if (!name_object) return -1;
  RobustLockObject* lock = as_lock(self);
  PyObject* replaced_name = nullptr;
  {
    ObjectLockGuard guard(lock->lock);
    // Checked again here: another thread may have run __init__ since the check above.
    if (!lock->handle) {
      replaced_name = std::exchange(lock->name, name_object);
      lock->handle = std::move(opened);
      name_object = nullptr;
    }
  }
  Py_XDECREF(replaced_name);
  if (name_object) {
    Py_DECREF(name_object);
    PyErr_SetString(PyExc_RuntimeError, "RobustLock.__init__ called twice");
    return -1;
  }
  return 0;
}

// The result of a finished acquisition: True, False, or OwnerDiedError while holding.
// The caller still pins the handle, so a close() on another thread sees the pin or the hold.
PyObject* report(PyObject* self, LockOutcome outcome) {
  if (!holds(outcome)) Py_RETURN_FALSE;
  if (outcome == LockOutcome::owner_died) return raise_owner_died(self);
  Py_RETURN_TRUE;
}

PyObject* acquire_with(PyObject* self, const Timeout& timeout) {
  // Read the handle only now: converting the argument may have run Python code.
  RobustLockObject* lock = as_lock(self);
  // Held until report(): with object locks on, close() on another thread sees this call
  // (as a pin, then as a hold) and refuses. On a regular build it is a raw pointer, used
  // only before the first wait (a signal handler may close the object during one).
  const UsedHandle handle = used(lock);
  if (!handle) return raise_closed();
  LockOutcome outcome = LockOutcome::timed_out;
  // The non-blocking attempt keeps the GIL: an uncontended lock never releases it.
  if (!guarded(self, [&] { outcome = handle->try_acquire(); })) return nullptr;
  if (holds(outcome) || timeout.is_zero()) return report(self, outcome);
  const Clock::time_point deadline =
      timeout.forever
          ? Clock::time_point::max()
          : Clock::now() + std::chrono::duration_cast<Clock::duration>(
                               std::min(timeout.duration, std::chrono::nanoseconds(INT64_MAX / 2)));
  for (;;) {
    std::chrono::nanoseconds slice = kSlice;
    if (!timeout.forever) {
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) Py_RETURN_FALSE;
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    auto waited = blocking_call(
        [&]() -> std::optional<PinnedHandle<RobustMutex>> {
          // A signal handler may have closed the object; the pin outlives a close.
          auto pinned = pin_handle(lock->handle, lock->waiters, lock->lock);
          if (!pinned) raise_closed();
          return pinned;
        },
        [&](PinnedHandle<RobustMutex>& pinned) { return pinned->acquire_for(slice); });
    if (!waited) return nullptr;  // KeyboardInterrupt (or another handler's error), or closed
    if (waited->failure) return raise_failure(self, waited->failure);
    outcome = *waited->result;
    if (!holds(outcome)) continue;
    return report(self, outcome);
  }
}

PyObject* lock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Timeout timeout;
  if (!parse_only_timeout(args, nargs, kwnames, timeout)) return nullptr;
  return acquire_with(self, timeout);
}

// Calls a holder check (its reference is consumed); out of line, off the synchronous path.
[[gnu::noinline]] bool call_holder_check(PyObject* check, bool releasing) {
  PyObject* result = PyObject_CallOneArg(check, releasing ? Py_True : Py_False);
  Py_DECREF(check);
  Py_XDECREF(result);
  return result != nullptr;
}

// Runs the holder check of an asyncio task's hold, if any (false with the error set). Before
// the handle is read: the check is Python code, which may close the object.
bool check_holder(RobustLockObject* lock, bool releasing) {
  PyObject* check = nullptr;
  {
    ObjectLockGuard guard(lock->lock);
    check = lock->holder_check;
    if (!check) return true;  // a thread's hold: the synchronous path pays this test only
    Py_INCREF(check);
  }
  return call_holder_check(check, releasing);
}

PyObject* lock_release(PyObject* self, PyObject*) {
  RobustLockObject* lock = as_lock(self);
  if (!check_holder(lock, true)) return nullptr;
  const UsedHandle handle = used(lock);
  if (!handle) return raise_closed();
  if (!guarded(self, [&] { handle->release(); })) return nullptr;
  PyObject* check = nullptr;
  {
    ObjectLockGuard guard(lock->lock);
    if (lock->holder_check) check = std::exchange(lock->holder_check, nullptr);  // task's hold
  }
  if (check) Py_DECREF(check);
  Py_RETURN_NONE;
}

PyObject* lock_set_holder_check(PyObject* self, PyObject* check) {
  RobustLockObject* lock = as_lock(self);
  PyObject* old = nullptr;
  {
    ObjectLockGuard guard(lock->lock);
    old = std::exchange(lock->holder_check, check == Py_None ? nullptr : Py_NewRef(check));
  }
  Py_XDECREF(old);
  Py_RETURN_NONE;
}

// ipcxx.aio's wait in its pool: at most `timeout` (one slice for None) until the lock is free,
// never keeping it (RobustMutex::wait_free); the awaiting task then takes it on its own thread.
PyObject* lock_wait_free(PyObject* self, PyObject* timeout_object) {
  Timeout timeout;
  if (!parse_wait_timeout(timeout_object, timeout)) return nullptr;
  RobustLockObject* lock = as_lock(self);
  const std::chrono::nanoseconds limit = timeout.forever ? kSlice : timeout.duration;
  auto waited = blocking_call(
      [&]() -> std::optional<PinnedHandle<RobustMutex>> {
        auto pinned = pin_handle(lock->handle, lock->waiters, lock->lock);
        if (!pinned) raise_closed();
        return pinned;
      },
      [&](PinnedHandle<RobustMutex>& pinned) { return pinned->wait_free(limit); });
  if (!waited) return nullptr;
  if (waited->failure) return raise_failure(self, waited->failure);
  return PyBool_FromLong(*waited->result);
}

PyObject* lock_make_consistent(PyObject* self, PyObject*) {
  if (!check_holder(as_lock(self), false)) return nullptr;
  const UsedHandle handle = used(as_lock(self));
  if (!handle) return raise_closed();
  if (!guarded(self, [&] { handle->make_consistent(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* lock_locked(PyObject* self, PyObject*) {
  const UsedHandle handle = used(as_lock(self));
  if (!handle) return raise_closed();
  bool locked = false;
  if (!guarded(self, [&] { locked = handle->locked(); })) return nullptr;
  return PyBool_FromLong(locked);
}

PyObject* lock_close(PyObject* self, PyObject*) {
  RobustLockObject* lock = as_lock(self);
  const char* refusal = nullptr;
  std::shared_ptr<RobustMutex> taken;  // unmapped after the lock is let go
  {
    ObjectLockGuard guard(lock->lock);
    if (!lock->handle) Py_RETURN_NONE;  // idempotent, like a file's close()
    // The core reconciles the hold with the lock's real owner: a thread that died holding it,
    // or the parent of this fork child, holds nothing here. Never waits.
    if (lock->handle->held_by_this_object()) {
      refusal = "release the lock before closing it";
    } else if (lock->waiters.any()) {
      // A wait that took the lock after a close could never give it back: refuse instead.
      // With object locks on, a call in progress on another thread counts too.
      refusal = "another thread is waiting for the lock";
    } else {
      taken = std::move(lock->handle);
      lock->handle.reset();
    }
  }
  if (refusal) {
    PyErr_SetString(PyExc_RuntimeError, refusal);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* lock_unlink(PyObject* self, PyObject*) {
  const UsedHandle handle = used(as_lock(self));
  if (!handle) return raise_closed();
  if (!guarded(self, [&] { handle->unlink(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* lock_enter(PyObject* self, PyObject*) {
  PyObject* result = acquire_with(self, Timeout{});  // without limit
  if (!result) return nullptr;
  Py_DECREF(result);
  return Py_NewRef(self);
}

PyObject* lock_exit(PyObject* self, PyObject*) { return lock_release(self, nullptr); }

PyObject* lock_get_name(PyObject* self, void*) { return name_of(as_lock(self)); }

PyObject* lock_get_closed(PyObject* self, void*) {
  return PyBool_FromLong(is_closed(as_lock(self)));
}

PyObject* lock_get_not_recoverable(PyObject* self, void*) {
  const UsedHandle handle = used(as_lock(self));
  if (!handle) return raise_closed();
  return PyBool_FromLong(handle->not_recoverable());
}

PyObject* lock_repr(PyObject* self) {
  RobustLockObject* lock = as_lock(self);
  PyObject* name = name_of(lock);
  PyObject* result =
      PyUnicode_FromFormat("<ipcxx.RobustLock %R%s>", name, is_closed(lock) ? " (closed)" : "");
  Py_DECREF(name);
  return result;
}

PyMethodDef lock_methods[] = {
    {"acquire", as_method<lock_acquire>(), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, /, timeout=None)\n--\n\n"
     "Take the lock: timeout None waits without limit, 0 never waits. Returns True when\n"
     "taken, False when the timeout expired. The wait releases the GIL and runs signal\n"
     "handlers every 20 ms (Ctrl-C ends it). When the previous holder died holding the lock,\n"
     "this thread holds it and OwnerDiedError is raised: repair the shared state and call\n"
     "make_consistent(). NotRecoverableError once the lock is unusable."},
    {"release", lock_release, METH_NOARGS,
     "release($self, /)\n--\n\n"
     "Give the lock back; never blocks. RuntimeError when this thread does not hold it."},
    {"make_consistent", lock_make_consistent, METH_NOARGS,
     "make_consistent($self, /)\n--\n\n"
     "After OwnerDiedError, mark the state the lock protects as repaired, so that the lock\n"
     "stays usable. Releasing without it makes the lock permanently unusable."},
    {"locked", lock_locked, METH_NOARGS,
     "locked($self, /)\n--\n\n"
     "Whether some thread holds the lock (a dead holder counts until the next acquire).\n"
     "Never waits; may make a concurrent acquire(timeout=0) see it taken."},
    {"close", lock_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Unmap the lock from this process (idempotent); the lock stays until unlinked.\n"
     "RuntimeError while this object holds it or another thread waits for it."},
    {"unlink", lock_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\n"
     "Remove the lock's name; whoever has it open keeps using it."},
    {"__enter__", lock_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nAcquire (waiting without limit) and return self."},
    {"_wait_free", lock_wait_free, METH_O,
     "_wait_free($self, timeout, /)\n--\n\n"
     "For ipcxx.aio: wait at most timeout seconds (None: one slice) until the lock is free,\n"
     "without keeping it (a dead holder is left for the next acquire to report)."},
    {"_set_holder_check", lock_set_holder_check, METH_O,
     "_set_holder_check($self, check, /)\n--\n\n"
     "For ipcxx.aio: check(releasing) runs before release() and make_consistent() while an\n"
     "asyncio task holds the lock, and raises unless that task calls; None removes it."},
    {"__exit__", lock_exit, METH_VARARGS, "Release the lock; arguments are ignored."},
    {nullptr, nullptr, 0, nullptr}};

int reject_write(PyObject*, PyObject*, void*) {
  PyErr_SetString(PyExc_AttributeError, "attribute is read-only");
  return -1;
}

PyGetSetDef lock_getset[] = {
    {"name", lock_get_name, reject_write, "The lock's name (read-only).", nullptr},
    {"closed", lock_get_closed, reject_write, "True after close() (read-only).", nullptr},
    {"not_recoverable", lock_get_not_recoverable, reject_write,
     "True once the lock is permanently unusable (read-only).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot lock_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("RobustLock(name, *, create=False, mode=0o600, exclusive=False)\n--\n\n"
                       "A lock shared by processes by name, robust to a holder's crash: the next\n"
                       "acquire() takes it and raises OwnerDiedError. name=None with create=True\n"
                       "picks a random name. A thread holds it; only that thread may release it.")},
    {Py_tp_new, reinterpret_cast<void*>(lock_new)},
    {Py_tp_init, reinterpret_cast<void*>(lock_init)},
    {Py_tp_dealloc, reinterpret_cast<void*>(lock_dealloc)},
    {Py_tp_methods, lock_methods},
    {Py_tp_getset, lock_getset},
    {Py_tp_repr, reinterpret_cast<void*>(lock_repr)},
    {0, nullptr}};

}  // namespace

PyObject* unlink_robust_lock(PyObject* module, PyObject* name_object) {
  std::string name;
  if (!parse_unlink_name(name_object, name)) return nullptr;
  try {
    RobustMutex::unlink(name);
  } catch (const Error& error) {
    return raise_error(module, name_object, error);
  } catch (...) {
    return raise_standard_exception();
  }
  Py_RETURN_NONE;
}

PyType_Spec& robust_lock_spec() {
  static PyType_Spec spec = {"ipcxx.RobustLock", sizeof(RobustLockObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, lock_slots};
  return spec;
}

}  // namespace ipcxx::python::ipcxx_state

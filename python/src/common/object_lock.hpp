// What protects an object's own fields once the GIL does not: a per-object lock held only
// around reads and writes of those fields, and relaxed atomics for plain scalars. On a regular
// (GIL) build both compile to what the GIL-only code was, so the hot path pays nothing there;
// free-threaded builds (Py_GIL_DISABLED) and regular builds compiled with IPCXX_OBJECT_LOCKS
// (so that the locking paths run on this machine: docs/free-threading.md) get the real thing.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <mutex>

#if defined(Py_GIL_DISABLED) || defined(IPCXX_OBJECT_LOCKS)
#define IPCXX_OBJECT_LOCKS_ON 1
#else
#define IPCXX_OBJECT_LOCKS_ON 0
#endif

namespace ipcxx::python {

/// Whether object locks and counted per-call pins are compiled in (see the file comment).
inline constexpr bool kObjectLocks = IPCXX_OBJECT_LOCKS_ON;

/// The lock of one object's fields. Rules: held only around reading or replacing fields,
/// never across Python code (a __del__, a signal handler, an argument conversion: the lock is
/// not re-entrant) and never across a wait or the GIL's release. Lock order: an object's lock
/// before the core's process-wide tables (RangePin, notification registry), never the reverse.
class ObjectLock {
 public:
#if IPCXX_OBJECT_LOCKS_ON && PY_VERSION_HEX >= 0x030D0000
  // PyMutex: one byte, zero-initialised by tp_alloc; a contended lock detaches the thread
  // state while it parks, so it never blocks a stop-the-world pause of the interpreter.
  void lock() noexcept { PyMutex_Lock(&mutex_); }
  void unlock() noexcept { PyMutex_Unlock(&mutex_); }

 private:
  PyMutex mutex_{};
#elif IPCXX_OBJECT_LOCKS_ON
  // Only the IPCXX_OBJECT_LOCKS test build of 3.10-3.12 (no free-threaded build exists there):
  // with the GIL held across every locked section, it is never contended.
  void lock() noexcept { mutex_.lock(); }
  void unlock() noexcept { mutex_.unlock(); }

 private:
  std::mutex mutex_;
#else
  // The GIL serialises every locked section: none of them releases it or runs Python code.
  void lock() noexcept {}
  void unlock() noexcept {}
#endif
};

using ObjectLockGuard = std::lock_guard<ObjectLock>;

/// A scalar field read and written by any thread without a lock (a flag, an id, a size
/// hint): a relaxed atomic when object locks are on, the plain value otherwise. Readers may
/// see a value one update old, never a torn one; fields that must agree with each other are
/// read under the object's lock instead.
template <typename T>
class Field {
 public:
  Field() = default;
  Field(T value) noexcept : value_(value) {}  // NOLINT: reads like the plain field it replaces
  Field(const Field&) = delete;
  Field& operator=(const Field&) = delete;
  operator T() const noexcept {  // NOLINT: reads like the plain field it replaces
#if IPCXX_OBJECT_LOCKS_ON
    return value_.load(std::memory_order_relaxed);
#else
    return value_;
#endif
  }
  Field& operator=(T value) noexcept {
#if IPCXX_OBJECT_LOCKS_ON
    value_.store(value, std::memory_order_relaxed);
#else
    value_ = value;
#endif
    return *this;
  }

 private:
#if IPCXX_OBJECT_LOCKS_ON
  std::atomic<T> value_{};
#else
  T value_{};
#endif
};

/// A new reference to `*slot` (or None when it is null), read under `lock`: __init__ may
/// replace and release the object concurrently (it swaps under the same lock).
inline PyObject* new_reference_under(ObjectLock& lock, PyObject* const& slot) {
  ObjectLockGuard guard(lock);
  return Py_NewRef(slot ? slot : Py_None);
}

/// Replaces `*slot` with `value` (a new reference, stolen) under `lock`; the old object is
/// released after the lock is let go, since its release may run Python code.
inline void replace_under(ObjectLock& lock, PyObject*& slot, PyObject* value) {
  PyObject* old = nullptr;
  {
    ObjectLockGuard guard(lock);
    old = slot;
    slot = value;
  }
  Py_XDECREF(old);
}

}  // namespace ipcxx::python

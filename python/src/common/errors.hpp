// Error translation shared by both modules' tables: errno as OSError, and the C++ exceptions
// the core throws for arguments it rejects.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ipcxx::python {

/// OSError(errno, strerror(errno)); CPython picks the subclass (EPERM -> PermissionError).
/// Returns null.
PyObject* raise_os_error(int errno_value);
/// OSError(errno, strerror(errno), filename): e.g. FileNotFoundError naming the object.
PyObject* raise_os_error(int errno_value, const char* filename);

/// Translates the C++ exception being handled, other than ipcxx::Error: invalid_argument,
/// out_of_range and length_error become ValueError(what()), bad_alloc MemoryError("Out of
/// memory"), anything else RuntimeError. Call only inside a catch block. Returns null.
PyObject* raise_standard_exception();

/// Sets attribute `name` to `value` on the exception being raised (like
/// BlockingIOError.characters_written), which stays raised; an exception whose class refuses new
/// attributes is raised unchanged. Does nothing when none is raised.
void set_on_raised(const char* name, PyObject* value);

/// The exception being raised, taken out while code that must not see it runs (code that may
/// raise its own), then raised again by restore() or dropped by the destructor.
class HeldException {
 public:
  HeldException();
  HeldException(const HeldException&) = delete;
  HeldException& operator=(const HeldException&) = delete;
  ~HeldException();
  /// Raises the held exception again (replacing any raised since); once.
  void restore();

 private:
#if PY_VERSION_HEX >= 0x030C0000
  PyObject* raised_ = nullptr;
#else
  PyObject* type_ = nullptr;
  PyObject* value_ = nullptr;
  PyObject* traceback_ = nullptr;
#endif
};

}  // namespace ipcxx::python

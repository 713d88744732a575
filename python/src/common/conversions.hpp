// Argument conversion shared by the Python modules: names, timeouts, C integer ranges, and
// CPython-identical argument parsing for METH_FASTCALL methods.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <chrono>
#include <optional>
#include <string>

namespace ipcxx::python {

/// A name as given: std::nullopt for None.
using OptionalName = std::optional<std::string>;

/// O& converter: None, str (encoded like os.fsencode) or bytes into an OptionalName.
/// Anything else: TypeError("Name must be None or a string"); a NUL byte: ValueError.
int convert_name(PyObject* object, void* out_name);
/// O& converter for unlink_*(): str or bytes into std::string (no None).
int convert_required_name(PyObject* object, void* out_name);
/// The str for a stored name, decoded like os.fsdecode (never fails for our own encodings).
PyObject* name_to_python(const std::string& name);

/// A wait limit: forever, or a duration (zero means "do not wait").
struct Timeout {
  bool forever = true;
  std::chrono::nanoseconds duration{0};
  bool is_zero() const { return !forever && duration.count() == 0; }
};
/// Converts None / a non-negative int or float. Negative, NaN, non-numbers and ints beyond a
/// C long raise TypeError(message); +inf and values too large for a deadline mean forever.
bool parse_timeout(PyObject* object, Timeout& timeout, const char* message);

/// O& converter for C unsigned int fields that upstream wraps modulo 2**32: a negative value
/// raises ValueError("Invalid parameter(s)"), one above UINT_MAX OverflowError (DC-26).
int convert_unsigned_int(PyObject* object, void* out_value);
/// O& converter for SharedMemory's size (upstream "k" format: exact int required).
int convert_size(PyObject* object, void* out_value);

/// A System V key as given: std::nullopt for None.
using OptionalKey = std::optional<long>;
/// O& converter for System V keys: None or an int within C long (truncated to key_t later,
/// like upstream). Anything else: TypeError("Key must be an integer or None").
int convert_key(PyObject* object, void* out_key);

/// Reads a C long from an int; anything else raises TypeError(type_message). Values beyond
/// C long raise OverflowError("Python int too large to convert to C long").
bool long_from_int(PyObject* object, long& value, const char* type_message);

/// Positional and keyword arguments of a METH_FASTCALL call repacked as (tuple, dict), so the
/// slow path can use PyArg_ParseTupleAndKeywords and produce CPython's own error messages.
class PackedArguments {
 public:
  PackedArguments(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
  ~PackedArguments();
  PackedArguments(const PackedArguments&) = delete;
  PackedArguments& operator=(const PackedArguments&) = delete;
  bool ok() const { return tuple_ != nullptr && (has_keywords_ == (dict_ != nullptr)); }
  PyObject* tuple() const { return tuple_; }
  PyObject* dict() const { return dict_; }

 private:
  PyObject* tuple_ = nullptr;
  PyObject* dict_ = nullptr;
  bool has_keywords_ = false;
};

}  // namespace ipcxx::python

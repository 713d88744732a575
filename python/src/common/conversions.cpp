// Argument conversion shared by the Python modules.
#include "common/conversions.hpp"

#include <climits>
#include <cmath>
#include <cstring>

namespace ipcxx::python {

namespace {

int store_name_bytes(PyObject* bytes, std::string& out) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(bytes, &data, &size) < 0) return 0;
  // Upstream crashes (str) or silently truncates (bytes) at a NUL (DC-3).
  if (std::memchr(data, '\0', static_cast<size_t>(size)) != nullptr) {
    PyErr_SetString(PyExc_ValueError, "embedded null byte");
    return 0;
  }
  out.assign(data, static_cast<size_t>(size));
  return 1;
}

int encode_name(PyObject* object, std::string& out) {
  if (PyUnicode_Check(object)) {
    PyObject* encoded = PyUnicode_EncodeFSDefault(object);
    if (!encoded) return 0;
    const int ok = store_name_bytes(encoded, out);
    Py_DECREF(encoded);
    return ok;
  }
  if (PyBytes_Check(object)) return store_name_bytes(object, out);
  PyErr_SetString(PyExc_TypeError, "Name must be None or a string");
  return 0;
}

}  // namespace

int convert_name(PyObject* object, void* out_name) {
  auto& name = *static_cast<OptionalName*>(out_name);
  if (object == Py_None) {
    name.reset();
    return 1;
  }
  std::string text;
  if (!encode_name(object, text)) return 0;
  name = std::move(text);
  return 1;
}

int convert_required_name(PyObject* object, void* out_name) {
  return encode_name(object, *static_cast<std::string*>(out_name));
}

PyObject* name_to_python(const std::string& name) {
  return PyUnicode_DecodeFSDefaultAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
}

bool parse_timeout(PyObject* object, Timeout& timeout, const char* message) {
  if (object == Py_None) {
    timeout = Timeout{};
    return true;
  }
  // Past this many seconds a deadline no longer fits a timespec on every clock: wait forever
  // (upstream computes a garbage deadline: compatibility.md DC-10).
  constexpr double kForeverSeconds = 9.0e9;
  double seconds = 0;
  if (PyLong_Check(object)) {
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
    if (overflow != 0 || value < 0 || (value == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError, message);
      return false;
    }
    if (static_cast<double>(value) >= kForeverSeconds) {
      timeout = Timeout{};
      return true;
    }
    timeout.forever = false;
    timeout.duration = std::chrono::seconds(value);
    return true;
  }
  if (PyFloat_Check(object)) {
    seconds = PyFloat_AS_DOUBLE(object);
    if (std::isnan(seconds) || seconds < 0) {
      PyErr_SetString(PyExc_TypeError, message);
      return false;
    }
    if (seconds >= kForeverSeconds) {
      timeout = Timeout{};
      return true;
    }
    timeout.forever = false;
    timeout.duration = std::chrono::nanoseconds(static_cast<long long>(seconds * 1e9));
    return true;
  }
  PyErr_SetString(PyExc_TypeError, message);
  return false;
}

int convert_unsigned_int(PyObject* object, void* out_value) {
  PyObject* index = PyNumber_Index(object);
  if (!index) return 0;
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (value == -1 && PyErr_Occurred()) return 0;
  if (overflow < 0 || (overflow == 0 && value < 0)) {
    PyErr_SetString(PyExc_ValueError, "Invalid parameter(s)");
    return 0;
  }
  if (overflow > 0 || value > static_cast<long long>(UINT_MAX)) {
    PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C unsigned int");
    return 0;
  }
  *static_cast<unsigned*>(out_value) = static_cast<unsigned>(value);
  return 1;
}

int convert_size(PyObject* object, void* out_value) {
  if (!PyLong_Check(object)) {
    // Same text as upstream's "k" format, which names the positional slot even for keywords.
    PyErr_Format(PyExc_TypeError, "argument 4 must be int, not %.50s", Py_TYPE(object)->tp_name);
    return 0;
  }
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
  if (value == -1 && PyErr_Occurred()) return 0;
  if (overflow < 0 || (overflow == 0 && value < 0)) {
    // Upstream wraps -1 to 2**64-1, which ftruncate rejects with this very message (DC-26).
    PyErr_SetString(PyExc_ValueError, "The size is invalid or the memory is read-only");
    return 0;
  }
  if (overflow > 0) {
    PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C long");
    return 0;
  }
  *static_cast<unsigned long long*>(out_value) = static_cast<unsigned long long>(value);
  return 1;
}

int convert_key(PyObject* object, void* out_key) {
  auto& key = *static_cast<OptionalKey*>(out_key);
  if (object == Py_None) {
    key.reset();
    return 1;
  }
  if (PyLong_Check(object)) {
    const long value = PyLong_AsLong(object);
    if (!(value == -1 && PyErr_Occurred())) {
      key = value;
      return 1;
    }
    PyErr_Clear();
  }
  PyErr_SetString(PyExc_TypeError, "Key must be an integer or None");
  return 0;
}

bool long_from_int(PyObject* object, long& value, const char* type_message) {
  if (!PyLong_Check(object)) {
    PyErr_SetString(PyExc_TypeError, type_message);
    return false;
  }
  value = PyLong_AsLong(object);
  return !(value == -1 && PyErr_Occurred());
}

PackedArguments::PackedArguments(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  tuple_ = PyTuple_New(nargs);
  if (!tuple_) return;
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    Py_INCREF(args[i]);
    PyTuple_SET_ITEM(tuple_, i, args[i]);
  }
  if (!kwnames || PyTuple_GET_SIZE(kwnames) == 0) return;
  has_keywords_ = true;
  PyObject* dict = PyDict_New();
  if (!dict) return;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
    if (PyDict_SetItem(dict, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
      Py_DECREF(dict);
      return;
    }
  }
  dict_ = dict;
}

PackedArguments::~PackedArguments() {
  Py_XDECREF(tuple_);
  Py_XDECREF(dict_);
}

}  // namespace ipcxx::python

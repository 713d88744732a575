// HeldBuffer: the one owner of a Py_buffer that a call borrows from a Python object.
#pragma once

#include <Python.h>

#include <cstddef>
#include <span>

namespace ipcxx::python {

/// A Py_buffer held for the whole call, so its exporter cannot resize or free the memory
/// meanwhile; released by the destructor, which must run with the GIL (or the object's
/// critical section on free-threaded builds) held, like every PyBuffer_Release. Fill it either
/// with get() or by handing slot() to PyArg_Parse's "s*"/"w*"/"y*" (which release it themselves
/// when a later argument fails, leaving it empty). Movable, so a batch can keep a vector of them.
class HeldBuffer {
 public:
  HeldBuffer() = default;
  HeldBuffer(HeldBuffer&& other) noexcept : view_(other.view_) { other.view_ = Py_buffer{}; }
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  HeldBuffer& operator=(HeldBuffer&&) = delete;
  ~HeldBuffer() {
    if (view_.obj) PyBuffer_Release(&view_);
  }

  /// PyObject_GetBuffer(object, flags) into this holder; false with a Python error set.
  bool get(PyObject* object, int flags) { return PyObject_GetBuffer(object, &view_, flags) == 0; }

  /// The Py_buffer for PyArg_Parse's buffer formats to fill; this holder releases it.
  Py_buffer* slot() { return &view_; }

  /// The held bytes (read-only, or writable when obtained with PyBUF_WRITABLE / "w*").
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }
  std::span<std::byte> writable_bytes() const {
    return {static_cast<std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }
  Py_ssize_t size() const { return view_.len; }

 private:
  Py_buffer view_{};
};

}  // namespace ipcxx::python

// posix_ipc.SharedMemory: argument conversion and errors around posix::SharedMemory.
#include "ipcxx/posix/shared_memory.hpp"

#include <fcntl.h>

#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <utility>

#include "common/conversions.hpp"
#include "common/object_lock.hpp"
#include "ipcxx/posix/mapping.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "posix_ipc/errors.hpp"
#include "posix_ipc/types.hpp"

namespace ipcxx::python::posix_types {

namespace {

using posix_errors::guarded;
using posix_errors::Operation;

// `handle`, `mapping` and `name` are read and replaced under `lock` (docs/free-threading.md),
// and so are the short syscalls on the descriptor (close, fstat, mmap, shm_unlink): a
// close_fd() on another thread must not close the number between its read and its use (the
// number may be reused by another file at once). Errors are translated after the lock.
struct SharedMemoryObject {
  PyObject_HEAD
  std::optional<posix::SharedMemory> handle;  // empty until __init__ succeeds
  // ipcxx's own mapping, made by the first buffer export; each view shares it (through
  // Py_buffer.internal), so views stay valid after close_fd(), unlink() or a new __init__.
  std::shared_ptr<posix::Mapping> mapping;
  PyObject* name;
  Field<long> mode;
  ObjectLock lock;
};

SharedMemoryObject* as_memory(PyObject* self) {
  return reinterpret_cast<SharedMemoryObject*>(self);
}

int descriptor_of(SharedMemoryObject* memory) {
  ObjectLockGuard guard(memory->lock);
  return memory->handle ? memory->handle->fd() : -1;
}

// Runs `body` under the object's lock and returns what it threw (nothing: null), to be
// translated once the lock is let go (raising allocates, which may run Python code).
template <typename Body>
std::exception_ptr under_lock(SharedMemoryObject* memory, Body&& body) {
  try {
    ObjectLockGuard guard(memory->lock);
    body();
    return nullptr;
  } catch (...) {
    return std::current_exception();
  }
}

// Translates what under_lock() returned; true when it was nothing.
bool translated(PyObject* self, Operation operation, const std::exception_ptr& failure) {
  return !failure || guarded(self, operation, [&] { std::rethrow_exception(failure); });
}

PyObject* memory_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_memory(self)->handle) std::optional<posix::SharedMemory>();
  new (&as_memory(self)->mapping) std::shared_ptr<posix::Mapping>();
  new (&as_memory(self)->mode) Field<long>();
  new (&as_memory(self)->lock) ObjectLock();
  return self;
}

void memory_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  SharedMemoryObject* memory = as_memory(self);
  // The descriptor is public (`fd`) and user code maps it after dropping the object, so it
  // stays open as upstream promises (compatibility.md DC-1).
  if (memory->handle) memory->handle->release_fd();
  memory->handle.~optional();
  memory->mapping.~shared_ptr();
  memory->lock.~ObjectLock();
  Py_CLEAR(memory->name);
  type->tp_free(self);
  Py_DECREF(type);
}

int memory_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"name", "flags", "mode", "size", "read_only", nullptr};
  OptionalName name;
  unsigned flags = 0;
  int mode = 0600;
  unsigned long long size = 0;
  int read_only = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|O&iO&i", const_cast<char**>(keywords),
                                   convert_name, &name, convert_unsigned_int, &flags, &mode,
                                   convert_size, &size, &read_only))
    return -1;
  const int open_flags = static_cast<int>(flags);
  const Operation operation =
      (open_flags & O_TRUNC) ? Operation::memory_open_truncating : Operation::memory_open;
  if (!guarded(self, operation, [&] { posix::validate_open_flags(open_flags); })) return -1;
  if (!name && !(open_flags & O_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Name can only be None if O_EXCL is set");
    return -1;
  }
  std::optional<posix::SharedMemory> opened;
  const bool ok = guarded(self, operation, [&] {
    const auto bytes = static_cast<std::size_t>(size);
    if (name)
      opened.emplace(*name, open_flags, static_cast<mode_t>(mode), bytes, read_only != 0);
    else
      opened.emplace(posix::SharedMemory::create_unique(open_flags, static_cast<mode_t>(mode),
                                                        bytes, read_only != 0));
  });
  if (!ok) return -1;
  PyObject* name_object = name_to_python(opened->name());
  if (!name_object) return -1;
  SharedMemoryObject* memory = as_memory(self);
  PyObject* old_name = nullptr;
  std::shared_ptr<posix::Mapping> old_mapping;
  {
    ObjectLockGuard guard(memory->lock);
    // Re-running __init__ replaces the handle; the old descriptor stays open like upstream's.
    if (memory->handle) memory->handle->release_fd();
    old_name = std::exchange(memory->name, name_object);
    memory->handle = std::move(opened);
    // The next export maps the new segment; old views keep theirs.
    old_mapping = std::exchange(memory->mapping, nullptr);
    memory->mode = stored_mode(mode);
  }
  // After the lock: the last reference unmaps (a syscall), and the name's release may run
  // Python code.
  old_mapping.reset();
  Py_XDECREF(old_name);
  return 0;
}

PyObject* memory_close_fd(PyObject* self, PyObject*) {
  SharedMemoryObject* memory = as_memory(self);
  const std::exception_ptr failure = under_lock(memory, [&] {
    if (memory->handle && memory->handle->fd() >= 0) memory->handle->close_fd();
  });
  if (!translated(self, Operation::memory_close, failure)) return nullptr;
  Py_RETURN_NONE;
}

PyObject* memory_fileno(PyObject* self, PyObject*) {
  return PyLong_FromLong(descriptor_of(as_memory(self)));
}

PyObject* memory_unlink(PyObject* self, PyObject*) {
  SharedMemoryObject* memory = as_memory(self);
  bool opened = false;
  const std::exception_ptr failure = under_lock(memory, [&] {
    opened = memory->handle.has_value();
    if (opened) memory->handle->unlink();
  });
  if (!opened) {
    PyErr_SetString(posix_errors::classes(self).existential_error,
                    "No shared memory exists with the specified name");
    return nullptr;
  }
  if (!translated(self, Operation::memory_unlink, failure)) return nullptr;
  Py_RETURN_NONE;
}

PyObject* memory_get_size(PyObject* self, void*) {
  SharedMemoryObject* memory = as_memory(self);
  bool open = false;
  std::size_t size = 0;
  const std::exception_ptr failure = under_lock(memory, [&] {
    open = memory->handle && memory->handle->fd() >= 0;
    if (open) size = memory->handle->size();
  });
  if (!open) {
    PyErr_SetString(posix_errors::classes(self).existential_error, "The segment does not exist");
    return nullptr;
  }
  if (!translated(self, Operation::memory_size, failure)) return nullptr;
  return PyLong_FromSize_t(size);
}

PyObject* memory_get_fd(PyObject* self, void*) { return memory_fileno(self, nullptr); }

PyObject* memory_get_name(PyObject* self, void*) {
  SharedMemoryObject* memory = as_memory(self);
  return new_reference_under(memory->lock, memory->name);
}

PyObject* memory_get_mode(PyObject* self, void*) { return PyLong_FromLong(as_memory(self)->mode); }

PyObject* memory_str(PyObject* self) {
  SharedMemoryObject* memory = as_memory(self);
  PyObject* name = new_reference_under(memory->lock, memory->name);
  if (name != Py_None) return name;
  Py_DECREF(name);
  return PyUnicode_FromString("(no name)");
}

PyObject* memory_repr(PyObject* self) {
  SharedMemoryObject* memory = as_memory(self);
  PyObject* mode = octal_mode(memory->mode);
  if (!mode) return nullptr;
  // A new reference: __init__ on another thread may release the old name meanwhile.
  PyObject* name = new_reference_under(memory->lock, memory->name);
  PyObject* result =
      name != Py_None
          ? PyUnicode_FromFormat("posix_ipc.SharedMemory(\"%U\", mode=%U)", name, mode)
          : PyUnicode_FromFormat("posix_ipc.SharedMemory(\"(no name)\", mode=%U)", mode);
  Py_DECREF(name);
  Py_DECREF(mode);
  return result;
}

// ---- buffer protocol (an ipcxx extension: upstream users mmap `fd` themselves) --------------

int refuse_export(Py_buffer* view, PyObject* type, const char* message) {
  PyErr_SetString(type, message);
  view->obj = nullptr;
  return -1;
}

int memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  SharedMemoryObject* memory = as_memory(self);
  bool no_descriptor = false;
  std::shared_ptr<posix::Mapping> mapping;
  // The first export maps under the lock, so two first exports make one mapping and a
  // close_fd() cannot close the descriptor during the mmap.
  const std::exception_ptr failure = under_lock(memory, [&] {
    if (!memory->mapping) {
      if (!memory->handle || !memory->handle->has_fd()) {
        no_descriptor = true;
        return;
      }
      memory->mapping = std::make_shared<posix::Mapping>(memory->handle->map());
    }
    mapping = memory->mapping;
  });
  if (no_descriptor)
    return refuse_export(view, PyExc_BufferError,
                         "The segment has no open descriptor to map (export it before "
                         "close_fd())");
  if (!translated(self, Operation::memory_map, failure)) {
    view->obj = nullptr;
    return -1;
  }
  auto* pin = new (std::nothrow) std::shared_ptr<posix::Mapping>(std::move(mapping));
  if (!pin) return refuse_export(view, PyExc_MemoryError, "Out of memory");
  const std::span<std::byte> bytes = (*pin)->bytes();
  // A segment of size 0 has no mapping; its view is empty but needs a non-null address.
  static char empty_segment = 0;
  void* address = bytes.empty() ? static_cast<void*>(&empty_segment) : bytes.data();
  if (PyBuffer_FillInfo(view, self, address, static_cast<Py_ssize_t>(bytes.size()),
                        (*pin)->writable() ? 0 : 1, flags) < 0) {
    delete pin;
    return -1;
  }
  view->internal = pin;
  return 0;
}

void memory_releasebuffer(PyObject*, Py_buffer* view) {
  // The last view of a mapping the object no longer holds unmaps it here.
  delete static_cast<std::shared_ptr<posix::Mapping>*>(view->internal);
}

PyMethodDef memory_methods[] = {
    {"close_fd", memory_close_fd, METH_NOARGS,
     "close_fd($self, /)\n--\n\nClose the descriptor (fd becomes -1); existing mmaps stay "
     "valid. Does nothing when already closed."},
    {"fileno", memory_fileno, METH_NOARGS,
     "fileno($self, /)\n--\n\nThe descriptor, as for selectors; -1 once closed."},
    {"unlink", memory_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\nRemove the name; memory is freed when nobody maps it any more."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef memory_getset[] = {
    {"name", memory_get_name, reject_write, "The name of the segment (read-only).", nullptr},
    {"mode", memory_get_mode, reject_write,
     "The permission bits given when the object was made (read-only).", nullptr},
    {"fd", memory_get_fd, reject_write, "The file descriptor to mmap; -1 once closed.", nullptr},
    {"size", memory_get_size, nullptr, "The current size in bytes, read live (read-only).",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot memory_slots[] = {{Py_tp_doc, const_cast<char*>("POSIX shared memory object")},
                              {Py_tp_new, reinterpret_cast<void*>(memory_new)},
                              {Py_tp_init, reinterpret_cast<void*>(memory_init)},
                              {Py_tp_dealloc, reinterpret_cast<void*>(memory_dealloc)},
                              {Py_tp_methods, memory_methods},
                              {Py_tp_getset, memory_getset},
                              {Py_tp_str, reinterpret_cast<void*>(memory_str)},
                              {Py_tp_repr, reinterpret_cast<void*>(memory_repr)},
                              {Py_bf_getbuffer, reinterpret_cast<void*>(memory_getbuffer)},
                              {Py_bf_releasebuffer, reinterpret_cast<void*>(memory_releasebuffer)},
                              {0, nullptr}};

}  // namespace

PyType_Spec& shared_memory_spec() {
  static PyType_Spec spec = {"posix_ipc.SharedMemory", sizeof(SharedMemoryObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, memory_slots};
  return spec;
}

}  // namespace ipcxx::python::posix_types

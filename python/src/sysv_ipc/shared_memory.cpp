// sysv_ipc.SharedMemory: argument conversion, buffer export and errors around
// sysv::SharedMemory and its Attachment.
#include "ipcxx/sysv/shared_memory.hpp"

#include <sys/ipc.h>
#include <sys/shm.h>

#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "common/conversions.hpp"
#include "common/held_buffer.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "sysv_ipc/errors.hpp"
#include "sysv_ipc/state.hpp"
#include "sysv_ipc/types.hpp"

namespace ipcxx::python::sysv_types {

namespace {

using sysv_errors::guarded;
using sysv_errors::Operation;

// One attachment and the buffer views exported from it. The object points at its current
// Mapping; each view's Py_buffer.internal points at the Mapping it came from, so releasing the
// view reaches it after the object detached or attached elsewhere. Views hold the object
// (Py_buffer.obj), so the object outlives every view (DC-20) and every Mapping it left.
struct Mapping {
  sysv::Attachment attachment;
  Py_ssize_t exports = 0;  // under the object's lock
  // Held while the object is attached here or a view uses the range: SHM_REMAP over it is
  // refused (compatibility.md), so no other attachment can take the address from under it.
  sysv::RangePin pin;
  // detach() ran while views were alive: the shmdt happens at the last release (DC-1).
  // Under the object's lock.
  bool detach_when_released = false;
};

// `mapping`, every Mapping's `exports` and `detach_when_released`, and the decision to retire
// a Mapping are read and changed under `lock` (docs/free-threading.md); the retiring itself
// (shmdt, unpinning) happens after it, once no thread can reach that Mapping any more.
struct SharedMemoryObject {
  PyObject_HEAD
  Field<long> key;
  Field<int> id;  // -1 until __init__ succeeds (DC-19)
  // Whether the last attachment was read-only; kept after detach() like upstream (DC-32).
  // Written with `mapping`, under `lock`.
  Field<bool> read_only;
  Mapping* mapping;  // nullptr while detached
  ObjectLock lock;
};

SharedMemoryObject* as_memory(PyObject* self) {
  return reinterpret_cast<SharedMemoryObject*>(self);
}

sysv::SharedMemory core(const SharedMemoryObject* memory) {
  return sysv::SharedMemory::from_id(memory->id, static_cast<key_t>(memory->key));
}

sysv_errors::Subject subject_of(const SharedMemoryObject* memory) {
  return {memory->key, memory->id, 0};
}

PyObject* memory_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  SharedMemoryObject* memory = as_memory(self);
  new (&memory->key) Field<long>(-1);
  new (&memory->id) Field<int>(-1);
  new (&memory->read_only) Field<bool>();
  memory->mapping = nullptr;
  new (&memory->lock) ObjectLock();
  return self;
}

// A Mapping the object no longer points at, once no view uses it: unmapped if detach() asked
// for it, else left mapped (an earlier attachment stays, DC-21; a collected object's, DC-20).
// Called outside the lock: no thread can reach such a Mapping any more.
void retire(Mapping* mapping) noexcept {
  if (mapping->exports > 0) return;  // the last view's release comes back here
  if (mapping->detach_when_released) {
    try {
      mapping->attachment.detach();
    } catch (...) {
      // Nobody to tell: detach() already returned. The mapping is gone or was never there.
    }
  } else {
    mapping->attachment.release();
  }
  delete mapping;
}

// Views keep the object alive, so nothing is exported from any of its mappings now.
void memory_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  SharedMemoryObject* memory = as_memory(self);
  // Collection never detaches: the address may be in use elsewhere (sysv DC-20, kept).
  if (Mapping* current = std::exchange(memory->mapping, nullptr)) retire(current);
  memory->lock.~ObjectLock();
  type->tp_free(self);
  Py_DECREF(type);
}

Mapping* current_mapping(PyObject* self) {
  SharedMemoryObject* memory = as_memory(self);
  ObjectLockGuard guard(memory->lock);
  return memory->mapping;
}

// The current Mapping with one more export (a view, or a read()/write() copying through it),
// or nullptr when detached. A detach() or attach() on another thread then leaves it mapped
// until release_export().
Mapping* take_export(SharedMemoryObject* memory) {
  ObjectLockGuard guard(memory->lock);
  Mapping* mapping = memory->mapping;
  if (mapping) ++mapping->exports;
  return mapping;
}

// Gives back an export of take_export(); the last one of a Mapping the object left retires it.
void release_export(SharedMemoryObject* memory, Mapping* mapping) noexcept {
  bool last = false;
  {
    ObjectLockGuard guard(memory->lock);
    last = --mapping->exports == 0 && mapping != memory->mapping;
  }
  if (last) retire(mapping);
}

// The Mapping one read()/write() copies through. With object locks on it is a temporary export,
// so the copy (outside the lock: it may be large) never meets an unmapped range. On a regular
// build it is the raw pointer: the GIL is held from this read to the end of the copy, with no
// Python code in between, so the hot path pays no count.
class UsedMapping {
 public:
  explicit UsedMapping(SharedMemoryObject* memory)
#if IPCXX_OBJECT_LOCKS_ON
      : memory_(memory), mapping_(take_export(memory)) {
  }
  ~UsedMapping() {
    if (mapping_) release_export(memory_, mapping_);
  }
#else
      : mapping_(memory->mapping) {
  }
#endif
  UsedMapping(const UsedMapping&) = delete;
  UsedMapping& operator=(const UsedMapping&) = delete;
  const Mapping* get() const noexcept { return mapping_; }

 private:
#if IPCXX_OBJECT_LOCKS_ON
  SharedMemoryObject* memory_;
#endif
  Mapping* mapping_;
};

// Makes `fresh` (holding the new attachment) the object's mapping, pinned; a previous mapping
// stays mapped, as upstream (DC-21). False with MemoryError set (and `fresh` detached) when the
// pin cannot be stored.
bool adopt(SharedMemoryObject* memory, std::unique_ptr<Mapping> fresh) {
  try {
    fresh->pin = sysv::RangePin(fresh->attachment.address(), fresh->attachment.size());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return false;  // `fresh` detaches on destruction
  }
  Mapping* previous = nullptr;
  {
    ObjectLockGuard guard(memory->lock);
    memory->read_only = fresh->attachment.read_only();
    previous = std::exchange(memory->mapping, fresh.release());
    // One with live views is retired by the last view's release (it is no longer current).
    if (previous && previous->exports > 0) previous = nullptr;
  }
  if (previous) retire(previous);
  return true;
}

// A Mapping allocated before the attach, so no attachment is lost to a failed allocation.
std::unique_ptr<Mapping> new_mapping() {
  std::unique_ptr<Mapping> mapping(new (std::nothrow) Mapping);
  if (!mapping) PyErr_NoMemory();
  return mapping;
}

int convert_init_character(PyObject* object, void* out) {
  const char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_Check(object)) {
    data = PyBytes_AS_STRING(object);
    size = PyBytes_GET_SIZE(object);
  } else if (PyByteArray_Check(object)) {
    data = PyByteArray_AS_STRING(object);
    size = PyByteArray_GET_SIZE(object);
  }
  if (!data || size != 1) {
    PyErr_Format(PyExc_TypeError, "argument 5 must be a byte string of length 1, not %.50s",
                 Py_TYPE(object)->tp_name);
    return 0;
  }
  *static_cast<std::byte*>(out) = static_cast<std::byte>(data[0]);
  return 1;
}

// Upstream's "k" conversions wrap modulo 2**64 (DC-23): here a negative or too large value is
// reported as `huge` so the caller raises the range error its nearest check uses.
int convert_unsigned_long_at(PyObject* object, int position, unsigned long& value, bool& huge) {
  if (!PyLong_Check(object)) {
    PyErr_Format(PyExc_TypeError, "argument %d must be int, not %.50s", position,
                 Py_TYPE(object)->tp_name);
    return 0;
  }
  int overflow = 0;
  const long long number = PyLong_AsLongLongAndOverflow(object, &overflow);
  if (number == -1 && PyErr_Occurred()) return 0;
  huge = overflow != 0 || number < 0;
  value = huge ? ULONG_MAX : static_cast<unsigned long>(number);
  return 1;
}

int memory_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"key", "flags", "mode", "size", "init_character", nullptr};
  OptionalKey key;
  int flags = 0;
  int mode = 0600;
  PyObject* size_object = nullptr;
  std::byte fill{' '};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|iiOO&", const_cast<char**>(keywords),
                                   convert_key, &key, &flags, &mode, &size_object,
                                   convert_init_character, &fill))
    return -1;
  unsigned long size = 0;
  bool huge = false;
  if (size_object && !convert_unsigned_long_at(size_object, 4, size, huge)) return -1;
  const sysv_errors::Subject subject{key.value_or(0), -1, mode};
  if (!guarded(self, Operation::memory_get, subject, [&] { sysv::validate_get_flags(flags); }))
    return -1;
  if (!key && !(flags & IPC_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Key can only be None if IPC_EXCL is set");
    return -1;
  }
  if (huge) {
    PyErr_SetString(PyExc_ValueError, "The size is invalid");
    return -1;
  }
  std::unique_ptr<Mapping> fresh = new_mapping();
  if (!fresh) return -1;
  std::optional<sysv::AttachedMemory> opened;
  const std::optional<key_t> kernel_key =
      key ? std::optional<key_t>(static_cast<key_t>(*key)) : std::nullopt;
  if (!guarded(self, Operation::memory_get, subject, [&] {
        opened.emplace(sysv::open_attached(kernel_key, flags, mode & 0777, size, fill));
      }))
    return -1;
  SharedMemoryObject* memory = as_memory(self);
  memory->key = opened->memory.key();
  memory->id = opened->memory.id();
  fresh->attachment = std::move(opened->attachment);
  return adopt(memory, std::move(fresh)) ? 0 : -1;
}

// ---- attach / detach -------------------------------------------------------------------------

bool address_from(PyObject* object, const void*& address) {
  if (!object || object == Py_None) {
    address = nullptr;
    return true;
  }
  if (!PyLong_Check(object)) {
    PyErr_SetString(PyExc_TypeError, "address must be a long");
    return false;
  }
  const unsigned long long value = PyLong_AsUnsignedLongLongMask(object);
  if (value == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
  address = reinterpret_cast<const void*>(static_cast<std::uintptr_t>(value));
  return true;
}

PyObject* attach_into(PyObject* self, PyObject* address_object, int flags) {
  const void* address = nullptr;
  if (!address_from(address_object, address)) return nullptr;
  SharedMemoryObject* memory = as_memory(self);
  std::unique_ptr<Mapping> fresh = new_mapping();
  if (!fresh) return nullptr;
  // SHM_REMAP over a range a live view uses is refused by the core with ValueError.
  if (!guarded(self, Operation::memory_attach, subject_of(memory),
               [&] { fresh->attachment = core(memory).attach(address, flags); }))
    return nullptr;
  if (!adopt(memory, std::move(fresh))) return nullptr;
  Py_RETURN_NONE;
}

PyObject* memory_attach(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"address", "flags", nullptr};
  PyObject* address = Py_None;
  int flags = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Oi", const_cast<char**>(keywords), &address,
                                   &flags))
    return nullptr;
  return attach_into(self, address, flags);
}

PyObject* memory_detach(PyObject* self, PyObject*) {
  SharedMemoryObject* memory = as_memory(self);
  std::unique_ptr<Mapping> detached;
  {
    ObjectLockGuard guard(memory->lock);
    // The object is detached at once, whether or not shmdt succeeds (as upstream).
    detached.reset(std::exchange(memory->mapping, nullptr));
    if (detached && detached->exports > 0) {
      // Upstream unmaps under the views and their next access crashes; here the shmdt waits
      // for the last view's release (DC-1 revised).
      detached.release()->detach_when_released = true;
      Py_RETURN_NONE;
    }
  }
  if (!detached) {
    PyErr_SetNone(sysv_errors::classes(self).not_attached_error);
    return nullptr;
  }
  // No view and no longer current: no other thread can reach it, so shmdt runs unlocked.
  if (!guarded(self, Operation::memory_detach, subject_of(memory),
               [&] { detached->attachment.detach(); }))
    return nullptr;
  Py_RETURN_NONE;
}

// ---- read / write ----------------------------------------------------------------------------

PyObject* memory_read(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"byte_count", "offset", nullptr};
  long byte_count = 0;
  PyObject* offset_object = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|lO", const_cast<char**>(keywords), &byte_count,
                                   &offset_object))
    return nullptr;
  unsigned long offset = 0;
  bool huge = false;
  if (offset_object && !convert_unsigned_long_at(offset_object, 2, offset, huge)) return nullptr;
  const UsedMapping used(as_memory(self));
  const Mapping* mapping = used.get();
  if (!mapping) {
    PyErr_SetString(sysv_errors::classes(self).not_attached_error,
                    "Read attempt on unattached memory segment");
    return nullptr;
  }
  // The size is fixed while attached, so it is known without an IPC_STAT call (DC-34).
  const std::size_t size = mapping->attachment.size();
  if (huge || offset >= size) {
    PyErr_SetString(PyExc_ValueError, "The offset must be less than the segment size");
    return nullptr;
  }
  if (byte_count < 0) {
    PyErr_SetString(PyExc_ValueError, "The byte_count cannot be negative");
    return nullptr;
  }
  std::size_t count = static_cast<std::size_t>(byte_count);
  if (count == 0 || count > size - offset) count = size - offset;
  return PyBytes_FromStringAndSize(static_cast<const char*>(mapping->attachment.address()) + offset,
                                   static_cast<Py_ssize_t>(count));
}

PyObject* memory_write(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"s", "offset", nullptr};
  HeldBuffer data;
  PyObject* offset_object = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s*|O", const_cast<char**>(keywords), data.slot(),
                                   &offset_object))
    return nullptr;
  unsigned long offset = 0;
  bool huge = false;
  if (offset_object && !convert_unsigned_long_at(offset_object, 2, offset, huge)) return nullptr;
  SharedMemoryObject* memory = as_memory(self);
  const UsedMapping used(memory);
  const Mapping* mapping = used.get();
  // The mapping's own flag, not the object's: another thread may have attached elsewhere
  // since `read_only` was read (a write through a read-only mapping is a SIGSEGV). Detached,
  // the object's flag decides which error comes first, as upstream (DC-32).
  if (mapping ? mapping->attachment.read_only() : static_cast<bool>(memory->read_only)) {
    PyErr_SetString(PyExc_OSError, "Write attempt on read-only memory segment");
    return nullptr;
  }
  if (!mapping) {
    PyErr_SetString(sysv_errors::classes(self).not_attached_error,
                    "Write attempt on unattached memory segment");
    return nullptr;
  }
  const std::size_t size = mapping->attachment.size();
  const auto length = data.bytes().size();
  if (huge || offset > size || length > size - offset) {
    PyErr_SetString(PyExc_ValueError, "Attempt to write past end of memory segment");
    return nullptr;
  }
  // memmove: the source may be a view of this very segment (DC-22).
  std::memmove(static_cast<char*>(mapping->attachment.address()) + offset, data.bytes().data(),
               length);
  Py_RETURN_NONE;
}

PyObject* memory_remove(PyObject* self, PyObject*) {
  SharedMemoryObject* memory = as_memory(self);
  if (!guarded(self, Operation::memory_remove, subject_of(memory), [&] { core(memory).remove(); }))
    return nullptr;
  Py_RETURN_NONE;
}

// ---- buffer protocol -------------------------------------------------------------------------

int memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  SharedMemoryObject* memory = as_memory(self);
  // Counted before PyBuffer_FillInfo, which runs outside the lock (its error allocates).
  Mapping* mapping = take_export(memory);
  if (!mapping) {
    // Upstream exports a view of address 0 (DC-3).
    PyErr_SetString(sysv_errors::classes(self).not_attached_error,
                    "Buffer request on unattached memory segment");
    view->obj = nullptr;
    return -1;
  }
  // The current mapping is pinned since its attach (adopt), and stays so while views live.
  const sysv::Attachment& attachment = mapping->attachment;
  // A read-only attachment exports a read-only buffer (upstream: writable, then SIGSEGV: DC-2).
  if (PyBuffer_FillInfo(view, self, attachment.address(),
                        static_cast<Py_ssize_t>(attachment.size()), attachment.read_only() ? 1 : 0,
                        flags) < 0) {
    release_export(memory, mapping);
    return -1;
  }
  view->internal = mapping;  // the release finds this Mapping even after the object moved on
  return 0;
}

void memory_releasebuffer(PyObject* self, Py_buffer* view) {
  // The object's current mapping stays pinned; one it left goes at its last release (retire
  // unpins it).
  release_export(as_memory(self), static_cast<Mapping*>(view->internal));
}

// ---- attributes ------------------------------------------------------------------------------

template <typename Read>
PyObject* live(PyObject* self, Read read) {
  SharedMemoryObject* memory = as_memory(self);
  long long value = 0;
  if (!guarded(self, Operation::memory_stat, subject_of(memory),
               [&] { value = static_cast<long long>(read(core(memory).status())); }))
    return nullptr;
  return PyLong_FromLongLong(value);
}

PyObject* get_key(PyObject* self, void*) { return PyLong_FromLong(as_memory(self)->key); }
PyObject* get_id(PyObject* self, void*) { return PyLong_FromLong(as_memory(self)->id); }
PyObject* get_size(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.size; });
}
PyObject* get_address(PyObject* self, void*) {
  void* address = nullptr;
  {
    // Read under the lock: another thread's detach() may retire (free) the Mapping.
    SharedMemoryObject* memory = as_memory(self);
    ObjectLockGuard guard(memory->lock);
    if (memory->mapping) address = memory->mapping->attachment.address();
  }
  return PyLong_FromVoidPtr(address);
}
PyObject* get_attached(PyObject* self, void*) {
  return PyBool_FromLong(current_mapping(self) != nullptr);
}
PyObject* get_last_attach_time(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.last_attach_time; });
}
PyObject* get_last_detach_time(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.last_detach_time; });
}
PyObject* get_last_change_time(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.last_change_time; });
}
PyObject* get_creator_pid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.creator_pid; });
}
PyObject* get_last_pid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.last_pid; });
}
PyObject* get_number_attached(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.number_attached; });
}
PyObject* get_uid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.uid; });
}
PyObject* get_gid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.gid; });
}
PyObject* get_mode(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.mode; });
}
PyObject* get_cuid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.cuid; });
}
PyObject* get_cgid(PyObject* self, void*) {
  return live(self, [](const sysv::MemoryStatus& s) { return s.cgid; });
}

enum class OwnerField { uid, gid, mode };

template <OwnerField Field>
int set_owner_field(PyObject* self, PyObject* value, void*) {
  unsigned owner = 0;
  int mode = 0;
  if constexpr (Field == OwnerField::mode) {
    if (mode_for_setter(value, "attribute 'mode' must be an integer", mode) < 0) return -1;
  } else if constexpr (Field == OwnerField::uid) {
    if (owner_id_for_setter(value, "Attribute 'uid' must be an integer", owner) < 0) return -1;
  } else {
    if (owner_id_for_setter(value, "attribute 'gid' must be an integer", owner) < 0) return -1;
  }
  SharedMemoryObject* memory = as_memory(self);
  sysv::MemoryStatus now{};
  if (!guarded(self, Operation::memory_stat, subject_of(memory),
               [&] { now = core(memory).status(); }))
    return -1;
  return guarded(self, Operation::memory_set, subject_of(memory),
                 [&] {
                   core(memory).set_owner(Field == OwnerField::uid ? owner : now.uid,
                                          Field == OwnerField::gid ? owner : now.gid,
                                          Field == OwnerField::mode ? mode : now.mode);
                 })
             ? 0
             : -1;
}

PyObject* memory_str(PyObject* self) {
  return key_id_text(as_memory(self)->key, as_memory(self)->id);
}
PyObject* memory_repr(PyObject* self) {
  return class_key_text("SharedMemory", as_memory(self)->key);
}

PyMethodDef memory_methods[] = {
    {"attach", as_method<memory_attach>(), METH_VARARGS | METH_KEYWORDS,
     "Attach the segment (again) at address (None: the kernel chooses) with flags."},
    {"detach", memory_detach, METH_NOARGS,
     "Detach this object's attachment. While buffer views of it are alive the unmap waits\n"
     "for the last one's release; the object is detached at once."},
    {"read", as_method<memory_read>(), METH_VARARGS | METH_KEYWORDS,
     "Return byte_count bytes (0: all) from offset as bytes (a copy)."},
    {"write", as_method<memory_write>(), METH_VARARGS | METH_KEYWORDS,
     "Copy s (str as UTF-8, or a bytes-like object) to offset."},
    {"remove", memory_remove, METH_NOARGS,
     "Mark the segment for destruction once the last process detaches."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef memory_getset[] = {
    {"key", get_key, nullptr, "The key the segment was opened with.", nullptr},
    {"id", get_id, reject_id_write, "The kernel's id of the segment.", nullptr},
    {"size", get_size, nullptr, "The segment size in bytes, live.", nullptr},
    {"address", get_address, nullptr, "Where this object is attached; 0 when detached.", nullptr},
    {"attached", get_attached, nullptr, "Whether this object is attached.", nullptr},
    {"last_attach_time", get_last_attach_time, nullptr, "Time of the last attach.", nullptr},
    {"last_detach_time", get_last_detach_time, nullptr, "Time of the last detach.", nullptr},
    {"last_change_time", get_last_change_time, nullptr, "Time of the last change.", nullptr},
    {"creator_pid", get_creator_pid, nullptr, "Pid of the creator.", nullptr},
    {"last_pid", get_last_pid, nullptr, "Pid of the last attach or detach.", nullptr},
    {"number_attached", get_number_attached, nullptr, "Attachments in all processes.", nullptr},
    {"uid", get_uid, set_owner_field<OwnerField::uid>, "Owner's user id, live.", nullptr},
    {"gid", get_gid, set_owner_field<OwnerField::gid>, "Owner's group id, live.", nullptr},
    {"mode", get_mode, set_owner_field<OwnerField::mode>, "Permission (and state) bits, live.",
     nullptr},
    {"cuid", get_cuid, nullptr, "Creator's user id.", nullptr},
    {"cgid", get_cgid, nullptr, "Creator's group id.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot memory_slots[] = {{Py_tp_doc, const_cast<char*>("System V shared memory object")},
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
  static PyType_Spec spec = {"sysv_ipc.SharedMemory", sizeof(SharedMemoryObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, memory_slots};
  return spec;
}

PyObject* attach_by_id(PyObject* module, int id, PyObject* address, int flags) {
  PyObject* type_object = sysv_state::of(module).shared_memory_type;
  if (!type_object) {
    PyErr_SetString(PyExc_RuntimeError, "sysv_ipc is being torn down");
    return nullptr;
  }
  PyObject* self = memory_new(reinterpret_cast<PyTypeObject*>(type_object), nullptr, nullptr);
  if (!self) return nullptr;
  SharedMemoryObject* memory = as_memory(self);
  memory->id = id;
  memory->key = -1;  // upstream leaves this uninitialised (sysv DC-18)
  PyObject* result = attach_into(self, address, flags);
  if (!result) {
    Py_DECREF(self);
    return nullptr;
  }
  Py_DECREF(result);
  return self;
}

}  // namespace ipcxx::python::sysv_types

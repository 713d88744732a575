// sysv_ipc.MessageQueue: argument conversion, GIL handling and errors around
// sysv::MessageQueue.
#include "ipcxx/sysv/message_queue.hpp"

#include <sys/ipc.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <new>
#include <optional>
#include <span>

#include "common/blocking_call.hpp"
#include "common/borrowed_scratch.hpp"
#include "common/conversions.hpp"
#include "common/held_buffer.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "common/python_compat.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "sysv_ipc/errors.hpp"
#include "sysv_ipc/types.hpp"

namespace ipcxx::python::sysv_types {

namespace {

using sysv_errors::guarded;
using sysv_errors::Operation;

constexpr unsigned long kMessageSizeLimit = LONG_MAX;

// As for sysv.Semaphore, the kernel validates the id of every call, so the fields are Field<>
// only to be no data race without the GIL; a receive sizes its buffer from one read of
// max_message_size (docs/free-threading.md).
struct MessageQueueObject {
  PyObject_HEAD
  Field<long> key;
  Field<int> id;  // -1 until __init__ succeeds (DC-19)
  Field<unsigned long> max_message_size;
};

MessageQueueObject* as_queue(PyObject* self) { return reinterpret_cast<MessageQueueObject*>(self); }

sysv::MessageQueue core(const MessageQueueObject* queue) {
  return sysv::MessageQueue::from_id(queue->id, static_cast<key_t>(queue->key));
}

sysv_errors::Subject subject_of(const MessageQueueObject* queue) {
  return {queue->key, queue->id, 0};
}

PyObject* queue_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  MessageQueueObject* queue = as_queue(self);
  new (&queue->key) Field<long>();
  new (&queue->id) Field<int>(-1);
  new (&queue->max_message_size) Field<unsigned long>(2048);
  return self;
}

void queue_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* message_size_error() {
  // Upstream's text, trailing newline included.
  PyErr_Format(PyExc_ValueError, "The message length must be <= %lu\n", kMessageSizeLimit);
  return nullptr;
}

int queue_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"key", "flags", "mode", "max_message_size", nullptr};
  OptionalKey key;
  int flags = 0;
  int mode = 0600;
  PyObject* size_object = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|iiO", const_cast<char**>(keywords),
                                   convert_key, &key, &flags, &mode, &size_object))
    return -1;
  unsigned long max_message_size = 2048;
  if (size_object) {
    if (!PyLong_Check(size_object)) {
      PyErr_Format(PyExc_TypeError, "argument 4 must be int, not %.50s",
                   Py_TYPE(size_object)->tp_name);
      return -1;
    }
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(size_object, &overflow);
    if (value == -1 && PyErr_Occurred()) return -1;
    // Negative and >= 2**63 values are refused rather than wrapped (DC-23).
    if (overflow || value < 0) {
      message_size_error();
      return -1;
    }
    max_message_size = static_cast<unsigned long>(value);
  }
  const sysv_errors::Subject subject{key.value_or(0), -1, mode};
  if (!guarded(self, Operation::queue_get, subject, [&] { sysv::validate_get_flags(flags); }))
    return -1;
  if (!key && !(flags & IPC_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Key can only be None if IPC_EXCL is set");
    return -1;
  }
  std::optional<sysv::MessageQueue> opened;
  if (!guarded(self, Operation::queue_get, subject, [&] {
        opened.emplace(key ? sysv::MessageQueue(static_cast<key_t>(*key), flags, mode)
                           : sysv::MessageQueue::create_unique(flags, mode));
      }))
    return -1;
  MessageQueueObject* queue = as_queue(self);
  queue->key = opened->key();
  queue->id = opened->id();
  queue->max_message_size = max_message_size;
  return 0;
}

// ---- send / receive ------------------------------------------------------------------------

// `block` as given: omitted means wait; otherwise its truthiness (None is False), and an
// exception from __bool__ propagates (upstream ignores it: DC-14).
int blocking_from(PyObject* block) { return block ? PyObject_IsTrue(block) : 1; }

PyObject* send_with(PyObject* self, std::span<const std::byte> bytes, int block, long type) {
  // Read the object only now: converting the arguments may have run Python code.
  MessageQueueObject* queue = as_queue(self);
  const std::size_t max_size = queue->max_message_size;
  const sysv::MessageQueue handle = core(queue);
  bool sent = false;
  // The attempt that cannot wait keeps the GIL (DC-5). The core checks the type and the
  // length first, with upstream's ValueError texts (std::invalid_argument, std::length_error).
  if (!guarded(self, Operation::queue_send, subject_of(queue),
               [&] { sent = handle.send(type, bytes, false, max_size); }))
    return nullptr;
  if (sent) Py_RETURN_NONE;
  if (!block)
    return sysv_errors::raise_errno(self, Operation::queue_send, EAGAIN, subject_of(queue));
  auto waited = blocking_call(
      // A signal handler may have re-run __init__: wait on what the object names now.
      [&] { return std::optional<sysv::MessageQueue>(core(queue)); },
      [&](sysv::MessageQueue& pinned) { return pinned.send(type, bytes, true); });
  if (!waited) return nullptr;
  if (waited->failure)
    return sysv_errors::raise_exception(self, Operation::queue_send, subject_of(queue),
                                        waited->failure);
  if (!*waited->result)
    return sysv_errors::raise_errno(self, Operation::queue_send, EAGAIN, subject_of(queue));
  Py_RETURN_NONE;
}

PyObject* queue_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!kwnames && nargs == 1 && PyBytes_CheckExact(args[0])) {
    const std::span<const std::byte> bytes(
        reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(args[0])),
        static_cast<std::size_t>(PyBytes_GET_SIZE(args[0])));
    return send_with(self, bytes, 1, 1);
  }
  static const char* keywords[] = {"message", "block", "type", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  HeldBuffer message;
  PyObject* block_object = nullptr;
  long type = 1;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "s*|Ol",
                                   const_cast<char**>(keywords), message.slot(), &block_object,
                                   &type))
    return nullptr;
  const int block = blocking_from(block_object);
  if (block < 0) return nullptr;
  return send_with(self, message.bytes(), block, type);
}

// The failure of a receive as the module reports it. A message longer than a receive_into()
// buffer (E2BIG; the message stays queued) is the caller's buffer problem, so it says so:
// `buffer_size` is that buffer's size (0 included), nullopt for receive().
PyObject* raise_receive_failure(PyObject* self, const std::exception_ptr& failure,
                                std::optional<std::size_t> buffer_size) {
  try {
    std::rethrow_exception(failure);
  } catch (const Error& error) {
    if (error.errno_value() == E2BIG && buffer_size) {
      PyErr_Format(PyExc_ValueError,
                   "The message is larger than the buffer (%zu bytes); it stays in the queue",
                   *buffer_size);
      return nullptr;
    }
    return sysv_errors::raise_current_exception(self, Operation::queue_receive,
                                                subject_of(as_queue(self)));
  } catch (...) {
    return sysv_errors::raise_current_exception(self, Operation::queue_receive,
                                                subject_of(as_queue(self)));
  }
}

// The receive path of receive() and receive_into(): the attempt that cannot wait with the GIL
// held, then, if it may, the wait. `receive(handle, wait)` returns the ReceivedMessage or
// nullopt. Returns nullopt with a Python exception set when nothing was received.
template <typename Receive>
std::optional<sysv::ReceivedMessage> receive_message(PyObject* self, int block,
                                                     std::optional<std::size_t> buffer_size,
                                                     Receive&& receive) {
  MessageQueueObject* queue = as_queue(self);
  const sysv::MessageQueue handle = core(queue);
  std::optional<sysv::ReceivedMessage> received;
  try {
    received = receive(handle, false);
  } catch (...) {
    raise_receive_failure(self, std::current_exception(), buffer_size);
    return std::nullopt;
  }
  if (received) return received;
  if (!block) {
    sysv_errors::raise_errno(self, Operation::queue_receive, ENOMSG, subject_of(queue));
    return std::nullopt;
  }
  auto waited = blocking_call(
      // A signal handler may have re-run __init__: wait on what the object names now.
      [&] { return std::optional<sysv::MessageQueue>(core(queue)); },
      [&](sysv::MessageQueue& pinned) { return receive(pinned, true); });
  if (!waited) return std::nullopt;
  if (waited->failure) {
    raise_receive_failure(self, waited->failure, buffer_size);
    return std::nullopt;
  }
  if (!*waited->result)
    sysv_errors::raise_errno(self, Operation::queue_receive, ENOMSG, subject_of(queue));
  return *waited->result;
}

// (first, second) as a new tuple; steals both, either may be null (then null).
PyObject* new_pair(PyObject* first, PyObject* second) {
  PyObject* pair = first && second ? PyTuple_New(2) : nullptr;
  if (!pair) {
    Py_XDECREF(first);
    Py_XDECREF(second);
    return nullptr;
  }
  PyTuple_SET_ITEM(pair, 0, first);
  PyTuple_SET_ITEM(pair, 1, second);
  return pair;
}

PyObject* receive_with(PyObject* self, int block, long type) {
  const std::size_t max_size = as_queue(self)->max_message_size;
  // Memory follows the message, not max_message_size (DC-26; the core grows the buffer);
  // borrowed, not shared, with nested calls.
  BasicBorrowedScratch<sysv::ReceiveBuffer> borrowed;
  sysv::ReceiveBuffer& scratch = borrowed.get();
  const std::optional<sysv::ReceivedMessage> received =
      receive_message(self, block, std::nullopt, [&](const sysv::MessageQueue& queue, bool wait) {
        return queue.receive(type, max_size, scratch, wait);
      });
  if (!received) return nullptr;
  const std::span<const std::byte> message = scratch.message(*received);
  return new_pair(PyBytes_FromStringAndSize(reinterpret_cast<const char*>(message.data()),
                                            static_cast<Py_ssize_t>(message.size())),
                  PyLong_FromLong(received->type));
}

PyObject* queue_receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  if (!kwnames && nargs == 0) return receive_with(self, 1, 0);
  static const char* keywords[] = {"block", "type", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  PyObject* block_object = nullptr;
  long type = 0;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|Ol",
                                   const_cast<char**>(keywords), &block_object, &type))
    return nullptr;
  const int block = blocking_from(block_object);
  if (block < 0) return nullptr;
  return receive_with(self, block, type);
}

// receive_into(buffer, block=True, type=0) -> (nbytes, type): an ipcxx extension.
PyObject* queue_receive_into(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"buffer", "block", "type", nullptr};
  HeldBuffer target;
  PyObject* block_object = nullptr;
  long type = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "w*|Ol", const_cast<char**>(keywords),
                                   target.slot(), &block_object, &type))
    return nullptr;
  const int block = blocking_from(block_object);
  if (block < 0) return nullptr;
  // The buffer is the only limit (docs/guide.md): max_message_size bounds receive(), whose
  // result it sizes. The scratch grows with the message, not with the buffer.
  const std::span<std::byte> into = target.writable_bytes();
  BasicBorrowedScratch<sysv::ReceiveBuffer> borrowed;
  sysv::ReceiveBuffer& scratch = borrowed.get();
  const std::optional<sysv::ReceivedMessage> received =
      receive_message(self, block, into.size(), [&](const sysv::MessageQueue& queue, bool wait) {
        return queue.receive_into(type, into, scratch, wait);
      });
  if (!received) return nullptr;
  return new_pair(PyLong_FromSize_t(received->size), PyLong_FromLong(received->type));
}

PyObject* queue_remove(PyObject* self, PyObject*) {
  MessageQueueObject* queue = as_queue(self);
  if (!guarded(self, Operation::queue_remove, subject_of(queue), [&] { core(queue).remove(); }))
    return nullptr;
  Py_RETURN_NONE;
}

// ---- attributes ------------------------------------------------------------------------------

template <typename Read>
PyObject* live(PyObject* self, Read read) {
  MessageQueueObject* queue = as_queue(self);
  long long value = 0;
  if (!guarded(self, Operation::queue_stat, subject_of(queue),
               [&] { value = static_cast<long long>(read(core(queue).status())); }))
    return nullptr;
  return PyLong_FromLongLong(value);
}

PyObject* get_key(PyObject* self, void*) { return PyLong_FromLong(as_queue(self)->key); }
PyObject* get_id(PyObject* self, void*) { return PyLong_FromLong(as_queue(self)->id); }
PyObject* get_max_size(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.max_bytes; });
}
PyObject* get_current_messages(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.current_messages; });
}
PyObject* get_last_send_time(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.last_send_time; });
}
PyObject* get_last_receive_time(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.last_receive_time; });
}
PyObject* get_last_change_time(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.last_change_time; });
}
PyObject* get_last_send_pid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.last_send_pid; });
}
PyObject* get_last_receive_pid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.last_receive_pid; });
}
PyObject* get_uid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.uid; });
}
PyObject* get_gid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.gid; });
}
PyObject* get_mode(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.mode; });
}
PyObject* get_cuid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.cuid; });
}
PyObject* get_cgid(PyObject* self, void*) {
  return live(self, [](const sysv::QueueStatus& s) { return s.cgid; });
}

enum class Field { uid, gid, mode, max_size };

template <Field Which>
int set_field(PyObject* self, PyObject* value, void*) {
  constexpr const char* kTypeMessage = "The attribute must be an integer";
  unsigned owner = 0;
  int mode = 0;
  unsigned long max_bytes = 0;
  if constexpr (Which == Field::mode) {
    if (mode_for_setter(value, kTypeMessage, mode) < 0) return -1;
  } else if constexpr (Which == Field::max_size) {
    if (!value) {
      PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'max_size'");
      return -1;
    }
    if (!PyLong_Check(value)) {
      PyErr_SetString(PyExc_TypeError, kTypeMessage);
      return -1;
    }
    int overflow = 0;
    const long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) return -1;
    // Upstream wraps modulo 2**64 and the kernel narrows it further (DC-23).
    if (overflow || number < 0) {
      PyErr_SetString(PyExc_ValueError, "max_size must be a non-negative int below 2**63");
      return -1;
    }
    max_bytes = static_cast<unsigned long>(number);
  } else {
    if (owner_id_for_setter(value, kTypeMessage, owner) < 0) return -1;
  }
  MessageQueueObject* queue = as_queue(self);
  sysv::QueueStatus now{};
  if (!guarded(self, Operation::queue_set, subject_of(queue), [&] { now = core(queue).status(); }))
    return -1;
  return guarded(self, Operation::queue_set, subject_of(queue),
                 [&] {
                   core(queue).set_attributes(Which == Field::uid ? owner : now.uid,
                                              Which == Field::gid ? owner : now.gid,
                                              Which == Field::mode ? mode : now.mode,
                                              Which == Field::max_size ? max_bytes : now.max_bytes);
                 })
             ? 0
             : -1;
}

PyObject* queue_str(PyObject* self) { return key_id_text(as_queue(self)->key, as_queue(self)->id); }
PyObject* queue_repr(PyObject* self) { return class_key_text("MessageQueue", as_queue(self)->key); }

PyMethodDef queue_methods[] = {
    {"send", as_method<queue_send>(), METH_FASTCALL | METH_KEYWORDS,
     "Send message (str as UTF-8, or bytes-like) with type (> 0). Waits while the queue is\n"
     "full unless block is false; BusyError then."},
    {"receive", as_method<queue_receive>(), METH_FASTCALL | METH_KEYWORDS,
     "Return (message, type): type 0 takes the oldest, > 0 the oldest of that type, < 0 the\n"
     "lowest type <= |type|. Waits unless block is false; BusyError then."},
    {"receive_into", as_method<queue_receive_into>(), METH_VARARGS | METH_KEYWORDS,
     "receive_into($self, /, buffer, block=True, type=0)\n--\n\n"
     "Receive like receive(), into a writable buffer: returns (nbytes, type). A message\n"
     "longer than the buffer raises ValueError and stays queued. (An ipcxx extension.)"},
    {"remove", queue_remove, METH_NOARGS,
     "Destroy the queue and its messages; waiters fail with ExistentialError."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef queue_getset[] = {
    {"key", get_key, nullptr, "The key the queue was opened with.", nullptr},
    {"id", get_id, reject_id_write, "The kernel's id of the queue.", nullptr},
    {"max_size", get_max_size, set_field<Field::max_size>, "Capacity in bytes, live.", nullptr},
    {"current_messages", get_current_messages, nullptr, "Messages in the queue now.", nullptr},
    {"last_send_time", get_last_send_time, nullptr, "Time of the last send.", nullptr},
    {"last_receive_time", get_last_receive_time, nullptr, "Time of the last receive.", nullptr},
    {"last_change_time", get_last_change_time, nullptr, "Time of the last change.", nullptr},
    {"last_send_pid", get_last_send_pid, nullptr, "Pid of the last sender.", nullptr},
    {"last_receive_pid", get_last_receive_pid, nullptr, "Pid of the last receiver.", nullptr},
    {"uid", get_uid, set_field<Field::uid>, "Owner's user id, live.", nullptr},
    {"gid", get_gid, set_field<Field::gid>, "Owner's group id, live.", nullptr},
    {"mode", get_mode, set_field<Field::mode>, "Permission bits, live.", nullptr},
    {"cuid", get_cuid, nullptr, "Creator's user id.", nullptr},
    {"cgid", get_cgid, nullptr, "Creator's group id.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot queue_slots[] = {{Py_tp_doc, const_cast<char*>("System V message queue object")},
                             {Py_tp_new, reinterpret_cast<void*>(queue_new)},
                             {Py_tp_init, reinterpret_cast<void*>(queue_init)},
                             {Py_tp_dealloc, reinterpret_cast<void*>(queue_dealloc)},
                             {Py_tp_methods, queue_methods},
                             {Py_tp_getset, queue_getset},
                             {Py_tp_str, reinterpret_cast<void*>(queue_str)},
                             {Py_tp_repr, reinterpret_cast<void*>(queue_repr)},
                             {0, nullptr}};

}  // namespace

PyType_Spec& message_queue_spec() {
  static PyType_Spec spec = {"sysv_ipc.MessageQueue", sizeof(MessageQueueObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, queue_slots};
  return spec;
}

}  // namespace ipcxx::python::sysv_types

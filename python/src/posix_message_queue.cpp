// posix_ipc.MessageQueue: argument conversion, GIL handling and errors around
// posix::MessageQueue, plus the Python side of thread notifications.
#include <fcntl.h>

#include <climits>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "conversions.hpp"
#include "errors_posix.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/message_queue.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "method_cast.hpp"
#include "posix_types.hpp"

namespace ipcxx::python::posix_types {

namespace {

using posix_errors::guarded;
using posix_errors::Operation;

constexpr const char* kBadTimeout = "The timeout must be None or a non-negative number";
constexpr const char* kBadNotification =
    "The notification must be None, an integer, or a tuple of (function, parameter)";

struct MessageQueueObject {
  PyObject_HEAD
  // Shared so a waiter that released the GIL pins the descriptor (DC-14); GIL-protected.
  std::shared_ptr<posix::MessageQueue> handle;
  PyObject* name;
  long mode;
  long max_messages;
  long max_message_size;
  bool read;
  bool write;
};

MessageQueueObject* as_queue(PyObject* self) { return reinterpret_cast<MessageQueueObject*>(self); }

bool is_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// A Python (callable, parameter) pair run by a notification thread. Its references are
// released with the GIL held, whichever thread lets go of it last.
class PythonNotification {
 public:
  PythonNotification(PyObject* callable, PyObject* parameter)
      : callable_(Py_NewRef(callable)), parameter_(Py_NewRef(parameter)) {}
  PythonNotification(const PythonNotification&) = delete;
  PythonNotification& operator=(const PythonNotification&) = delete;
  ~PythonNotification() {
    if ((!callable_ && !parameter_) || is_finalizing()) return;
    const PyGILState_STATE state = PyGILState_Ensure();
    Py_CLEAR(callable_);
    Py_CLEAR(parameter_);
    PyGILState_Release(state);
  }

  void run() {
    if (is_finalizing()) return;
    const PyGILState_STATE state = PyGILState_Ensure();
    PyObject* result = PyObject_CallOneArg(callable_, parameter_);
    // Upstream drops the callback's exception silently (DC-8): report it instead.
    if (!result) PyErr_WriteUnraisable(callable_);
    Py_XDECREF(result);
    Py_CLEAR(callable_);
    Py_CLEAR(parameter_);
    PyGILState_Release(state);
  }

 private:
  PyObject* callable_;
  PyObject* parameter_;
};

PyObject* queue_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_queue(self)->handle) std::shared_ptr<posix::MessageQueue>();
  return self;
}

void queue_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  MessageQueueObject* queue = as_queue(self);
  // `mqd` is public, so the descriptor stays open as upstream promises (DC-1).
  if (queue->handle && queue->handle.use_count() == 1) queue->handle->release_descriptor();
  queue->handle.~shared_ptr();
  Py_CLEAR(queue->name);
  type->tp_free(self);
  Py_DECREF(type);
}

int queue_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"name", "flags", "mode", "max_messages", "max_message_size",
                                   "read", "write", nullptr};
  OptionalName name;
  unsigned flags = 0;
  int mode = 0600;
  long max_messages = defaults().queue_messages_max;
  long max_message_size = defaults().queue_message_size_max;
  PyObject* read_object = Py_True;
  PyObject* write_object = Py_True;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|O&illOO", const_cast<char**>(keywords),
                                   convert_name, &name, convert_unsigned_int, &flags, &mode,
                                   &max_messages, &max_message_size, &read_object, &write_object))
    return -1;
  const int read = PyObject_IsTrue(read_object);
  if (read < 0) return -1;
  const int write = PyObject_IsTrue(write_object);
  if (write < 0) return -1;
  const int open_flags = static_cast<int>(flags);
  if (!guarded(Operation::queue_open, [&] { posix::validate_open_flags(open_flags); })) return -1;
  if (!name && !(open_flags & O_EXCL)) {
    PyErr_SetString(PyExc_ValueError, "Name can only be None if O_EXCL is set");
    return -1;
  }
  if (!read && !write) {
    PyErr_SetString(PyExc_ValueError, "At least one of read or write must be True");
    return -1;
  }
  const posix::Access access = read && write ? posix::Access::read_write
                               : read        ? posix::Access::read_only
                                             : posix::Access::write_only;
  const posix::QueueLimits limits{max_messages, max_message_size};
  std::shared_ptr<posix::MessageQueue> opened;
  const bool ok = guarded(Operation::queue_open, [&] {
    const auto permissions = static_cast<mode_t>(mode);
    opened = std::make_shared<posix::MessageQueue>(
        name ? posix::MessageQueue(*name, open_flags, permissions, limits, access)
             : posix::MessageQueue::create_unique(open_flags, permissions, limits, access));
  });
  if (!ok) return -1;
  PyObject* name_object = name_to_python(opened->name());
  if (!name_object) return -1;
  MessageQueueObject* queue = as_queue(self);
  if (queue->handle && queue->handle.use_count() == 1) queue->handle->release_descriptor();
  Py_XSETREF(queue->name, name_object);
  queue->handle = std::move(opened);
  queue->mode = stored_mode(mode);
  queue->max_messages = queue->handle->max_messages();
  queue->max_message_size = queue->handle->max_message_size();
  queue->read = read != 0;
  queue->write = write != 0;
  return 0;
}

PyObject* raise_empty() { return posix_errors::classes().queue_empty.raise(); }
PyObject* raise_full() { return posix_errors::classes().queue_full.raise(); }

// ---- send ---------------------------------------------------------------------------------

// The message's bytes: a str's UTF-8 form or any contiguous buffer, kept alive for the call.
class MessageBytes {
 public:
  MessageBytes() = default;
  MessageBytes(const MessageBytes&) = delete;
  MessageBytes& operator=(const MessageBytes&) = delete;
  ~MessageBytes() {
    if (view_.obj) PyBuffer_Release(&view_);
  }
  Py_buffer* view() { return &view_; }
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

PyObject* send_without_gil(std::shared_ptr<posix::MessageQueue> pinned,
                           std::span<const std::byte> message, unsigned priority,
                           const Timeout& timeout) {
  bool sent = false;
  int failure = 0;
  // A handler pending since the last bytecode (Ctrl-C just before this call) runs now,
  // instead of after a wait that nothing may ever end.
  if (PyErr_CheckSignals() < 0) return nullptr;
  Py_BEGIN_ALLOW_THREADS
  try {
    sent = timeout.forever ? pinned->send(message, priority)
                           : pinned->send_for(message, priority, timeout.duration);
  } catch (const Error& error) {
    failure = error.errno_value();
  }
  Py_END_ALLOW_THREADS
  if (failure != 0) return posix_errors::raise_errno(Operation::queue_send, failure);
  if (!sent) return raise_full();
  Py_RETURN_NONE;
}

PyObject* send_with(MessageQueueObject* queue, std::span<const std::byte> message,
                    PyObject* timeout_object, long priority) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  if (!queue->write) {
    PyErr_SetString(posix_errors::classes().permissions_error, "The queue is not open for writing");
    return nullptr;
  }
  if (!queue->handle) return posix_errors::raise_errno(Operation::queue_send, EBADF);
  bool sent = false;
  // The attempt that cannot wait keeps the GIL (DC-13); it also validates the message (DC-6).
  if (!guarded(Operation::queue_send, [&] {
        queue->handle->validate_send(message.size(), priority);
        sent = queue->handle->try_send(message, static_cast<unsigned>(priority));
      }))
    return nullptr;
  if (sent) Py_RETURN_NONE;
  if (timeout.is_zero()) return raise_full();
  return send_without_gil(queue->handle, message, static_cast<unsigned>(priority), timeout);
}

PyObject* queue_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  MessageQueueObject* queue = as_queue(self);
  if (!kwnames && nargs == 1 && PyBytes_CheckExact(args[0])) {
    const std::span<const std::byte> message(
        reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(args[0])),
        static_cast<std::size_t>(PyBytes_GET_SIZE(args[0])));
    return send_with(queue, message, Py_None, 0);
  }
  static const char* keywords[] = {"message", "timeout", "priority", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  MessageBytes message;
  PyObject* timeout = Py_None;
  long priority = 0;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "s*|Ol",
                                   const_cast<char**>(keywords), message.view(), &timeout,
                                   &priority))
    return nullptr;
  return send_with(queue, message.bytes(), timeout, priority);
}

// ---- receive ------------------------------------------------------------------------------

// The (message, priority) result tuple; steals `message`.
PyObject* received_pair(PyObject* message, unsigned priority) {
  if (!message) return nullptr;
  PyObject* number = PyLong_FromUnsignedLong(priority);
  PyObject* pair = number ? PyTuple_New(2) : nullptr;
  if (!pair) {
    Py_DECREF(message);
    Py_XDECREF(number);
    return nullptr;
  }
  PyTuple_SET_ITEM(pair, 0, message);
  PyTuple_SET_ITEM(pair, 1, number);
  return pair;
}

// Where the kernel writes a received message. Queues of up to kScratchLimit bytes use this
// thread's reusable buffer and copy exactly the message out (no max_message_size allocation
// per call, right-sized results: DC-20); larger ones receive straight into a bytes object
// that is trimmed afterwards, which saves copying big messages (measured: a 64 KiB copy
// costs more than the allocation it avoids).
class ReceiveBuffer {
 public:
  static constexpr long kScratchLimit = 16 * 1024;

  explicit ReceiveBuffer(long capacity) : capacity_(static_cast<std::size_t>(capacity)) {
    if (capacity <= kScratchLimit) {
      std::vector<std::byte>& scratch = thread_scratch();
      if (scratch.size() < capacity_) scratch.resize(capacity_);
      data_ = scratch.data();
    } else {
      bytes_ = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(capacity));
      if (bytes_) data_ = reinterpret_cast<std::byte*>(PyBytes_AS_STRING(bytes_));
    }
  }
  ReceiveBuffer(const ReceiveBuffer&) = delete;
  ReceiveBuffer& operator=(const ReceiveBuffer&) = delete;
  ~ReceiveBuffer() { Py_XDECREF(bytes_); }
  bool ok() const { return data_ != nullptr; }
  std::span<std::byte> span() const { return {data_, capacity_}; }

  PyObject* result(const posix::Received& received) {
    const auto size = static_cast<Py_ssize_t>(received.size);
    PyObject* message = nullptr;
    if (!bytes_ || size <= PyBytes_GET_SIZE(bytes_) / 2) {
      message = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(data_), size);
    } else {
      message = std::exchange(bytes_, nullptr);
      if (size != PyBytes_GET_SIZE(message) && _PyBytes_Resize(&message, size) < 0) return nullptr;
    }
    return received_pair(message, received.priority);
  }

 private:
  static std::vector<std::byte>& thread_scratch() {
    thread_local std::vector<std::byte> scratch;
    return scratch;
  }

  std::size_t capacity_;
  std::byte* data_ = nullptr;
  PyObject* bytes_ = nullptr;
};

PyObject* receive_with(MessageQueueObject* queue, PyObject* timeout_object) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  if (!queue->read) {
    PyErr_SetString(posix_errors::classes().permissions_error, "The queue is not open for reading");
    return nullptr;
  }
  if (!queue->handle) return posix_errors::raise_errno(Operation::queue_receive, EBADF);
  ReceiveBuffer buffer(queue->max_message_size);
  if (!buffer.ok()) {
    PyErr_SetString(PyExc_MemoryError, "Out of memory");
    return nullptr;
  }
  std::optional<posix::Received> received;
  if (!guarded(Operation::queue_receive,
               [&] { received = queue->handle->try_receive(buffer.span()); }))
    return nullptr;
  if (received) return buffer.result(*received);
  if (timeout.is_zero()) return raise_empty();
  std::shared_ptr<posix::MessageQueue> pinned = queue->handle;
  const std::span<std::byte> target = buffer.span();
  int failure = 0;
  // A handler pending since the last bytecode (Ctrl-C just before this call) runs now,
  // instead of after a wait that nothing may ever end.
  if (PyErr_CheckSignals() < 0) return nullptr;
  Py_BEGIN_ALLOW_THREADS
  try {
    received =
        timeout.forever ? pinned->receive(target) : pinned->receive_for(target, timeout.duration);
  } catch (const Error& error) {
    failure = error.errno_value();
  }
  Py_END_ALLOW_THREADS
  if (failure != 0) return posix_errors::raise_errno(Operation::queue_receive, failure);
  if (!received) return raise_empty();
  return buffer.result(*received);
}

PyObject* queue_receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  MessageQueueObject* queue = as_queue(self);
  if (!kwnames && nargs <= 1) return receive_with(queue, nargs ? args[0] : Py_None);
  static const char* keywords[] = {"timeout", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|O",
                                   const_cast<char**>(keywords), &timeout))
    return nullptr;
  return receive_with(queue, timeout);
}

// ---- notification -------------------------------------------------------------------------

PyObject* queue_request_notification(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"notification", nullptr};
  PyObject* notification = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", const_cast<char**>(keywords), &notification))
    return nullptr;
  MessageQueueObject* queue = as_queue(self);
  if (notification == Py_None) {
    if (queue->handle) queue->handle->cancel_notification();
    Py_RETURN_NONE;
  }
  const bool is_signal = PyLong_Check(notification);
  const bool is_callback = PyTuple_Check(notification) && PyTuple_GET_SIZE(notification) == 2 &&
                           PyCallable_Check(PyTuple_GET_ITEM(notification, 0));
  if (!is_signal && !is_callback) {
    PyErr_SetString(PyExc_ValueError, kBadNotification);
    return nullptr;
  }
  if (!queue->handle) return posix_errors::raise_errno(Operation::queue_notify, EBADF);
  if (is_signal) {
    int overflow = 0;
    const long value = PyLong_AsLongAndOverflow(notification, &overflow);
    if (value == -1 && PyErr_Occurred()) return nullptr;
    // Out of C int range: the kernel's answer for a bad signal, not a silent wrap (DC-25).
    const int signal_number = (overflow || value < INT_MIN || value > INT_MAX) ? 0 : int(value);
    if (!guarded(Operation::queue_notify, [&] { queue->handle->notify_signal(signal_number); }))
      return nullptr;
    Py_RETURN_NONE;
  }
  auto callback = std::make_shared<PythonNotification>(PyTuple_GET_ITEM(notification, 0),
                                                       PyTuple_GET_ITEM(notification, 1));
  if (!guarded(Operation::queue_notify,
               [&] { queue->handle->notify_callback([callback] { callback->run(); }); }))
    return nullptr;
  Py_RETURN_NONE;
}

// ---- lifetime and attributes --------------------------------------------------------------

PyObject* raise_no_queue() {
  PyErr_SetString(posix_errors::classes().existential_error, "The queue does not exist");
  return nullptr;
}

PyObject* queue_close(PyObject* self, PyObject*) {
  MessageQueueObject* queue = as_queue(self);
  if (!queue->handle) return raise_no_queue();
  // With a waiter pinning the descriptor, mq_close runs when that waiter lets go.
  if (queue->handle.use_count() == 1 &&
      !guarded(Operation::queue_close, [&] { queue->handle->close(); }))
    return nullptr;
  queue->handle.reset();
  Py_RETURN_NONE;
}

PyObject* queue_unlink(PyObject* self, PyObject*) {
  PyObject* name = as_queue(self)->name;
  if (!name) return posix_errors::raise_errno(Operation::queue_unlink, ENOENT);
  PyObject* encoded = PyUnicode_EncodeFSDefault(name);
  if (!encoded) return nullptr;
  const std::string text(PyBytes_AS_STRING(encoded),
                         static_cast<size_t>(PyBytes_GET_SIZE(encoded)));
  Py_DECREF(encoded);
  if (!guarded(Operation::queue_unlink, [&] { posix::MessageQueue::unlink(text); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* queue_fileno(PyObject* self, PyObject*) {
  MessageQueueObject* queue = as_queue(self);
  return PyLong_FromLong(queue->handle ? static_cast<long>(queue->handle->descriptor()) : -1L);
}

PyObject* queue_get_mqd(PyObject* self, void*) { return queue_fileno(self, nullptr); }

PyObject* queue_get_block(PyObject* self, void*) {
  MessageQueueObject* queue = as_queue(self);
  if (!queue->handle) return raise_no_queue();
  bool blocking = true;
  if (!guarded(Operation::queue_attributes, [&] { blocking = queue->handle->blocking(); }))
    return nullptr;
  return PyBool_FromLong(blocking);
}

int queue_set_block(PyObject* self, PyObject* value, void*) {
  if (!value) {
    // Upstream dereferences the missing value and crashes (DC-4).
    PyErr_SetString(PyExc_TypeError, "Cannot delete the block attribute");
    return -1;
  }
  const int blocking = PyObject_IsTrue(value);
  if (blocking < 0) return -1;
  MessageQueueObject* queue = as_queue(self);
  if (!queue->handle) {
    raise_no_queue();
    return -1;
  }
  return guarded(Operation::queue_set_blocking, [&] { queue->handle->set_blocking(blocking != 0); })
             ? 0
             : -1;
}

PyObject* queue_get_current_messages(PyObject* self, void*) {
  MessageQueueObject* queue = as_queue(self);
  if (!queue->handle) return raise_no_queue();
  long count = 0;
  if (!guarded(Operation::queue_attributes, [&] { count = queue->handle->current_messages(); }))
    return nullptr;
  return PyLong_FromLong(count);
}

PyObject* queue_get_name(PyObject* self, void*) {
  PyObject* name = as_queue(self)->name;
  return Py_NewRef(name ? name : Py_None);
}

PyObject* queue_get_mode(PyObject* self, void*) { return PyLong_FromLong(as_queue(self)->mode); }

PyObject* queue_get_max_messages(PyObject* self, void*) {
  return PyLong_FromLong(as_queue(self)->max_messages);
}

PyObject* queue_get_max_message_size(PyObject* self, void*) {
  return PyLong_FromLong(as_queue(self)->max_message_size);
}

PyObject* queue_str(PyObject* self) {
  PyObject* name = as_queue(self)->name;
  return name ? Py_NewRef(name) : PyUnicode_FromString("(no name)");
}

PyObject* queue_repr(PyObject* self) {
  MessageQueueObject* queue = as_queue(self);
  PyObject* mode = octal_mode(queue->mode);
  if (!mode) return nullptr;
  PyObject* name = queue->name ? Py_NewRef(queue->name) : PyUnicode_FromString("(no name)");
  PyObject* result = name ? PyUnicode_FromFormat(
                                "posix_ipc.MessageQueue(\"%U\", mode=%U, max_message_size=%ld, "
                                "max_messages=%ld, read=%s, write=%s)",
                                name, mode, queue->max_message_size, queue->max_messages,
                                queue->read ? "True" : "False", queue->write ? "True" : "False")
                          : nullptr;
  Py_XDECREF(name);
  Py_DECREF(mode);
  return result;
}

PyMethodDef queue_methods[] = {
    {"send", as_method<queue_send>(), METH_FASTCALL | METH_KEYWORDS,
     "send($self, /, message, timeout=None, priority=0)\n--\n\n"
     "Send a message (str is sent as UTF-8, or any bytes-like object). Waits for room unless\n"
     "timeout is 0 or block is False; BusyError when it cannot."},
    {"receive", as_method<queue_receive>(), METH_FASTCALL | METH_KEYWORDS,
     "receive($self, /, timeout=None)\n--\n\n"
     "Return (message bytes, priority) of the oldest highest-priority message, waiting for\n"
     "one unless timeout is 0 or block is False; BusyError when none comes."},
    {"request_notification", as_method<queue_request_notification>(), METH_VARARGS | METH_KEYWORDS,
     "request_notification($self, /, notification=None)\n--\n\n"
     "Be told once when the queue goes from empty to non-empty: a signal number, or a\n"
     "(function, parameter) tuple called on a new thread. None cancels."},
    {"close", queue_close, METH_NOARGS,
     "close($self, /)\n--\n\nClose this descriptor; the queue stays until unlinked."},
    {"unlink", queue_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\nRemove the queue's name; it is destroyed once every descriptor "
     "is closed."},
    {"fileno", queue_fileno, METH_NOARGS,
     "fileno($self, /)\n--\n\nThe descriptor (pollable on Linux); -1 once closed."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef queue_getset[] = {
    {"name", queue_get_name, reject_write, "The name of the queue (read-only).", nullptr},
    {"mode", queue_get_mode, reject_write,
     "The permission bits given when the object was made (read-only).", nullptr},
    {"mqd", queue_get_mqd, nullptr, "The queue descriptor; -1 once closed (read-only).", nullptr},
    {"block", queue_get_block, queue_set_block,
     "Whether send() and receive() wait (False: they raise BusyError at once).", nullptr},
    {"max_messages", queue_get_max_messages, reject_write,
     "How many messages the queue holds at most (read-only).", nullptr},
    {"max_message_size", queue_get_max_message_size, reject_write,
     "The largest message in bytes (read-only).", nullptr},
    {"current_messages", queue_get_current_messages, nullptr,
     "How many messages are in the queue now (read-only).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot queue_slots[] = {{Py_tp_doc, const_cast<char*>("POSIX message queue object")},
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
  static PyType_Spec spec = {"posix_ipc.MessageQueue", sizeof(MessageQueueObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, queue_slots};
  return spec;
}

}  // namespace ipcxx::python::posix_types

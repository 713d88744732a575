// posix_ipc.MessageQueue: argument conversion, GIL handling and errors around
// posix::MessageQueue, plus the Python side of thread notifications.
#include "ipcxx/posix/message_queue.hpp"

#include <fcntl.h>

#include <climits>
#include <exception>
#include <memory>
#include <new>
#include <tuple>
#include <utility>
#include <vector>

#include "common/blocking_call.hpp"
#include "common/borrowed_scratch.hpp"
#include "common/conversions.hpp"
#include "common/held_buffer.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "common/permanent_thread_state.hpp"
#include "common/python_compat.hpp"
#include "common/waiter_count.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "posix_ipc/errors.hpp"
#include "posix_ipc/state.hpp"
#include "posix_ipc/types.hpp"

namespace ipcxx::python::posix_types {

namespace {

using posix_errors::guarded;
using posix_errors::Operation;

constexpr const char* kBadTimeout = "The timeout must be None or a non-negative number";
constexpr const char* kBadNotification =
    "The notification must be None, an integer, or a tuple of (function, parameter)";

class PythonNotification;

struct MessageQueueObject {
  PyObject_HEAD
  // Shared so a waiter that released the GIL pins the descriptor (DC-14). `handle`,
  // `waiters` and `name` are read and replaced under `lock` (docs/free-threading.md); the
  // scalars are Fields, each valid on its own (the core re-checks sizes against the handle).
  std::shared_ptr<posix::MessageQueue> handle;
  WaiterCount waiters;  // threads of this process pinning `handle` for a wait
  PyObject* name;
  Field<long> mode;
  Field<long> max_messages;
  Field<long> max_message_size;
  Field<long> last_received_size;  // steers receive(): see ReceiveBuffer; a hint only
  Field<bool> read;
  Field<bool> write;
  ObjectLock lock;
  // Serialises the core calls that change the handle's notification (request_notification(),
  // close()): the core object's callback token is not safe for two threads at once. Taken
  // before `lock`, never held across Python code: `notification` is this object's own
  // reference to the callback it registered last, so the core dropping its copy (cancel,
  // replace, close) never runs the parameter's __del__ inside the locked section; the binding
  // releases its reference after the lock instead (docs/free-threading.md).
  ObjectLock notify_lock;
  std::shared_ptr<PythonNotification> notification;
};

MessageQueueObject* as_queue(PyObject* self) { return reinterpret_cast<MessageQueueObject*>(self); }

// The handle for one non-blocking call (see UsedHandle).
UsedHandle<posix::MessageQueue> used(MessageQueueObject* queue) {
  return UsedHandle(queue->handle, queue->waiters, queue->lock);
}

bool is_closed(MessageQueueObject* queue) {
  ObjectLockGuard guard(queue->lock);
  return !queue->handle;
}

PyObject* name_of(MessageQueueObject* queue) {
  return new_reference_under(queue->lock, queue->name);
}

// A Python (callable, parameter) pair, run on the core's dispatcher thread (one per process,
// of the main interpreter: callbacks are refused in others) with that thread's permanent
// thread state, so no notification creates or destroys a thread state (issue 16, 7). Its
// references are released with the GIL held, whichever thread lets go of it last; during
// shutdown they are left alone. A thread that CPython ends while it waits for the GIL at exit
// unwinds through run() (no catch, and no RAII that would touch Python on the way out).
class PythonNotification {
 public:
  PythonNotification(PyObject* callable, PyObject* parameter)
      : callable_(Py_NewRef(callable)), parameter_(Py_NewRef(parameter)) {}
  PythonNotification(const PythonNotification&) = delete;
  PythonNotification& operator=(const PythonNotification&) = delete;
  ~PythonNotification() {
    // After run() nothing is left; otherwise the last holder is a thread of Python's (the
    // object's own reference, or the core dropping its copy on cancel, replace or close).
    if ((!callable_ && !parameter_) || interpreter_finalizing()) return;
    const PyGILState_STATE state = PyGILState_Ensure();
    Py_CLEAR(callable_);
    Py_CLEAR(parameter_);
    PyGILState_Release(state);
  }

  void run() {
    if (!take_gil_with_permanent_thread_state()) return;  // finalizing: Python is off limits
    PyObject* result = PyObject_CallOneArg(callable_, parameter_);
    // Upstream drops the callback's exception silently (DC-8): report it instead.
    if (!result) PyErr_WriteUnraisable(callable_);
    Py_XDECREF(result);
    Py_CLEAR(callable_);
    Py_CLEAR(parameter_);
    PyEval_SaveThread();
  }

 private:
  PyObject* callable_;
  PyObject* parameter_;
};

PyObject* queue_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_queue(self)->handle) std::shared_ptr<posix::MessageQueue>();
  new (&as_queue(self)->waiters) WaiterCount();
  new (&as_queue(self)->lock) ObjectLock();
  new (&as_queue(self)->notify_lock) ObjectLock();
  new (&as_queue(self)->notification) std::shared_ptr<PythonNotification>();
  return self;
}

void queue_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  MessageQueueObject* queue = as_queue(self);
  // `mqd` is public, so the descriptor stays open as upstream promises (DC-1).
  if (queue->handle && queue->handle.use_count() == 1) queue->handle->release_descriptor();
  queue->handle.~shared_ptr();
  queue->waiters.~WaiterCount();
  queue->lock.~ObjectLock();
  queue->notify_lock.~ObjectLock();
  // The registration stays armed with the released descriptor (DC-1); the registry keeps
  // its own reference to the callback.
  queue->notification.~shared_ptr();
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
  const posix_state::State& state = posix_state::of(self);
  long max_messages = state.queue_messages_max;
  long max_message_size = state.queue_message_size_max;
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
  if (!guarded(self, Operation::queue_open, [&] { posix::validate_open_flags(open_flags); }))
    return -1;
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
  const bool ok = guarded(self, Operation::queue_open, [&] {
    const auto permissions = static_cast<mode_t>(mode);
    opened = std::make_shared<posix::MessageQueue>(
        name ? posix::MessageQueue(*name, open_flags, permissions, limits, access)
             : posix::MessageQueue::create_unique(open_flags, permissions, limits, access));
  });
  if (!ok) return -1;
  PyObject* name_object = name_to_python(opened->name());
  if (!name_object) return -1;
  MessageQueueObject* queue = as_queue(self);
  queue->mode = stored_mode(mode);
  queue->max_messages = opened->max_messages();
  queue->max_message_size = opened->max_message_size();
  queue->read = read != 0;
  queue->write = write != 0;
  replace_under(queue->lock, queue->name, name_object);
  std::shared_ptr<posix::MessageQueue> replaced;
  std::shared_ptr<PythonNotification> registered;
  {
    // The handle and `notification` change together under notify_lock, so `notification`
    // always holds the callback registered on the current handle (close() relies on it). The
    // new handle has none; the old one's registration (if armed) holds its own copy.
    ObjectLockGuard notify(queue->notify_lock);
    replaced = replace_handle(queue->handle, std::move(opened), queue->lock);
    registered = std::move(queue->notification);
    queue->notification.reset();
  }
  // Re-running __init__ keeps the old descriptor open like upstream's. Dropping the old
  // handle last: its notification's __del__ may run Python code that uses this object.
  if (replaced && replaced.use_count() == 1) replaced->release_descriptor();
  registered.reset();
  replaced.reset();
  return 0;
}

PyObject* raise_empty(PyObject* self) { return posix_errors::classes(self).queue_empty.raise(); }
PyObject* raise_full(PyObject* self) { return posix_errors::classes(self).queue_full.raise(); }

// The handle for a wait, re-read after pending signal handlers ran (they may have closed it).
std::optional<PinnedHandle<posix::MessageQueue>> pin_handle(PyObject* self, Operation operation) {
  MessageQueueObject* queue = as_queue(self);
  auto pinned = ipcxx::python::pin_handle(queue->handle, queue->waiters, queue->lock);
  if (!pinned) posix_errors::raise_errno(self, operation, EBADF);
  return pinned;
}

// ---- send ---------------------------------------------------------------------------------

PyObject* send_with(PyObject* self, std::span<const std::byte> message, PyObject* timeout_object,
                    long priority) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  // Read the object only now: converting the arguments may have run Python code.
  MessageQueueObject* queue = as_queue(self);
  if (!queue->write) {
    PyErr_SetString(posix_errors::classes(self).permissions_error,
                    "The queue is not open for writing");
    return nullptr;
  }
  bool sent = false;
  {
    const UsedHandle handle = used(queue);
    if (!handle) return posix_errors::raise_errno(self, Operation::queue_send, EBADF);
    // The attempt that cannot wait keeps the GIL (DC-13); it also validates the message (DC-6).
    if (!guarded(self, Operation::queue_send, [&] {
          handle->validate_send(message.size(), priority);
          sent = handle->try_send(message, static_cast<unsigned>(priority));
        }))
      return nullptr;
  }
  if (sent) Py_RETURN_NONE;
  if (timeout.is_zero()) return raise_full(self);
  auto waited = blocking_call([&] { return pin_handle(self, Operation::queue_send); },
                              [&](PinnedHandle<posix::MessageQueue>& pinned) {
                                const auto level = static_cast<unsigned>(priority);
                                return timeout.forever
                                           ? pinned->send(message, level)
                                           : pinned->send_for(message, level, timeout.duration);
                              });
  if (!waited) return nullptr;
  if (waited->failure)
    return posix_errors::raise_exception(self, Operation::queue_send, waited->failure);
  if (!*waited->result) return raise_full(self);
  Py_RETURN_NONE;
}

PyObject* queue_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!kwnames && nargs == 1 && PyBytes_CheckExact(args[0])) {
    const std::span<const std::byte> message(
        reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(args[0])),
        static_cast<std::size_t>(PyBytes_GET_SIZE(args[0])));
    return send_with(self, message, Py_None, 0);
  }
  static const char* keywords[] = {"message", "timeout", "priority", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  // A str's UTF-8 form or any contiguous buffer, kept alive for the call.
  HeldBuffer message;
  PyObject* timeout = Py_None;
  long priority = 0;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "s*|Ol",
                                   const_cast<char**>(keywords), message.slot(), &timeout,
                                   &priority))
    return nullptr;
  return send_with(self, message.bytes(), timeout, priority);
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
// costs more than the allocation it avoids). The thread's buffer is borrowed for the call
// (common/borrowed_scratch.hpp says why).
class ReceiveBuffer {
 public:
  static constexpr long kScratchLimit = 16 * 1024;

  /// `into_result`: receive straight into the result (chosen when the previous message
  /// filled more than half the queue's maximum: the copy out of scratch costs more then).
  ReceiveBuffer(long capacity, bool into_result) : capacity_(static_cast<std::size_t>(capacity)) {
    if (capacity <= kScratchLimit && !into_result) {
      std::vector<std::byte>& scratch = scratch_.get();
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
  std::size_t capacity_;
  BorrowedScratch scratch_;
  std::byte* data_ = nullptr;
  PyObject* bytes_ = nullptr;
};

// The receive path of receive() and receive_into() after the arguments are converted: checks
// the object, tries with the GIL held, then waits if it may. Returns nullopt with a Python
// exception set when nothing was received. `target` is where the message goes.
std::optional<posix::Received> receive_message(PyObject* self, const Timeout& timeout,
                                               std::span<std::byte> target) {
  std::optional<posix::Received> received;
  {
    const UsedHandle handle = used(as_queue(self));
    if (!handle) {
      posix_errors::raise_errno(self, Operation::queue_receive, EBADF);
      return std::nullopt;
    }
    if (!guarded(self, Operation::queue_receive, [&] { received = handle->try_receive(target); }))
      return std::nullopt;
  }
  if (received) return received;
  if (timeout.is_zero()) {
    raise_empty(self);
    return std::nullopt;
  }
  auto waited = blocking_call(
      // A handler that re-ran __init__ with a larger queue meets the core's size check.
      [&] { return pin_handle(self, Operation::queue_receive); },
      [&](PinnedHandle<posix::MessageQueue>& pinned) {
        return timeout.forever ? pinned->receive(target)
                               : pinned->receive_for(target, timeout.duration);
      });
  if (!waited) return std::nullopt;
  if (waited->failure) {
    posix_errors::raise_exception(self, Operation::queue_receive, waited->failure);
    return std::nullopt;
  }
  if (!*waited->result) raise_empty(self);
  return *waited->result;
}

// Whether the object may receive now (it is open and was opened for reading); raises if not.
bool may_receive(PyObject* self) {
  MessageQueueObject* queue = as_queue(self);
  if (!queue->read) {
    PyErr_SetString(posix_errors::classes(self).permissions_error,
                    "The queue is not open for reading");
    return false;
  }
  if (is_closed(queue)) {
    posix_errors::raise_errno(self, Operation::queue_receive, EBADF);
    return false;
  }
  return true;
}

PyObject* receive_with(PyObject* self, PyObject* timeout_object) {
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  // Read the object only now: converting the arguments may have run Python code.
  if (!may_receive(self)) return nullptr;
  MessageQueueObject* queue = as_queue(self);
  ReceiveBuffer buffer(queue->max_message_size,
                       queue->last_received_size > queue->max_message_size / 2);
  if (!buffer.ok()) {
    PyErr_SetString(PyExc_MemoryError, "Out of memory");
    return nullptr;
  }
  const std::optional<posix::Received> received = receive_message(self, timeout, buffer.span());
  if (!received) return nullptr;
  queue->last_received_size = static_cast<long>(received->size);
  return buffer.result(*received);
}

PyObject* queue_receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  if (!kwnames && nargs <= 1) return receive_with(self, nargs ? args[0] : Py_None);
  static const char* keywords[] = {"timeout", nullptr};
  PackedArguments packed(args, nargs, kwnames);
  if (!packed.ok()) return nullptr;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "|O",
                                   const_cast<char**>(keywords), &timeout))
    return nullptr;
  return receive_with(self, timeout);
}

// receive_into(buffer, timeout=None) -> (nbytes, priority): an ipcxx extension. The kernel
// needs room for max_message_size bytes, whatever the message's size: a smaller buffer is
// refused before anything is received, so no message is ever lost.
PyObject* queue_receive_into(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"buffer", "timeout", nullptr};
  HeldBuffer target;
  PyObject* timeout_object = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "w*|O", const_cast<char**>(keywords),
                                   target.slot(), &timeout_object))
    return nullptr;
  Timeout timeout;
  if (!parse_timeout(timeout_object, timeout, kBadTimeout)) return nullptr;
  // Read the object only now: converting the arguments may have run Python code.
  if (!may_receive(self)) return nullptr;
  const long needed = as_queue(self)->max_message_size;
  if (target.size() < needed) {
    PyErr_Format(PyExc_ValueError,
                 "The buffer holds %zd bytes; the queue's max_message_size is %ld", target.size(),
                 needed);
    return nullptr;
  }
  const std::optional<posix::Received> received = receive_message(
      self, timeout, target.writable_bytes().first(static_cast<std::size_t>(needed)));
  if (!received) return nullptr;
  PyObject* size = PyLong_FromSize_t(received->size);
  PyObject* priority = size ? PyLong_FromUnsignedLong(received->priority) : nullptr;
  PyObject* pair = priority ? PyTuple_Pack(2, size, priority) : nullptr;
  Py_XDECREF(size);
  Py_XDECREF(priority);
  return pair;
}

// ---- notification -------------------------------------------------------------------------

PyObject* queue_request_notification(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"notification", nullptr};
  PyObject* notification = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", const_cast<char**>(keywords), &notification))
    return nullptr;
  MessageQueueObject* queue = as_queue(self);
  // Everything that may run Python code or raise comes before the locked section.
  const bool is_cancel = notification == Py_None;
  const bool is_signal = PyLong_Check(notification);
  const bool is_callback = PyTuple_Check(notification) && PyTuple_GET_SIZE(notification) == 2 &&
                           PyCallable_Check(PyTuple_GET_ITEM(notification, 0));
  if (!is_cancel && !is_signal && !is_callback) {
    PyErr_SetString(PyExc_ValueError, kBadNotification);
    return nullptr;
  }
  int signal_number = 0;
  if (is_signal) {
    int overflow = 0;
    const long value = PyLong_AsLongAndOverflow(notification, &overflow);
    if (value == -1 && PyErr_Occurred()) return nullptr;
    // Out of C int range: the kernel's answer for a bad signal, not a silent wrap (DC-25).
    signal_number = (overflow || value < INT_MIN || value > INT_MAX) ? 0 : int(value);
  }
  std::shared_ptr<PythonNotification> callback;
  if (is_callback) {
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
      // The notification thread could outlive a sub-interpreter; the main one outlives it.
      PyErr_SetString(posix_errors::classes(self).error,
                      "Callback notifications are only available in the main interpreter");
      return nullptr;
    }
    if (!register_permanent_thread_state_fork_hooks()) return nullptr;
    callback = std::make_shared<PythonNotification>(PyTuple_GET_ITEM(notification, 0),
                                                    PyTuple_GET_ITEM(notification, 1));
  }
  bool open = false;
  std::exception_ptr failure;
  std::shared_ptr<PythonNotification> dropped;  // released after the lock: __del__ may run
  // A copy, so that a close() that took the handle out still finds the core object alive;
  // close() waits for notify_lock before closing it.
  std::shared_ptr<posix::MessageQueue> pinned;
  {
    ObjectLockGuard notify(queue->notify_lock);
    {
      ObjectLockGuard guard(queue->lock);
      pinned = queue->handle;
    }
    open = pinned != nullptr;
    if (open) {
      try {
        if (is_cancel)
          pinned->cancel_notification();
        else if (is_signal)
          pinned->notify_signal(signal_number);
        else
          pinned->notify_callback([callback] { callback->run(); },
                                  posix::CallbackThread::dispatcher);
      } catch (...) {
        failure = std::current_exception();
      }
      // Whatever the outcome, the earlier request is gone (each call cancels it first).
      dropped = std::exchange(queue->notification, failure ? nullptr : callback);
    }
  }
  dropped.reset();
  callback.reset();
  if (is_cancel) Py_RETURN_NONE;
  if (!open) return posix_errors::raise_errno(self, Operation::queue_notify, EBADF);
  if (failure && !guarded(self, Operation::queue_notify, [&] { std::rethrow_exception(failure); }))
    return nullptr;
  Py_RETURN_NONE;
}

// ---- lifetime and attributes --------------------------------------------------------------

PyObject* raise_no_queue(PyObject* self) {
  PyErr_SetString(posix_errors::classes(self).existential_error, "The queue does not exist");
  return nullptr;
}

PyObject* queue_close(PyObject* self, PyObject*) {
  MessageQueueObject* queue = as_queue(self);
  // Taken out first, so that no other thread pins it any more. Closing drops a notification,
  // whose parameter's __del__ may close this object again (it finds it closed) or re-run
  // __init__ (its new handle stays): `taken` keeps the core object alive for the call.
  std::shared_ptr<posix::MessageQueue> taken;
  std::exception_ptr failure;
  std::shared_ptr<PythonNotification> dropped;
  {
    // Taken out and closed under notify_lock: after a request_notification() on another
    // thread that copied the handle (the core's callback token is not safe for both at
    // once), and with no __init__ in between, so `notification` still holds the callback the
    // close drops (its release, hence the parameter's __del__, comes after the lock).
    ObjectLockGuard notify(queue->notify_lock);
    bool pinned = false;
    std::tie(taken, pinned) = take_handle(queue->handle, queue->waiters, queue->lock);
    // With a waiter pinning the descriptor, mq_close runs when that waiter lets go (a fork
    // child counts only its own waiters).
    if (taken && !pinned) {
      try {
        taken->close();
      } catch (...) {
        failure = std::current_exception();
      }
    }
    dropped = std::move(queue->notification);
    queue->notification.reset();
  }
  dropped.reset();  // after the lock: the parameter's __del__ may use this object
  if (!taken) return raise_no_queue(self);
  if (failure && !guarded(self, Operation::queue_close, [&] { std::rethrow_exception(failure); }))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* queue_unlink(PyObject* self, PyObject*) {
  PyObject* name = name_of(as_queue(self));
  if (name == Py_None) {
    Py_DECREF(name);
    return posix_errors::raise_errno(self, Operation::queue_unlink, ENOENT);
  }
  PyObject* encoded = PyUnicode_EncodeFSDefault(name);
  Py_DECREF(name);
  if (!encoded) return nullptr;
  const std::string text(PyBytes_AS_STRING(encoded),
                         static_cast<size_t>(PyBytes_GET_SIZE(encoded)));
  Py_DECREF(encoded);
  if (!guarded(self, Operation::queue_unlink, [&] { posix::MessageQueue::unlink(text); }))
    return nullptr;
  Py_RETURN_NONE;
}

PyObject* queue_fileno(PyObject* self, PyObject*) {
  const UsedHandle handle = used(as_queue(self));
  return PyLong_FromLong(handle ? static_cast<long>(handle->descriptor()) : -1L);
}

PyObject* queue_get_mqd(PyObject* self, void*) { return queue_fileno(self, nullptr); }

PyObject* queue_get_block(PyObject* self, void*) {
  const UsedHandle handle = used(as_queue(self));
  if (!handle) return raise_no_queue(self);
  bool blocking = true;
  if (!guarded(self, Operation::queue_attributes, [&] { blocking = handle->blocking(); }))
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
  const UsedHandle handle = used(as_queue(self));
  if (!handle) {
    raise_no_queue(self);
    return -1;
  }
  return guarded(self, Operation::queue_set_blocking, [&] { handle->set_blocking(blocking != 0); })
             ? 0
             : -1;
}

PyObject* queue_get_current_messages(PyObject* self, void*) {
  const UsedHandle handle = used(as_queue(self));
  if (!handle) return raise_no_queue(self);
  long count = 0;
  if (!guarded(self, Operation::queue_attributes, [&] { count = handle->current_messages(); }))
    return nullptr;
  return PyLong_FromLong(count);
}

PyObject* queue_get_name(PyObject* self, void*) { return name_of(as_queue(self)); }

PyObject* queue_get_mode(PyObject* self, void*) { return PyLong_FromLong(as_queue(self)->mode); }

PyObject* queue_get_max_messages(PyObject* self, void*) {
  return PyLong_FromLong(as_queue(self)->max_messages);
}

PyObject* queue_get_max_message_size(PyObject* self, void*) {
  return PyLong_FromLong(as_queue(self)->max_message_size);
}

PyObject* queue_str(PyObject* self) {
  PyObject* name = name_of(as_queue(self));
  if (name != Py_None) return name;
  Py_DECREF(name);
  return PyUnicode_FromString("(no name)");
}

PyObject* queue_repr(PyObject* self) {
  MessageQueueObject* queue = as_queue(self);
  PyObject* mode = octal_mode(queue->mode);
  if (!mode) return nullptr;
  PyObject* name = queue_str(self);
  PyObject* result = name ? PyUnicode_FromFormat(
                                "posix_ipc.MessageQueue(\"%U\", mode=%U, max_message_size=%ld, "
                                "max_messages=%ld, read=%s, write=%s)",
                                name, mode, static_cast<long>(queue->max_message_size),
                                static_cast<long>(queue->max_messages),
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
    {"receive_into", as_method<queue_receive_into>(), METH_VARARGS | METH_KEYWORDS,
     "receive_into($self, /, buffer, timeout=None)\n--\n\n"
     "Receive like receive(), into a writable buffer of at least max_message_size bytes:\n"
     "returns (nbytes, priority). (An ipcxx extension.)"},
    {"request_notification", as_method<queue_request_notification>(), METH_VARARGS | METH_KEYWORDS,
     "request_notification($self, /, notification=None)\n--\n\n"
     "Be told once when the queue goes from empty to non-empty: a signal number, or a\n"
     "(function, parameter) tuple, called on the process's notification thread (one at a\n"
     "time, in arrival order). None cancels."},
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

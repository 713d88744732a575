// The errno -> exception table of posix_ipc (docs/errors.md lists it for readers).
#include "posix_ipc/errors.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include "common/errors.hpp"
#include "ipcxx/error.hpp"
#include "posix_ipc/state.hpp"

namespace ipcxx::python::posix_errors {

namespace {

enum class Kind { permissions, existential, busy, value, memory, os_message, os_errno };

struct Rule {
  int errno_value;
  Kind kind;
  const char* message;
};

constexpr const char* kTooManyFiles = "This process already has the maximum number of files open";
constexpr const char* kSystemFiles =
    "The system limit on the total number of open files has been reached";

// Each list ends with {0, ...}; anything unlisted becomes OSError(errno).
constexpr Rule kSemaphoreOpen[] = {
    {EACCES, Kind::permissions, "Permission denied"},
    {EEXIST, Kind::existential, "A semaphore with the specified name already exists"},
    {ENOENT, Kind::existential, "No semaphore exists with the specified name"},
    {EINVAL, Kind::value, "Invalid parameter(s)"},
    {EMFILE, Kind::os_message, kTooManyFiles},
    {ENFILE, Kind::os_message, kSystemFiles},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {ENOMEM, Kind::memory, "Not enough memory"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kSemaphoreAcquire[] = {{EAGAIN, Kind::busy, "Semaphore is busy"},
                                      {ETIMEDOUT, Kind::busy, "Semaphore is busy"},
                                      {EINVAL, Kind::existential, "The semaphore does not exist"},
                                      {EBADF, Kind::existential, "The semaphore does not exist"},
                                      {0, Kind::os_errno, nullptr}};
constexpr Rule kSemaphoreRelease[] = {{EINVAL, Kind::existential, "The semaphore does not exist"},
                                      {EBADF, Kind::existential, "The semaphore does not exist"},
                                      {0, Kind::os_errno, nullptr}};
constexpr Rule kSemaphoreHandle[] = {{EINVAL, Kind::existential, "The semaphore does not exist"},
                                     {0, Kind::os_errno, nullptr}};
constexpr Rule kSemaphoreUnlink[] = {
    {EACCES, Kind::permissions, "Denied permission to unlink this semaphore"},
    {ENOENT, Kind::existential, "No semaphore exists with the specified name"},
    {EINVAL, Kind::existential, "No semaphore exists with the specified name"},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {0, Kind::os_errno, nullptr}};

constexpr Rule kMemoryOpenCommon[] = {
    {EEXIST, Kind::existential, "Shared memory with the specified name already exists"},
    {ENOENT, Kind::existential, "No shared memory exists with the specified name"},
    {EINVAL, Kind::value, "Invalid parameter(s)"},
    {EMFILE, Kind::os_message, kTooManyFiles},
    {ENFILE, Kind::os_message, kSystemFiles},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kMemoryResize[] = {
    {EINVAL, Kind::value, "The size is invalid or the memory is read-only"},
    {EFBIG, Kind::value, "The size is too large"},
    {EROFS, Kind::permissions, "The memory is read-only"},
    {EACCES, Kind::permissions, "The memory is read-only"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kMemorySize[] = {{EBADF, Kind::existential, "The segment does not exist"},
                                {EINVAL, Kind::existential, "The segment does not exist"},
                                {0, Kind::os_errno, nullptr}};
constexpr Rule kMemoryClose[] = {{EBADF, Kind::value, "The file descriptor is invalid"},
                                 {0, Kind::os_errno, nullptr}};
// mmap for the buffer export; fstat (the size) fails like `size` does.
constexpr Rule kMemoryMap[] = {{EBADF, Kind::existential, "The segment does not exist"},
                               {EACCES, Kind::permissions, "Permission denied"},
                               {ENOMEM, Kind::memory, "Not enough memory"},
                               {0, Kind::os_errno, nullptr}};
constexpr Rule kMemoryUnlink[] = {
    {EACCES, Kind::permissions, "Permission denied"},
    {ENOENT, Kind::existential, "No shared memory exists with the specified name"},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {0, Kind::os_errno, nullptr}};

constexpr Rule kQueueOpen[] = {
    {EINVAL, Kind::value, "Invalid parameter(s)"},
    {ENOSPC, Kind::os_message, "Insufficient space for a new queue"},
    {EACCES, Kind::permissions, "Permission denied"},
    {EEXIST, Kind::existential, "A queue with the specified name already exists"},
    {ENOENT, Kind::existential, "No queue exists with the specified name"},
    {EMFILE, Kind::os_message, kTooManyFiles},
    {ENFILE, Kind::os_message, kSystemFiles},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {ENOMEM, Kind::memory, "Not enough memory"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueSend[] = {
    {EBADF, Kind::existential, "The message queue does not exist or is not open for writing"},
    {EINVAL, Kind::existential, "The message queue does not exist or is not open for writing"},
    {EAGAIN, Kind::busy, "The queue is full"},
    {ETIMEDOUT, Kind::busy, "The queue is full"},
    {EMSGSIZE, Kind::value, "The message is too long"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueReceive[] = {
    {EBADF, Kind::existential, "The message queue does not exist or is not open for reading"},
    {EINVAL, Kind::existential, "The message queue does not exist or is not open for reading"},
    {EAGAIN, Kind::busy, "The queue is empty"},
    {ETIMEDOUT, Kind::busy, "The queue is empty"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueAttributes[] = {{EBADF, Kind::existential, "The queue does not exist"},
                                     {EINVAL, Kind::existential, "The queue does not exist"},
                                     {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueSetBlocking[] = {{EBADF, Kind::existential, "The queue does not exist"},
                                      {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueNotify[] = {
    {EBUSY, Kind::busy, "The queue is already delivering notifications elsewhere"},
    {0, Kind::os_errno, nullptr}};
constexpr Rule kQueueUnlink[] = {
    {EACCES, Kind::permissions, "Permission denied"},
    {ENOENT, Kind::existential, "No queue exists with the specified name"},
    {EINVAL, Kind::existential, "No queue exists with the specified name"},
    {ENAMETOOLONG, Kind::value, "The name is too long"},
    {0, Kind::os_errno, nullptr}};

const Rule* rules_for(Operation operation) {
  switch (operation) {
    case Operation::semaphore_open:
      return kSemaphoreOpen;
    case Operation::semaphore_acquire:
      return kSemaphoreAcquire;
    case Operation::semaphore_release:
      return kSemaphoreRelease;
    case Operation::semaphore_value:
    case Operation::semaphore_close:
      return kSemaphoreHandle;
    case Operation::semaphore_unlink:
      return kSemaphoreUnlink;
    case Operation::memory_open:
    case Operation::memory_open_truncating:
      return kMemoryOpenCommon;
    case Operation::memory_resize:
      return kMemoryResize;
    case Operation::memory_size:
      return kMemorySize;
    case Operation::memory_close:
      return kMemoryClose;
    case Operation::memory_unlink:
      return kMemoryUnlink;
    case Operation::memory_map:
      return kMemoryMap;
    case Operation::queue_open:
      return kQueueOpen;
    case Operation::queue_send:
      return kQueueSend;
    case Operation::queue_receive:
      return kQueueReceive;
    case Operation::queue_attributes:
    case Operation::queue_close:
      return kQueueAttributes;
    case Operation::queue_set_blocking:
      return kQueueSetBlocking;
    case Operation::queue_notify:
      return kQueueNotify;
    case Operation::queue_unlink:
      return kQueueUnlink;
  }
  return kQueueNotify;
}

PyObject* raise_os_error_with_message(const char* message, int errno_value) {
  // OSError(msg) as upstream, plus .errno (DC-27); strerror stays None so str() is the message.
  PyObject* error = PyObject_CallFunction(PyExc_OSError, "s", message);
  if (!error) return nullptr;
  PyObject* number = PyLong_FromLong(errno_value);
  if (number) {
    PyObject_SetAttrString(error, "errno", number);
    Py_DECREF(number);
  }
  PyErr_SetObject(PyExc_OSError, error);
  Py_DECREF(error);
  return nullptr;
}

}  // namespace

Classes& classes(PyObject* owner) { return posix_state::of(owner).classes; }

PyObject* raise_errno(PyObject* owner, Operation operation, int errno_value) {
  if (errno_value == EINTR &&
      (operation == Operation::semaphore_acquire || operation == Operation::queue_send ||
       operation == Operation::queue_receive))
    return raise_interrupted(owner);
  if (operation == Operation::memory_open_truncating && errno_value == EACCES) {
    PyErr_SetString(classes(owner).permissions_error, "No permission to truncate this segment");
    return nullptr;
  }
  if (operation == Operation::memory_open && errno_value == EACCES) {
    PyErr_SetString(classes(owner).permissions_error, "No permission to access this segment");
    return nullptr;
  }
  const Rule* rule = rules_for(operation);
  while (rule->errno_value != 0 && rule->errno_value != errno_value) ++rule;
  switch (rule->kind) {
    case Kind::permissions:
      PyErr_SetString(classes(owner).permissions_error, rule->message);
      break;
    case Kind::existential:
      PyErr_SetString(classes(owner).existential_error, rule->message);
      break;
    case Kind::busy:
      PyErr_SetString(classes(owner).busy_error, rule->message);
      break;
    case Kind::value:
      PyErr_SetString(PyExc_ValueError, rule->message);
      break;
    case Kind::memory:
      PyErr_SetString(PyExc_MemoryError, rule->message);
      break;
    case Kind::os_message:
      return raise_os_error_with_message(rule->message, errno_value);
    case Kind::os_errno:
      return raise_os_error(errno_value);
  }
  return nullptr;
}

PyObject* raise_interrupted(PyObject* owner) {
  if (PyErr_CheckSignals() < 0) return nullptr;
  PyErr_SetString(classes(owner).signal_error, "The wait was interrupted by a signal");
  return nullptr;
}

PyObject* raise_exception(PyObject* owner, Operation operation, const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (...) {
    return raise_current_exception(owner, operation);
  }
}

PyObject* raise_current_exception(PyObject* owner, Operation operation) {
  try {
    throw;
  } catch (const ipcxx::Error& error) {
    // Constructors make two calls; the second one has its own table.
    if (error.syscall() == Syscall::ftruncate)
      return raise_errno(owner, Operation::memory_resize, error.errno_value());
    if (error.syscall() == Syscall::mq_getattr && operation == Operation::queue_open) {
      PyErr_SetString(classes(owner).error, "Unable to initialize object");
      return nullptr;
    }
    return raise_errno(owner, operation, error.errno_value());
  } catch (...) {
    return raise_standard_exception();
  }
}

}  // namespace ipcxx::python::posix_errors

// The errno -> exception table of sysv_ipc (docs/errors.md lists it for readers).
#include "sysv_ipc/errors.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include "common/errors.hpp"
#include "ipcxx/error.hpp"
#include "sysv_ipc/state.hpp"

namespace ipcxx::python::sysv_errors {

namespace {

PyObject* set(PyObject* type, const char* message) {
  PyErr_SetString(type, message);
  return nullptr;
}

PyObject* set_format(PyObject* type, const char* format, long value) {
  PyErr_Format(type, format, value);
  return nullptr;
}

PyObject* semaphore_error(const Classes& c, int errno_value) {
  switch (errno_value) {
    case ENOENT:
    case EINVAL:
      return set(c.existential_error, "No semaphore exists with the specified key");
    case EEXIST:
      return set(c.existential_error, "A semaphore with the specified key already exists");
    case EACCES:
      return set(c.permissions_error, "Permission denied");
    case ERANGE:
      return set(PyExc_ValueError, "The semaphore's value must remain between 0 and SEMVMX");
    case EAGAIN:
      return c.semaphore_busy.raise();
    case EIDRM:
      return set(c.existential_error, "The semaphore was removed");
    case ENOMEM:
      return set(PyExc_MemoryError, "Not enough memory");
    default:
      return raise_os_error(errno_value);
  }
}

PyObject* no_segment(const Classes& c, const Subject& subject) {
  return set_format(c.existential_error, "No shared memory with id %ld exists", subject.id);
}

PyObject* memory_error(const Classes& c, Operation operation, int errno_value,
                       const Subject& subject) {
  switch (operation) {
    case Operation::memory_get:
      switch (errno_value) {
        case EACCES:
#if PY_VERSION_HEX >= 0x030C0000
          return set_format(c.permissions_error,
                            "Permission %o cannot be granted on the existing segment",
                            subject.mode & 0777);
#else
          // CPython < 3.12 has no %o in PyErr_Format: upstream's text keeps it literally (DC-30).
          return set(c.permissions_error,
                     "Permission %o cannot be granted on the existing segment");
#endif
        case EEXIST:
          return set_format(c.existential_error, "Shared memory with the key %ld already exists",
                            subject.key);
        case ENOENT:
          return set_format(c.existential_error, "No shared memory exists with the key %ld",
                            subject.key);
        case EINVAL:
          return set(PyExc_ValueError, "The size is invalid");
        case ENOMEM:
          return set(PyExc_MemoryError, "Not enough memory");
        case ENOSPC:
          return set(PyExc_OSError, "Not enough shared memory identifiers available (ENOSPC)");
        default:
          return raise_os_error(errno_value);
      }
    case Operation::memory_attach:
      switch (errno_value) {
        case EACCES:
          return set(c.permissions_error, "No permission to attach");
        case ENOMEM:
          return set(PyExc_MemoryError, "Not enough memory");
        case EINVAL:
          return set(PyExc_ValueError, "Invalid id, address, or flags");
        default:
          return raise_os_error(errno_value);
      }
    case Operation::memory_detach:
      if (errno_value == EINVAL) {
        PyErr_SetNone(c.not_attached_error);
        return nullptr;
      }
      return raise_os_error(errno_value);
    case Operation::memory_stat:
      switch (errno_value) {
        case EIDRM:
        case EINVAL:
          return no_segment(c, subject);
        case EACCES:
          return set(c.permissions_error,
                     "You do not have permission to read the shared memory attribute");
        default:
          return raise_os_error(errno_value);
      }
    case Operation::memory_set:
      switch (errno_value) {
        case EIDRM:
        case EINVAL:
          return no_segment(c, subject);
        case EPERM:
          return set(c.permissions_error,
                     "You do not have permission to change the shared memory's attributes");
        default:
          return raise_os_error(errno_value);
      }
    default:  // memory_remove
      switch (errno_value) {
        case EIDRM:
        case EINVAL:
          return no_segment(c, subject);
        case EPERM:
          return set(c.permissions_error, "You do not have permission to remove the shared memory");
        default:
          return raise_os_error(errno_value);
      }
  }
}

PyObject* queue_error(const Classes& c, Operation operation, int errno_value) {
  constexpr const char* kGone = "The queue no longer exists";
  switch (operation) {
    case Operation::queue_get:
      switch (errno_value) {
        case EACCES:
          return set(c.permissions_error, "Permission denied");
        case EEXIST:
          return set(c.existential_error, "A queue with the specified key already exists");
        case ENOENT:
          return set(c.existential_error, "No queue exists with the specified key");
        case ENOMEM:
          return set(PyExc_MemoryError, "Not enough memory");
        case ENOSPC:
          return set(PyExc_OSError, "The system limit for message queues has been reached");
        default:
          return raise_os_error(errno_value);
      }
    case Operation::queue_send:
      switch (errno_value) {
        case EACCES:
          return set(c.permissions_error, "Permission denied");
        case EAGAIN:
          return c.queue_full.raise();
        case EIDRM:
          return set(c.existential_error, kGone);
        default:
          return raise_os_error(errno_value);
      }
    case Operation::queue_receive:
      switch (errno_value) {
        case EACCES:
          return set(c.permissions_error, "Permission denied");
        case EIDRM:
        case EINVAL:
          return set(c.existential_error, kGone);
        case ENOMSG:
          return c.no_message.raise();
        default:
          return raise_os_error(errno_value);
      }
    case Operation::queue_stat:
      switch (errno_value) {
        case EIDRM:
        case EINVAL:
          return set(c.existential_error, kGone);
        case EACCES:
          return set(c.permissions_error, "Permission denied");
        default:
          return raise_os_error(errno_value);
      }
    case Operation::queue_set:
      switch (errno_value) {
        case EACCES:
        case EPERM:
          return set(c.permissions_error, "Permission denied");
        case EINVAL:
          return set(c.existential_error, kGone);
        default:
          return raise_os_error(errno_value);
      }
    default:  // queue_remove
      switch (errno_value) {
        case EIDRM:
        case EINVAL:
          return set(c.existential_error, kGone);
        case EPERM:
          return set(c.permissions_error, "Permission denied");
        default:
          return raise_os_error(errno_value);
      }
  }
}

}  // namespace

Classes& classes(PyObject* owner) { return sysv_state::of(owner).classes; }

PyObject* raise_errno(PyObject* owner, Operation operation, int errno_value,
                      const Subject& subject) {
  if (errno_value == EINTR) return raise_interrupted(owner);
  const Classes& c = classes(owner);
  if (operation == Operation::semaphore) return semaphore_error(c, errno_value);
  if (operation >= Operation::queue_get) return queue_error(c, operation, errno_value);
  return memory_error(c, operation, errno_value, subject);
}

PyObject* raise_interrupted(PyObject* owner) {
  if (PyErr_CheckSignals() < 0) return nullptr;
  return set(classes(owner).error, "Signaled while waiting");
}

PyObject* raise_exception(PyObject* owner, Operation operation, const Subject& subject,
                          const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (...) {
    return raise_current_exception(owner, operation, subject);
  }
}

PyObject* raise_current_exception(PyObject* owner, Operation operation, const Subject& subject) {
  try {
    throw;
  } catch (const ipcxx::Error& error) {
    Operation effective = operation;
    // The constructor of SharedMemory makes several calls; each has its own row.
    if (error.syscall() == Syscall::shmat) effective = Operation::memory_attach;
    if (error.syscall() == Syscall::shmctl_ipc_stat && operation == Operation::memory_get)
      effective = Operation::memory_stat;
    return raise_errno(owner, effective, error.errno_value(), subject);
  } catch (...) {
    return raise_standard_exception();
  }
}

}  // namespace ipcxx::python::sysv_errors

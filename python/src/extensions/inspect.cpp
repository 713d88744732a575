// ipcxx._ipcxx.inspect_segment: argument conversion and struct -> dict around
// ipcxx::inspect_segment.
#include "extensions/inspect.hpp"

#include <climits>
#include <exception>
#include <string>
#include <variant>

#include "common/conversions.hpp"
#include "common/errors.hpp"
#include "extensions/arguments.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/inspect.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

// Sets dict[key] = value and drops the reference to value; false (exception set) on failure.
bool put(PyObject* dict, const char* key, PyObject* value) {
  if (!value) return false;
  const int result = PyDict_SetItemString(dict, key, value);
  Py_DECREF(value);
  return result == 0;
}

PyObject* number(std::uint64_t value) { return PyLong_FromUnsignedLongLong(value); }
PyObject* boolean(bool value) { return PyBool_FromLong(value); }
PyObject* pid_or_none(pid_t pid) { return pid ? PyLong_FromLong(pid) : Py_NewRef(Py_None); }

const char* stream_name(StreamState state) {
  switch (state) {
    case StreamState::no_producer_yet:
      return "no_producer_yet";
    case StreamState::open:
      return "open";
    case StreamState::draining:
      return "draining";
    case StreamState::ended:
      return "ended";
  }
  return "unknown";
}

const char* consistency_name(LockConsistency consistency) {
  switch (consistency) {
    case LockConsistency::consistent:
      return "consistent";
    case LockConsistency::owner_died:
      return "owner_died";
    case LockConsistency::not_recoverable:
      return "not_recoverable";
  }
  return "unknown";
}

PyObject* participant_dict(const ChannelParticipant& participant) {
  PyObject* dict = PyDict_New();
  if (!dict) return nullptr;
  if (put(dict, "slot", number(participant.slot)) &&
      put(dict, "pid", PyLong_FromLong(participant.pid)) &&
      put(dict, "alive", boolean(participant.alive)) &&
      put(dict, "producer", boolean(participant.producer)))
    return dict;
  Py_DECREF(dict);
  return nullptr;
}

PyObject* participants_list(const std::vector<ChannelParticipant>& participants) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(participants.size()));
  if (!list) return nullptr;
  for (std::size_t i = 0; i < participants.size(); ++i) {
    PyObject* item = participant_dict(participants[i]);
    if (!item) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

PyObject* channel_dict(const ChannelInspection& channel) {
  PyObject* dict = PyDict_New();
  if (!dict) return nullptr;
  const bool ok =
      put(dict, "version", number(channel.version)) &&
      put(dict, "capacity", number(channel.capacity)) &&
      put(dict, "max_message_size", number(channel.max_message_size)) &&
      put(dict, "head", number(channel.head)) && put(dict, "rhead", number(channel.rhead)) &&
      put(dict, "tail", number(channel.tail)) &&
      put(dict, "used_bytes", number(channel.used_bytes)) &&
      put(dict, "queued_bytes", number(channel.queued_bytes)) &&
      put(dict, "messages", number(channel.messages)) &&
      put(dict, "writing", number(channel.writing)) &&
      put(dict, "writing_dead", number(channel.writing_dead)) &&
      put(dict, "reading", number(channel.reading)) &&
      put(dict, "reading_dead", number(channel.reading_dead)) &&
      put(dict, "counts_complete", boolean(channel.counts_complete)) &&
      put(dict, "lost", number(channel.lost)) &&
      put(dict, "abandoned", number(channel.abandoned)) &&
      put(dict, "declarations", number(channel.declarations)) &&
      put(dict, "producers_counted", number(channel.producers_counted)) &&
      put(dict, "stream", PyUnicode_FromString(stream_name(channel.stream))) &&
      put(dict, "participants", participants_list(channel.participants)) &&
      put(dict, "producer_lock_pid", pid_or_none(channel.producer_lock_pid)) &&
      put(dict, "producer_lock_alive",
          channel.producer_lock_pid ? boolean(channel.producer_lock_alive) : Py_NewRef(Py_None)) &&
      put(dict, "consumer_lock_pid", pid_or_none(channel.consumer_lock_pid)) &&
      put(dict, "consumer_lock_alive",
          channel.consumer_lock_pid ? boolean(channel.consumer_lock_alive) : Py_NewRef(Py_None));
  if (ok) return dict;
  Py_DECREF(dict);
  return nullptr;
}

// True or False when the lock names a holder (or knows it died); None when free, or when the
// holder's thread is not visible in this PID namespace.
PyObject* liveness(const RobustMutexInspection& lock) {
  if (!lock.locked || lock.holder == Liveness::not_visible) return Py_NewRef(Py_None);
  return boolean(lock.holder == Liveness::alive);
}

PyObject* lock_dict(const RobustMutexInspection& lock) {
  PyObject* dict = PyDict_New();
  if (!dict) return nullptr;
  const bool ok =
      put(dict, "version", number(lock.version)) && put(dict, "locked", boolean(lock.locked)) &&
      put(dict, "holder_tid", pid_or_none(lock.holder_tid)) &&
      put(dict, "holder_pid", pid_or_none(lock.holder_pid)) &&
      put(dict, "holder_alive", liveness(lock)) &&
      put(dict, "holder_visible", boolean(lock.holder != Liveness::not_visible)) &&
      put(dict, "waiters", boolean(lock.waiters)) &&
      put(dict, "consistency", PyUnicode_FromString(consistency_name(lock.consistency))) &&
      put(dict, "acquisitions", number(lock.acquisitions));
  if (ok) return dict;
  Py_DECREF(dict);
  return nullptr;
}

const char* kind_name(SegmentKind kind) {
  switch (kind) {
    case SegmentKind::channel:
      return "channel";
    case SegmentKind::robust_mutex:
      return "lock";
    case SegmentKind::other:
      break;
  }
  return nullptr;
}

PyObject* result_dict(const SegmentInspection& result) {
  PyObject* dict = PyDict_New();
  if (!dict) return nullptr;
  const char* kind = kind_name(result.kind);
  const bool ok =
      put(dict, "kind", kind ? PyUnicode_FromString(kind) : Py_NewRef(Py_None)) &&
      put(dict, "problem",
          result.problem.empty()
              ? Py_NewRef(Py_None)
              : PyUnicode_FromStringAndSize(result.problem.data(),
                                            static_cast<Py_ssize_t>(result.problem.size()))) &&
      put(dict, "size", number(result.size)) &&
      put(dict, "channel", result.channel ? channel_dict(*result.channel) : Py_NewRef(Py_None)) &&
      put(dict, "lock", result.robust_mutex ? lock_dict(*result.robust_mutex) : Py_NewRef(Py_None));
  if (ok) return dict;
  Py_DECREF(dict);
  return nullptr;
}

}  // namespace

PyObject* inspect_segment(PyObject*, PyObject* argument) {
  std::variant<int, std::string> target;
  if (PyLong_Check(argument) && !PyBool_Check(argument)) {
    const long fd = PyLong_AsLong(argument);
    if (fd == -1 && PyErr_Occurred()) return nullptr;
    if (fd < 0 || fd > INT_MAX) {
      PyErr_SetString(PyExc_ValueError, "a file descriptor must be between 0 and INT_MAX");
      return nullptr;
    }
    target = static_cast<int>(fd);
  } else {
    std::string name;
    if (!PyUnicode_Check(argument) && !PyBytes_Check(argument)) {
      PyErr_Format(PyExc_TypeError, "name_or_fd must be str, bytes or int, not %.50s",
                   Py_TYPE(argument)->tp_name);
      return nullptr;
    }
    if (!parse_unlink_name(argument, name)) return nullptr;
    target = std::move(name);
  }
  SegmentInspection result;
  std::exception_ptr failure;
  // Reads /proc once per participant: no Python object is touched meanwhile.
  Py_BEGIN_ALLOW_THREADS
  try {
    result = std::holds_alternative<int>(target)
                 ? ipcxx::inspect_segment(std::get<int>(target))
                 : ipcxx::inspect_segment(std::string_view(std::get<1>(target)));
  } catch (...) {
    failure = std::current_exception();
  }
  Py_END_ALLOW_THREADS
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const Error& error) {
      if (std::holds_alternative<std::string>(target))
        return raise_os_error(error.errno_value(), std::get<1>(target).c_str());
      return raise_os_error(error.errno_value());
    } catch (...) {
      return raise_standard_exception();
    }
  }
  return result_dict(result);
}

}  // namespace ipcxx::python::ipcxx_state

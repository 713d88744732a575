// ipcxx._QueueCore: the native half of ipcxx.Queue's put() and get(). The calls programs make
// in a loop — put(obj) and put_nowait(obj) on an unbounded queue, get() and get_nowait() — pickle,
// count and move the message here, in one C call, so that they cost about one pickling and one ring
// operation (docs/queue.md, "Performance"). Every other call, and every case this half does not own
// (out-of-band buffers, a message beyond the ring, objects in the spill buffer, a closed queue, a
// queue not attached), goes to the Python method of the same object that owns it (_put_slow,
// _put_pickled, _put_counted, _get_slow, _decode_taken in python/ipcxx/queues), with the same
// arguments.
#include "extensions/queue_core.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/conversions.hpp"
#include "common/errors.hpp"
#include "common/method_cast.hpp"
#include "extensions/channel.hpp"
#include "extensions/state.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/semaphore.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

// A protocol 2+ pickle stream starts with PROTO (python/ipcxx/queues/_framing.py: PICKLE).
constexpr unsigned char kPickle = 0x80;
// Messages up to this size are copied out and unpickled here; longer ones stay queued for
// _get_slow, which unpickles them in place (_base.py: _SCRATCH).
constexpr std::size_t kCopyLimit = 16384;
// get_many()'s default max_messages_to_get, faster-fifo's.
constexpr Py_ssize_t kDefaultMost = 1000000000;
// put_many() sends its small messages in runs of at most this many (one reservation each).
constexpr std::size_t kRun = 64;

// What _attach() fixed; never changed afterwards except `pending` (after fork, in the child,
// while it has one thread), so put() and get() read it without a lock.
struct Attached {
  PyObject* channel = nullptr;   // the ipcxx.Channel
  PyObject* pending = nullptr;   // the spill buffer (a deque): non-empty means put() goes slow
  PyObject* dumps = nullptr;     // pickle.dumps
  PyObject* loads = nullptr;     // pickle.loads
  PyObject* protocol = nullptr;  // 5
  PyObject* collect = nullptr;   // the buffer_callback that gathers out-of-band buffers
  PyObject* keywords = nullptr;  // ("buffer_callback",)
  PyObject* empty = nullptr;     // queue.Empty
  std::size_t max_size = 0;      // the channel's max_message_size
  std::optional<posix::Semaphore> items;
  std::optional<posix::Semaphore> slots;  // a bounded queue: put() goes slow, get() frees one
  std::optional<posix::Semaphore> tasks;  // a JoinableQueue

  ~Attached() {
    Py_XDECREF(channel);
    Py_XDECREF(pending);
    Py_XDECREF(dumps);
    Py_XDECREF(loads);
    Py_XDECREF(protocol);
    Py_XDECREF(collect);
    Py_XDECREF(keywords);
    Py_XDECREF(empty);
  }
};

struct QueueCoreObject {
  PyObject_HEAD
  std::atomic<Attached*> attached;
  std::atomic<bool> closed;
};

QueueCoreObject* as_core(PyObject* self) { return reinterpret_cast<QueueCoreObject*>(self); }

// Out-of-band buffers of the pickling in progress on this thread (a list, made on the first
// one). A pickling that puts to a queue from inside __reduce__ nests: each call keeps its own.
thread_local PyObject* collected = nullptr;

PyObject* collect_buffer(PyObject*, PyObject* buffer) {
  if (!collected && !(collected = PyList_New(0))) return nullptr;
  if (PyList_Append(collected, buffer) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyMethodDef collect_def = {"_collect_buffer", collect_buffer, METH_O, nullptr};

// pickle.dumps(obj, 5, buffer_callback=...) with the buffers it produced (a list, or null).
PyObject* pickle_object(const Attached& state, PyObject* obj, PyObject*& buffers) {
  PyObject* outer = collected;
  collected = nullptr;
  PyObject* arguments[] = {obj, state.protocol, state.collect};
  PyObject* data = PyObject_Vectorcall(state.dumps, arguments, 2, state.keywords);
  buffers = collected;
  collected = outer;
  if (data && !PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "dumps returned %.50s, not bytes", Py_TYPE(data)->tp_name);
    Py_CLEAR(data);
  }
  if (!data) Py_CLEAR(buffers);
  return data;
}

// self.<name>(*args, **kwargs) for a call this half does not own, with the arguments as given.
PyObject* delegate(PyObject* self, const char* name, PyObject* const* args, Py_ssize_t nargs,
                   PyObject* kwnames) {
  PyObject* method = PyUnicode_InternFromString(name);
  if (!method) return nullptr;
  const Py_ssize_t count = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
  PyObject* small[8];
  PyObject** all = count + 1 <= 8 ? small : PyMem_New(PyObject*, count + 1);
  PyObject* result = nullptr;
  if (!all) {
    PyErr_NoMemory();
  } else {
    all[0] = self;
    for (Py_ssize_t index = 0; index < count; ++index) all[index + 1] = args[index];
    result = PyObject_VectorcallMethod(method, all, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                       kwnames);
    if (all != small) PyMem_Free(all);
  }
  Py_DECREF(method);
  return result;
}

PyObject* call_method(PyObject* self, const char* name, PyObject* first, PyObject* second) {
  PyObject* arguments[] = {first, second};
  return delegate(self, name, arguments, second ? 2 : 1, nullptr);
}

// Runs a semaphore step; false with OSError set when the semaphore failed.
template <typename Step>
bool counted(Step&& step) {
  try {
    step();
    return true;
  } catch (const Error& error) {
    raise_os_error(error.errno_value(), error.object().c_str());
  } catch (...) {
    raise_standard_exception();
  }
  return false;
}

PyObject* core_put(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  QueueCoreObject* core = as_core(self);
  Attached* state = core->attached.load(std::memory_order_acquire);
  // put(obj) and put(obj, block): an unbounded queue never waits, so `block` changes nothing
  // (_put_slow only tests its truth, as here); a timeout is validated there.
  if (!state || nargs < 1 || nargs > 2 || kwnames || state->slots || core->closed.load())
    return delegate(self, "_put_slow", args, nargs, kwnames);
  if (nargs == 2 && PyObject_IsTrue(args[1]) < 0) return nullptr;
  const int spilling = PyObject_IsTrue(state->pending);
  if (spilling < 0) return nullptr;
  if (spilling) return delegate(self, "_put_slow", args, nargs, kwnames);
  PyObject* buffers = nullptr;
  PyObject* data = pickle_object(*state, args[0], buffers);
  if (!data) return nullptr;
  PyObject* result = nullptr;
  if (buffers || static_cast<std::size_t>(PyBytes_GET_SIZE(data)) > state->max_size) {
    PyObject* parts = buffers ? buffers : PyList_New(0);
    if (parts) result = call_method(self, "_put_pickled", data, parts);
    Py_XDECREF(parts);
  } else if (counted([&] {
               // Counted before the message is in the ring, as _put_slow does: a consumer that
               // takes it at once finds it counted.
               state->items->release();
               if (state->tasks) state->tasks->release();
             })) {
    const auto* bytes = reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(data));
    const int sent =
        send_now(state->channel, {bytes, static_cast<std::size_t>(PyBytes_GET_SIZE(data))});
    if (sent == 1) {
      result = Py_NewRef(Py_None);
    } else {
      // No room now (spill), or an error: the Python side retries, raises and uncounts.
      if (sent < 0) PyErr_Clear();
      result = call_method(self, "_put_counted", data, nullptr);
    }
  }
  Py_DECREF(data);
  return result;
}

// put_many()'s run of small pickles not yet in the ring (owned references), sent as one
// reservation when it is full, before anything else is put, and at the end.
class Run {
 public:
  Run() = default;
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  ~Run() { clear(); }
  bool empty() const { return pickles_.empty(); }
  std::size_t size() const { return pickles_.size(); }
  void add(PyObject* data) { pickles_.push_back(data); }  // takes the reference

  // Counts and sends the run: what fits now goes in as one reservation; the rest, in order,
  // to _put_counted (the spill buffer). False with an error set when something failed; the
  // objects of the run not put are not counted then.
  bool flush(PyObject* self, Attached& state) {
    if (pickles_.empty()) return true;
    std::vector<std::span<const std::byte>> messages;
    messages.reserve(pickles_.size());
    for (PyObject* data : pickles_)
      messages.emplace_back(reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(data)),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(data)));
    std::size_t counts = 0;
    if (!counted([&] {
          for (; counts < pickles_.size(); ++counts) {
            state.items->release();
            if (state.tasks) state.tasks->release();
          }
        })) {
      uncount(state, counts);  // a semaphore at its maximum: none of the run is put
      clear();
      return false;
    }
    Py_ssize_t sent = send_many_now(state.channel, messages);
    if (sent < 0) {
      PyErr_Clear();  // _put_counted meets it again, raises it and uncounts
      sent = 0;
    }
    bool ok = true;
    for (std::size_t index = static_cast<std::size_t>(sent); index < pickles_.size(); ++index) {
      PyObject* done = call_method(self, "_put_counted", pickles_[index], nullptr);
      if (!done) {
        uncount(state, pickles_.size() - index - 1);  // the rest were counted, not put
        ok = false;
        break;
      }
      Py_DECREF(done);
    }
    clear();
    return ok;
  }

 private:
  void clear() {
    for (PyObject* data : pickles_) Py_DECREF(data);
    pickles_.clear();
  }
  // Takes back the counts of `how_many` objects counted and not put (errors ignored: the
  // semaphores were just raised by this call).
  static void uncount(Attached& state, std::size_t how_many) {
    try {
      for (std::size_t index = 0; index < how_many; ++index) {
        state.items->try_acquire();
        if (state.tasks) state.tasks->try_acquire();
      }
    } catch (...) {
    }
  }

  std::vector<PyObject*> pickles_;
};

PyObject* core_put_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  QueueCoreObject* core = as_core(self);
  Attached* state = core->attached.load(std::memory_order_acquire);
  // put_many(objs) and put_many(objs, block) of an unbounded queue, as put(obj) for each.
  if (!state || nargs < 1 || nargs > 2 || kwnames || state->slots || core->closed.load())
    return delegate(self, "_put_many_slow", args, nargs, kwnames);
  if (nargs == 2 && PyObject_IsTrue(args[1]) < 0) return nullptr;
  PyObject* objects = PySequence_Fast(args[0], "put_many() needs an iterable of objects");
  if (!objects) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(objects);
  Run run;
  bool ok = true;
  for (Py_ssize_t index = 0; ok && index < count; ++index) {
    PyObject* obj = PySequence_Fast_GET_ITEM(objects, index);
    const int spilling = PyObject_IsTrue(state->pending);
    if (spilling != 0) {
      // Behind the spill buffer (or an error): the rest, in order, one by one.
      ok = spilling > 0 && run.flush(self, *state);
      for (; ok && index < count; ++index) {
        PyObject* done =
            call_method(self, "_put_slow", PySequence_Fast_GET_ITEM(objects, index), nullptr);
        ok = done != nullptr;
        Py_XDECREF(done);
      }
      break;
    }
    PyObject* buffers = nullptr;
    PyObject* data = pickle_object(*state, obj, buffers);
    if (!data) {
      // The objects before this one are put, as a loop of put() would have put them; then
      // its error (unless putting them failed: that error is raised instead).
      HeldException failure;
      if (run.flush(self, *state)) failure.restore();
      ok = false;
      break;
    }
    if (buffers || static_cast<std::size_t>(PyBytes_GET_SIZE(data)) > state->max_size) {
      ok = run.flush(self, *state);
      PyObject* parts = buffers ? buffers : PyList_New(0);
      PyObject* done = ok && parts ? call_method(self, "_put_pickled", data, parts) : nullptr;
      ok = done != nullptr;
      Py_XDECREF(done);
      Py_XDECREF(parts);
      Py_DECREF(data);
      continue;
    }
    run.add(data);
    if (run.size() == kRun) ok = run.flush(self, *state);
  }
  if (ok) ok = run.flush(self, *state);
  Py_DECREF(objects);
  if (!ok) return nullptr;
  Py_RETURN_NONE;
}

// The `block` argument of get()/get_many(): a wait without limit, or a poll. False with an
// error set when its truth cannot be told.
bool block_timeout(PyObject* block, Timeout& timeout) {
  timeout = Timeout{};
  const int truth = PyObject_IsTrue(block);
  if (truth < 0) return false;
  if (!truth) timeout = Timeout{false, std::chrono::nanoseconds(0)};
  return true;
}

// The object in a message taken (and uncounted) by get() or get_many(): a plain pickle is
// unpickled here, any other kind by _decode_taken. Consumes the reference to `message`.
PyObject* object_of(PyObject* self, const Attached& state, PyObject* message) {
  PyObject* obj = nullptr;
  if (PyBytes_GET_SIZE(message) > 0 &&
      static_cast<unsigned char>(PyBytes_AS_STRING(message)[0]) == kPickle)
    obj = PyObject_CallOneArg(state.loads, message);
  else
    obj = call_method(self, "_decode_taken", message, nullptr);
  Py_DECREF(message);
  return obj;
}

// A message was taken: the counts say so before the object is made (a failing unpickling loses
// it, as a failing _get_slow does). Consumes `message` when it fails.
bool uncount_taken(Attached& state, PyObject* message) {
  if (counted([&] {
        state.items->try_acquire();  // false: a message not put by a queue, or a dead producer's
        if (state.slots) state.slots->release();
      }))
    return true;
  Py_DECREF(message);
  return false;
}

// The error of a first take that found nothing: queue.Empty for a poll, else what it is.
PyObject* nothing_taken(const Attached& state, const Timeout& timeout) {
  if (!timeout.forever && PyErr_ExceptionMatches(PyExc_TimeoutError)) {
    PyErr_Clear();
    PyErr_SetNone(state.empty);
  }
  return nullptr;
}

PyObject* core_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  QueueCoreObject* core = as_core(self);
  Attached* state = core->attached.load(std::memory_order_acquire);
  // get() and get(block): without `block` a poll, queue.Empty when nothing is there.
  if (!state || nargs > 1 || kwnames || core->closed.load())
    return delegate(self, "_get_slow", args, nargs, kwnames);
  Timeout timeout;
  if (nargs == 1 && !block_timeout(args[0], timeout)) return nullptr;
  bool too_large = false;
  PyObject* message = receive_bytes(state->channel, kCopyLimit, timeout, too_large);
  if (!message)
    return too_large ? delegate(self, "_get_slow", args, nargs, kwnames)
                     : nothing_taken(*state, timeout);
  if (!uncount_taken(*state, message)) return nullptr;
  return object_of(self, *state, message);
}

PyObject* core_get_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  QueueCoreObject* core = as_core(self);
  Attached* state = core->attached.load(std::memory_order_acquire);
  // get_many(), get_many(block) and max_messages_to_get= (the only keyword taken here).
  const Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  const bool only_max =
      keywords == 0 ||
      (keywords == 1 &&
       PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "max_messages_to_get") == 0);
  if (!state || nargs > 1 || !only_max || core->closed.load())
    return delegate(self, "_get_many_slow", args, nargs, kwnames);
  Py_ssize_t most = kDefaultMost;
  if (keywords == 1) {
    most = PyNumber_AsSsize_t(args[nargs], PyExc_OverflowError);
    if (most == -1 && PyErr_Occurred()) return nullptr;
    if (most < 1) return delegate(self, "_get_many_slow", args, nargs, kwnames);  // its error
  }
  Timeout timeout;
  if (nargs == 1 && !block_timeout(args[0], timeout)) return nullptr;
  PyObject* taken = PyList_New(0);
  if (!taken) return nullptr;
  const Timeout poll{false, std::chrono::nanoseconds(0)};
  for (Py_ssize_t count = 0; count < most; ++count) {
    bool too_large = false;
    PyObject* message =
        receive_bytes(state->channel, kCopyLimit, count ? poll : timeout, too_large);
    if (!message) {
      if (count == 0) {
        Py_DECREF(taken);
        return too_large ? delegate(self, "_get_many_slow", args, nargs, kwnames)
                         : nothing_taken(*state, timeout);
      }
      // Nothing more now, the end of the stream, or a message for _get_slow: what was taken is
      // the result; whatever stopped the batch is found again by the next call.
      PyErr_Clear();
      break;
    }
    PyObject* obj = uncount_taken(*state, message) ? object_of(self, *state, message) : nullptr;
    if (!obj || PyList_Append(taken, obj) < 0) {
      Py_XDECREF(obj);
      // The objects taken before the failure are out of the ring: the exception carries them.
      if (PyList_GET_SIZE(taken)) set_on_raised("taken", taken);
      Py_DECREF(taken);
      return nullptr;
    }
    Py_DECREF(obj);
  }
  return taken;
}

// _attach(channel, pending, dumps, loads, items, slots, tasks, empty): the semaphores by name
// (slots and tasks None when the queue has none), opened again here; `empty` is queue.Empty.
// Once per object.
PyObject* core_attach(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 8) {
    PyErr_SetString(PyExc_TypeError, "_attach() takes 8 arguments");
    return nullptr;
  }
  if (!PyExceptionClass_Check(args[7])) {
    PyErr_SetString(PyExc_TypeError, "_attach() needs an exception class last");
    return nullptr;
  }
  if (!is_channel(self, args[0])) {
    PyErr_SetString(PyExc_TypeError, "_attach() needs an ipcxx.Channel");
    return nullptr;
  }
  std::string names[3];
  bool present[3] = {};
  for (int index = 0; index < 3; ++index) {
    PyObject* name = args[4 + index];
    if (name == Py_None && index > 0) continue;
    if (!convert_required_name(name, &names[index])) return nullptr;
    present[index] = true;
  }
  PyObject* size = PyObject_GetAttrString(args[0], "max_message_size");
  if (!size) return nullptr;
  const std::size_t max_size = PyLong_AsSize_t(size);
  Py_DECREF(size);
  if (max_size == static_cast<std::size_t>(-1) && PyErr_Occurred()) return nullptr;
  auto* state = new (std::nothrow) Attached;
  if (!state) return PyErr_NoMemory();
  state->channel = Py_NewRef(args[0]);
  state->pending = Py_NewRef(args[1]);
  state->dumps = Py_NewRef(args[2]);
  state->loads = Py_NewRef(args[3]);
  state->empty = Py_NewRef(args[7]);
  state->max_size = max_size;
  state->protocol = PyLong_FromLong(5);
  state->collect = PyCFunction_New(&collect_def, nullptr);
  state->keywords = Py_BuildValue("(s)", "buffer_callback");
  bool ok = state->protocol && state->collect && state->keywords;
  if (ok) {
    ok = counted([&] {
      state->items.emplace(posix::Semaphore::open(names[0]));
      if (present[1]) state->slots.emplace(posix::Semaphore::open(names[1]));
      if (present[2]) state->tasks.emplace(posix::Semaphore::open(names[2]));
    });
  }
  Attached* expected = nullptr;
  if (ok && !as_core(self)->attached.compare_exchange_strong(expected, state)) {
    PyErr_SetString(PyExc_RuntimeError, "_attach() called twice");
    ok = false;
  }
  if (!ok) {
    delete state;
    return nullptr;
  }
  Py_RETURN_NONE;
}

// _set_pending(deque): the spill buffer a fork child starts with. Only while this object has
// one thread (the child's hook after fork): put() reads it without a lock.
PyObject* core_set_pending(PyObject* self, PyObject* pending) {
  Attached* state = as_core(self)->attached.load(std::memory_order_acquire);
  if (state) Py_SETREF(state->pending, Py_NewRef(pending));
  Py_RETURN_NONE;
}

PyObject* core_close(PyObject* self, PyObject*) {
  as_core(self)->closed.store(true);
  Py_RETURN_NONE;
}

PyObject* core_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_core(self)->attached) std::atomic<Attached*>(nullptr);
  new (&as_core(self)->closed) std::atomic<bool>(false);
  return self;
}

int core_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  if (const Attached* state = as_core(self)->attached.load(std::memory_order_acquire)) {
    Py_VISIT(state->channel);
    Py_VISIT(state->pending);
    Py_VISIT(state->dumps);
    Py_VISIT(state->loads);
    Py_VISIT(state->empty);
  }
  return 0;
}

// Unreachable objects only: nobody is inside put() or get().
int core_clear(PyObject* self) {
  delete as_core(self)->attached.exchange(nullptr);
  return 0;
}

void core_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  core_clear(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef core_methods[] = {
    {"put", as_method<core_put>(), METH_FASTCALL | METH_KEYWORDS,
     "put($self, /, obj, block=True, timeout=None)\n--\n\n"
     "Puts `obj` at the end. Only a bounded queue with `maxsize` objects in it waits (at\n"
     "most `timeout` seconds if `block`; queue.Full when no place freed); a full ring never\n"
     "blocks: the object waits in this process's buffer. ValueError once closed."},
    {"_put_many", as_method<core_put_many>(), METH_FASTCALL | METH_KEYWORDS,
     "_put_many($self, /, objs, block=True, timeout=None)\n--\n\n"
     "Puts each object of `objs` in order, as put(obj, block, timeout) would one by one."},
    {"_get_many", as_method<core_get_many>(), METH_FASTCALL | METH_KEYWORDS,
     "_get_many($self, /, block=True, timeout=None, max_messages_to_get=1000000000)\n--\n\n"
     "Waits like get(block, timeout) for the first object, then takes those already there."},
    {"get", as_method<core_get>(), METH_FASTCALL | METH_KEYWORDS,
     "get($self, /, block=True, timeout=None)\n--\n\n"
     "Removes and returns the first object, waiting for one (at most `timeout` seconds if\n"
     "`block`); queue.Empty when none came. With end_of_stream=True, raises\n"
     "ipcxx.EndOfStream (an EOFError) once every producer closed or died and all is taken."},
    {"_attach", as_method<core_attach>(), METH_FASTCALL,
     "_attach($self, channel, pending, dumps, loads, items, slots, tasks, empty, /)\n--\n\n"
     "Gives the native half its ring, spill buffer, pickling and semaphores (once)."},
    {"_set_pending", core_set_pending, METH_O,
     "_set_pending($self, pending, /)\n--\n\nThe spill buffer after fork (in the child)."},
    {"_core_close", core_close, METH_NOARGS,
     "_core_close($self, /)\n--\n\nFrom now on every call goes to the Python methods."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot core_slots[] = {
    {Py_tp_doc, const_cast<char*>("The native half of ipcxx.Queue (not public).")},
    {Py_tp_new, reinterpret_cast<void*>(core_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(core_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(core_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(core_clear)},
    {Py_tp_methods, core_methods},
    {0, nullptr}};

}  // namespace

PyType_Spec& queue_core_spec() {
  // Named where it is importable: pickle finds Queue.put (this type's method) by
  // `__module__` and `__qualname__`, and the ipcxx package does not export this type.
  static PyType_Spec spec = {"ipcxx._ipcxx._QueueCore", sizeof(QueueCoreObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
                             core_slots};
  return spec;
}

}  // namespace ipcxx::python::ipcxx_state

// The zero-copy views of ipcxx.Channel: reserve() and peek() return one of these context
// managers; __enter__ gives a memoryview of the message's bytes inside the ring.
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <utility>

#include "common/object_lock.hpp"
#include "extensions/channel.hpp"
#include "extensions/state.hpp"
#include "ipcxx/process.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

// A view's life (docs/guide.md "Channel", the lifetime rule):
//   open     -> exiting   one __exit__ won; it releases the memoryview, then decides
//   exiting  -> finished  no export of the view was left: committed, discarded or consumed
//   exiting  -> leased    an export outlives the block: BufferError, and the message stays
//                         the view's until the last export is released (then discarded or
//                         consumed: never memory that producers reuse while it is aliased)
//   leased   -> finished  at that last release
//   open     -> finished  collected (or freed) without an exit: discarded or consumed
enum class Stage : std::uint8_t { open, exiting, leased, finished };

struct ViewObject {
  PyObject_HEAD
  // Keeps the mapping alive while any view (or memoryview of it) exists, even after the
  // Channel object was closed.
  std::shared_ptr<Channel> channel;
  std::uint64_t position;
  std::byte* data;
  Py_ssize_t size;
  std::uint64_t generation;  // a fork child must not finish its parent's message
  bool writable;             // a reservation (else a peeked message)
  // Under `lock` (free-threaded builds: two threads may exit, export and release at once;
  // CPython's memoryview.release() has no lock of its own, so only the one exit that wins
  // `open -> exiting` may call it).
  Stage stage;
  unsigned long exiting_thread;  // the winner of `open -> exiting` (a nested exit on it returns)
  Py_ssize_t exports;            // buffers exported and not yet released
  PyObject* memoryview;          // the one __enter__ made; taken out by __exit__
  ObjectLock lock;
};

ViewObject* as_view(PyObject* self) { return reinterpret_cast<ViewObject*>(self); }

Stage stage_of(ViewObject* view) {
  ObjectLockGuard guard(view->lock);
  return view->stage;
}

// Commits or discards a reservation, consumes a peeked message. Called once, by whoever moved
// the view to `finished` (no lock held: the core call runs no Python code and never blocks).
void finish(ViewObject* view, bool commit) {
  if (view->generation != fork_generation() || !view->channel) return;
  if (view->writable) {
    const ChannelReservation reservation{view->position, view->data,
                                         static_cast<std::size_t>(view->size)};
    if (commit)
      view->channel->commit(reservation);
    else
      view->channel->discard(reservation);
  } else {
    view->channel->consume(
        ChannelDelivery{view->position, view->data, static_cast<std::size_t>(view->size)});
  }
}

PyObject* view_new(PyTypeObject*, PyObject*, PyObject*) {
  PyErr_SetString(PyExc_TypeError, "views are made by Channel.reserve() and Channel.peek()");
  return nullptr;
}

int view_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(as_view(self)->memoryview);  // its managed buffer refers back to the view: a cycle
  return 0;
}

int view_clear(PyObject* self) {
  ViewObject* view = as_view(self);
  PyObject* memoryview = nullptr;
  {
    ObjectLockGuard guard(view->lock);
    memoryview = std::exchange(view->memoryview, nullptr);
  }
  Py_XDECREF(memoryview);
  return 0;
}

void view_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  ViewObject* view = as_view(self);
  // Every export holds a reference, so none is left. Dropped without an exit (never entered,
  // or collected with its memoryview): a reservation is given up (never sent half-written), a
  // peeked message counts as read.
  if (view->stage == Stage::open) {
    view->stage = Stage::finished;
    finish(view, false);
  }
  Py_CLEAR(view->memoryview);
  view->channel.~shared_ptr();
  view->lock.~ObjectLock();
  type->tp_free(self);
  Py_DECREF(type);
}

int view_getbuffer(PyObject* self, Py_buffer* buffer, int flags) {
  ViewObject* view = as_view(self);
  buffer->obj = nullptr;
  if ((flags & PyBUF_WRITABLE) && !view->writable) {
    PyErr_SetString(PyExc_BufferError, "a peeked message is read-only");
    return -1;
  }
  Stage stage = Stage::open;
  {
    ObjectLockGuard guard(view->lock);
    stage = view->stage;
    if (stage == Stage::open) ++view->exports;
  }
  if (stage != Stage::open) {
    PyErr_SetString(PyExc_BufferError,
                    stage == Stage::finished
                        ? "the message is finished: its bytes are the channel's again"
                        : "the view was exited: no new buffer of it can be made");
    return -1;
  }
  // Cannot fail now: the only refusal of PyBuffer_FillInfo (writable on read-only) is above.
  return PyBuffer_FillInfo(buffer, self, view->data, view->size, view->writable ? 0 : 1, flags);
}

void view_releasebuffer(PyObject* self, Py_buffer*) {
  ViewObject* view = as_view(self);
  bool last = false;
  {
    ObjectLockGuard guard(view->lock);
    last = --view->exports == 0 && view->stage == Stage::leased;
    if (last) view->stage = Stage::finished;
  }
  // The block was exited while this export lived (BufferError then): given up or consumed now.
  if (last) finish(view, false);
}

PyObject* raise_exited(const ViewObject* view, Stage stage) {
  PyErr_SetString(PyExc_ValueError,
                  stage == Stage::finished ? "the message is finished"
                  : view->writable ? "the view was exited: the reservation is held by an export"
                                   : "the view was exited: the message is held by an export");
  return nullptr;
}

PyObject* view_enter(PyObject* self, PyObject*) {
  ViewObject* view = as_view(self);
  Stage stage = Stage::open;
  {
    ObjectLockGuard guard(view->lock);
    stage = view->stage;
    if (stage == Stage::open && view->memoryview) return Py_NewRef(view->memoryview);
  }
  if (stage != Stage::open) return raise_exited(view, stage);
  // Made outside the lock (an allocation may run Python code, and getbuffer takes the lock);
  // a thread that entered meanwhile may have stored its own: then that one is handed out.
  PyObject* made = PyMemoryView_FromObject(self);
  if (!made) return nullptr;
  PyObject* result = nullptr;
  {
    ObjectLockGuard guard(view->lock);
    stage = view->stage;
    if (stage == Stage::open) {
      if (!view->memoryview) view->memoryview = std::exchange(made, nullptr);
      result = Py_NewRef(view->memoryview);
    }
  }
  Py_XDECREF(made);  // not stored: another thread's came first, or the view was exited
  return result ? result : raise_exited(view, stage);
}

// METH_FASTCALL: the with statement calls it with (type, value, traceback) every time.
PyObject* view_exit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs > 3) {
    PyErr_Format(PyExc_TypeError, "__exit__ expected at most 3 arguments, got %zd", nargs);
    return nullptr;
  }
  ViewObject* view = as_view(self);
  const unsigned long me = PyThread_get_thread_ident();
  PyObject* memoryview = nullptr;
  for (;;) {
    {
      ObjectLockGuard guard(view->lock);
      if (view->stage == Stage::open) {
        view->stage = Stage::exiting;
        view->exiting_thread = me;
        memoryview = std::exchange(view->memoryview, nullptr);
        break;
      }
      // Another thread is exiting it: wait until it is done, so that every exit returns with
      // the view finished (or leased). Not when the exit in progress is this thread's own
      // (a __del__ run inside it) or a fork parent's thread that does not exist here.
      if (view->stage != Stage::exiting || view->exiting_thread == me ||
          view->generation != fork_generation())
        Py_RETURN_FALSE;
    }
    Py_BEGIN_ALLOW_THREADS
    std::this_thread::yield();
    Py_END_ALLOW_THREADS
  }
  if (memoryview) {
    // Forbid further use of the memoryview handed out; fails while something exports it.
    PyObject* released = PyObject_CallMethodNoArgs(memoryview, of(self).release_name);
    if (released)
      Py_DECREF(released);
    else
      PyErr_Clear();  // an export of it lives: the count below shows it
    Py_DECREF(memoryview);
  }
  Py_ssize_t exports = 0;
  {
    ObjectLockGuard guard(view->lock);
    exports = view->exports;
    view->stage = exports == 0 ? Stage::finished : Stage::leased;
  }
  if (exports == 0) {
    finish(view, nargs == 0 || args[0] == Py_None);
    Py_RETURN_FALSE;
  }
  // Never finish while something aliases the bytes: producers would overwrite them.
  PyErr_Format(PyExc_BufferError,
               "the view's memory is still exported (a slice, a cast, a numpy array or another "
               "buffer made from it in the block is alive): the %s stays held until every such "
               "buffer is released, then %s",
               view->writable ? "reservation" : "message",
               view->writable ? "discarded (never sent)" : "consumed");
  return nullptr;
}

PyObject* view_get_size(PyObject* self, void*) { return PyLong_FromSsize_t(as_view(self)->size); }
PyObject* view_get_finished(PyObject* self, void*) {
  return PyBool_FromLong(stage_of(as_view(self)) == Stage::finished);
}

PyObject* view_repr(PyObject* self) {
  ViewObject* view = as_view(self);
  const Stage stage = stage_of(view);
  return PyUnicode_FromFormat("<ipcxx.ChannelView %s of %zd bytes%s>",
                              view->writable ? "reservation" : "peek", view->size,
                              stage == Stage::finished ? " (finished)"
                              : stage == Stage::open   ? ""
                                                       : " (exited, held by an export)");
}

int reject_write(PyObject*, PyObject*, void*) {
  PyErr_SetString(PyExc_AttributeError, "attribute is read-only");
  return -1;
}

PyMethodDef view_methods[] = {
    {"__enter__", view_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nA memoryview of the message's bytes in the ring."},
    {"__exit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(view_exit)),
     METH_FASTCALL,
     "Finish the message: a reservation is sent (discarded after an exception), a peeked\n"
     "message is consumed. The memoryview is released. BufferError when a buffer made from\n"
     "the view in the block is still alive: the message then stays held until it is released,\n"
     "and is discarded (a reservation) or consumed (a peek)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef view_getset[] = {
    {"size", view_get_size, reject_write, "The message's size in bytes (read-only).", nullptr},
    {"finished", view_get_finished, reject_write, "True once sent, discarded or consumed.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot view_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("A message in a Channel's ring, from reserve() or peek(); use it in a\n"
                       "with statement.")},
    {Py_tp_new, reinterpret_cast<void*>(view_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(view_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(view_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(view_clear)},
    {Py_tp_methods, view_methods},
    {Py_tp_getset, view_getset},
    {Py_tp_repr, reinterpret_cast<void*>(view_repr)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(view_getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(view_releasebuffer)},
    {0, nullptr}};

PyObject* make_view(PyObject* owner, const std::shared_ptr<Channel>& channel,
                    std::uint64_t position, std::byte* data, std::size_t size, bool writable) {
  auto* type = reinterpret_cast<PyTypeObject*>(of(owner).channel_view_type);
  PyObject* self = type ? type->tp_alloc(type, 0) : nullptr;
  if (!self) {
    // The message is taken: give it up so that it never blocks the ring.
    if (writable)
      channel->discard({position, data, size});
    else
      channel->consume_lost({position, data, size});
    return nullptr;
  }
  // tp_alloc zeroed the object and tracked it: the collector sees a null memoryview.
  ViewObject* view = as_view(self);
  new (&view->channel) std::shared_ptr<Channel>(channel);
  view->position = position;
  view->data = data;
  view->size = static_cast<Py_ssize_t>(size);
  view->generation = fork_generation();
  view->writable = writable;
  view->stage = Stage::open;
  view->exiting_thread = 0;
  view->exports = 0;
  view->memoryview = nullptr;
  new (&view->lock) ObjectLock();
  return self;
}

}  // namespace

PyObject* make_reservation_view(PyObject* owner, const std::shared_ptr<Channel>& channel,
                                const ChannelReservation& reservation) {
  return make_view(owner, channel, reservation.position, reservation.data, reservation.size, true);
}

PyObject* make_peek_view(PyObject* owner, const std::shared_ptr<Channel>& channel,
                         const ChannelDelivery& delivery) {
  return make_view(owner, channel, delivery.position, const_cast<std::byte*>(delivery.data),
                   delivery.size, false);
}

PyType_Spec& channel_view_spec() {
  // Garbage-collected: a view and the memoryview __enter__ made refer to each other.
  static PyType_Spec spec = {"ipcxx.ChannelView", sizeof(ViewObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, view_slots};
  return spec;
}

}  // namespace ipcxx::python::ipcxx_state

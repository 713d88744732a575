// The zero-copy views of ipcxx.Channel: reserve() and peek() return one of these context
// managers; __enter__ gives a memoryview of the message's bytes inside the ring.
#include <atomic>
#include <memory>
#include <new>
#include <utility>

#include "common/object_lock.hpp"
#include "extensions/channel.hpp"
#include "extensions/state.hpp"
#include "ipcxx/process.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

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
  // Two threads leaving one view (or one leaving while another drops the last other
  // reference) must not both commit or consume: with object locks on, the one whose exchange
  // turns it true finishes. A regular build's GIL serialises finish() (no Python code in it).
#if IPCXX_OBJECT_LOCKS_ON
  std::atomic<bool> finished;
#else
  bool finished;
#endif
  PyObject* memoryview;  // the one __enter__ made (set once, under `lock`); released on exit
  ObjectLock lock;
};

ViewObject* as_view(PyObject* self) { return reinterpret_cast<ViewObject*>(self); }

bool is_finished(const ViewObject* view) {
#if IPCXX_OBJECT_LOCKS_ON
  return view->finished.load(std::memory_order_acquire);
#else
  return view->finished;
#endif
}

// True for exactly one caller: the one that finishes the view.
bool take_finish(ViewObject* view) {
#if IPCXX_OBJECT_LOCKS_ON
  return !view->finished.exchange(true, std::memory_order_acq_rel);
#else
  if (view->finished) return false;
  view->finished = true;
  return true;
#endif
}

// Commits or discards a reservation, consumes a peeked message. Idempotent.
void finish(ViewObject* view, bool commit) {
  if (!take_finish(view)) return;
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

void view_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  ViewObject* view = as_view(self);
  // Dropped unfinished (never entered, or collected): a reservation is given up (never sent
  // half-written), a peeked message counts as read.
  finish(view, false);
  Py_CLEAR(view->memoryview);
  view->channel.~shared_ptr();
  view->lock.~ObjectLock();
  type->tp_free(self);
  Py_DECREF(type);
}

int view_getbuffer(PyObject* self, Py_buffer* buffer, int flags) {
  ViewObject* view = as_view(self);
  if (is_finished(view)) {
    PyErr_SetString(PyExc_BufferError,
                    "the message is finished: its bytes are the channel's again");
    buffer->obj = nullptr;
    return -1;
  }
  return PyBuffer_FillInfo(buffer, self, view->data, view->size, view->writable ? 0 : 1, flags);
}

PyObject* view_enter(PyObject* self, PyObject*) {
  ViewObject* view = as_view(self);
  if (is_finished(view)) {
    PyErr_SetString(PyExc_ValueError, "the message is finished");
    return nullptr;
  }
  PyObject* stored = nullptr;
  {
    ObjectLockGuard guard(view->lock);
    stored = view->memoryview;
  }
  if (!stored) {
    // Made outside the lock (an allocation may run the collector, hence Python code); a
    // thread that entered meanwhile may have stored its own: then that one is handed out.
    PyObject* made = PyMemoryView_FromObject(self);
    if (!made) return nullptr;
    if constexpr (kObjectLocks) {
      ObjectLockGuard guard(view->lock);
      if (view->memoryview) {
        stored = view->memoryview;
      } else {
        view->memoryview = stored = made;
        made = nullptr;
      }
    } else {
      view->memoryview = stored = std::exchange(made, nullptr);
    }
    Py_XDECREF(made);  // the other thread's was stored first
  }
  // Set once and cleared only by the deallocator: `stored` stays valid while self lives.
  return Py_NewRef(stored);
}

// METH_FASTCALL: the with statement calls it with (type, value, traceback) every time.
PyObject* view_exit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs > 3) {
    PyErr_Format(PyExc_TypeError, "__exit__ expected at most 3 arguments, got %zd", nargs);
    return nullptr;
  }
  ViewObject* view = as_view(self);
  finish(view, nargs == 0 || args[0] == Py_None);
  PyObject* memoryview = nullptr;
  {
    // Set once by __enter__ and cleared only by the deallocator: no reference needed.
    ObjectLockGuard guard(view->lock);
    memoryview = view->memoryview;
  }
  if (memoryview) {
    // Forbid further use of the view handed out. A slice or export taken from it stays
    // readable (the mapping lives as long as it), but the bytes belong to other messages now.
    PyObject* released = PyObject_CallMethodNoArgs(memoryview, of(self).release_name);
    if (released)
      Py_DECREF(released);
    else
      PyErr_Clear();  // an export of it is still alive: it keeps the mapping, nothing breaks
  }
  Py_RETURN_FALSE;
}

PyObject* view_get_size(PyObject* self, void*) { return PyLong_FromSsize_t(as_view(self)->size); }
PyObject* view_get_finished(PyObject* self, void*) {
  return PyBool_FromLong(is_finished(as_view(self)));
}

PyObject* view_repr(PyObject* self) {
  ViewObject* view = as_view(self);
  return PyUnicode_FromFormat("<ipcxx.ChannelView %s of %zd bytes%s>",
                              view->writable ? "reservation" : "peek", view->size,
                              is_finished(view) ? " (finished)" : "");
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
     "message is consumed. The memoryview is released."},
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
    {Py_tp_methods, view_methods},
    {Py_tp_getset, view_getset},
    {Py_tp_repr, reinterpret_cast<void*>(view_repr)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(view_getbuffer)},
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
  ViewObject* view = as_view(self);
  new (&view->channel) std::shared_ptr<Channel>(channel);
  view->position = position;
  view->data = data;
  view->size = static_cast<Py_ssize_t>(size);
  view->generation = fork_generation();
  view->writable = writable;
#if IPCXX_OBJECT_LOCKS_ON
  new (&view->finished) std::atomic<bool>(false);
#else
  view->finished = false;
#endif
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
  static PyType_Spec spec = {"ipcxx.ChannelView", sizeof(ViewObject), 0, Py_TPFLAGS_DEFAULT,
                             view_slots};
  return spec;
}

}  // namespace ipcxx::python::ipcxx_state

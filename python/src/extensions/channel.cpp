// ipcxx.Channel: argument conversion, the try-then-wait loop without the GIL, and errors around
// ipcxx::Channel. Zero-copy views are in extensions/channel_view.cpp.
#include "extensions/channel.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/blocking_call.hpp"
#include "common/conversions.hpp"
#include "common/errors.hpp"
#include "common/held_buffer.hpp"
#include "common/method_cast.hpp"
#include "common/object_lock.hpp"
#include "extensions/arguments.hpp"
#include "extensions/state.hpp"
#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"

namespace ipcxx::python::ipcxx_state {

namespace {

using Clock = std::chrono::steady_clock;

struct ChannelObject {
  PyObject_HEAD
  // Shared with waiters (which pin it across a wait without the GIL) and with zero-copy
  // views (which keep the mapping alive after close()). `handle` and `name` are copied,
  // reset and replaced under `lock` (a shared_ptr copy racing a reset is a data race without
  // the GIL: docs/free-threading.md); the ring itself is safe for many threads by its protocol.
  std::shared_ptr<Channel> handle;
  PyObject* name;  // str; null until __init__ succeeds
  ObjectLock lock;
};

ChannelObject* as_channel(PyObject* self) { return reinterpret_cast<ChannelObject*>(self); }

// The handle a waiting method uses (null: closed), copied under the lock: its attempt may run
// Python code (an allocation), which may close the object. On a regular build this is the
// shared_ptr copy the GIL-only code made, no more.
std::shared_ptr<Channel> current(ChannelObject* object) {
  ObjectLockGuard guard(object->lock);
  return object->handle;
}

// The handle for a short use that runs no Python code before it ends (an attribute, unlink()):
// a shared copy with object locks on; on a regular build the raw pointer, since the GIL is
// held from the read to the end of the use. (Fewer shared_ptr copies also keep -Os inlining
// the reference count on the send/receive path: measured, docs/free-threading.md.)
#if IPCXX_OBJECT_LOCKS_ON
using BorrowedChannel = std::shared_ptr<Channel>;
#else
using BorrowedChannel = Channel*;
#endif

BorrowedChannel borrowed(ChannelObject* object) {
  ObjectLockGuard guard(object->lock);
#if IPCXX_OBJECT_LOCKS_ON
  return object->handle;
#else
  return object->handle.get();
#endif
}

PyObject* raise_closed() {
  PyErr_SetString(PyExc_ValueError, "the Channel is closed");
  return nullptr;
}

PyObject* raise_timeout(const char* what) {
  PyErr_Format(PyExc_TimeoutError, "timed out waiting for %s", what);
  return nullptr;
}

// Translates the C++ exception being handled. Returns null.
PyObject* raise_current(PyObject* owner) {
  try {
    throw;
  } catch (const ChannelError& error) {
    PyErr_SetString(of(owner).channel_error, error.what());
  } catch (const Error& error) {
    raise_os_error(error.errno_value(), error.object().c_str());
  } catch (...) {
    raise_standard_exception();
  }
  return nullptr;
}

PyObject* raise_failure(PyObject* owner, const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (...) {
    return raise_current(owner);
  }
}

template <typename Body>
bool guarded(PyObject* owner, Body&& body) {
  try {
    body();
    return true;
  } catch (...) {
    raise_current(owner);
    return false;
  }
}

// What one attempt of a method did: finished (result or Python error set), must wait, or
// found the end of the stream (docs/channel.md, "End of stream").
enum class Attempt { finished, wait_readable, wait_writable, ended };

// A consumer's attempt that found nothing: the end of the stream, or wait.
Attempt nothing_to_claim(Channel& channel) {
  return channel.ended() ? Attempt::ended : Attempt::wait_readable;
}

// The loop every method runs: an attempt with the GIL held; when it must wait, a sliced wait
// without the GIL (signal handlers between slices), then another attempt. `attempt(channel)`
// returns Attempt and sets `result` when finished; `wait_size` is what a producer waits for.
// `progress` (optional) counts what the call has done so far (send_many's messages sent): a
// wait after progress is a new wait and spins again (only the retry of a wait that found
// nothing new does not), else a long batch would sleep at every refill of the ring.
template <typename Body>
PyObject* run(PyObject* self, const Timeout& timeout, const char* what, std::size_t& wait_size,
              Body&& attempt, const std::size_t* progress = nullptr) {
  ChannelObject* object = as_channel(self);
  const Clock::time_point deadline =
      timeout.forever
          ? Clock::time_point::max()
          : Clock::now() + std::chrono::duration_cast<Clock::duration>(
                               std::min(timeout.duration, std::chrono::nanoseconds(INT64_MAX / 4)));
  std::size_t progress_before = progress ? *progress : 0;
  for (bool first = true;; first = false) {
    // Read the handle now: converting arguments or a signal handler may have closed it.
    std::shared_ptr<Channel> handle = current(object);
    if (!handle) return raise_closed();
    Attempt step = Attempt::finished;
    PyObject* result = nullptr;
    if (!guarded(self, [&] {
          // reserve() and peek() hand this very handle to their view.
          if constexpr (std::is_invocable_v<Body&, Channel&, PyObject*&,
                                            const std::shared_ptr<Channel>&>)
            step = attempt(*handle, result, handle);
          else
            step = attempt(*handle, result);
        }))
      return nullptr;
    if (step == Attempt::finished) return result;
    if (progress && *progress != progress_before) {
      progress_before = *progress;
      first = true;
    }
    if (step == Attempt::ended) {
      PyErr_SetString(of(self).end_of_stream,
                      "end of stream: every producer finished or died and nothing is left");
      return nullptr;
    }
    std::chrono::nanoseconds slice = Channel::kSlice;
    if (!timeout.forever) {
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) return raise_timeout(what);
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    auto waited = blocking_call(
        [&]() -> std::optional<std::shared_ptr<Channel>> {
          std::shared_ptr<Channel> pinned = current(object);
          if (!pinned) {
            raise_closed();
            return std::nullopt;
          }
          return pinned;
        },
        [&](std::shared_ptr<Channel>& pinned) {
          return step == Attempt::wait_readable ? pinned->wait_readable(slice, first)
                                                : pinned->wait_writable(wait_size, slice, first);
        });
    if (!waited) return nullptr;  // KeyboardInterrupt (or another handler's error), or closed
    if (waited->failure) return raise_failure(self, waited->failure);
  }
}

// Parses (first, /, timeout=None) of a METH_FASTCALL method; `keywords` is {first, "timeout"}.
bool parse_first_and_timeout(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                             const char* const* keywords, PyObject*& first, Timeout& timeout) {
  PyObject* timeout_object = Py_None;
  if (!kwnames && (nargs == 1 || nargs == 2)) {
    first = args[0];
    if (nargs == 2) timeout_object = args[1];
  } else {
    PackedArguments packed(args, nargs, kwnames);
    if (!packed.ok()) return false;
    if (!PyArg_ParseTupleAndKeywords(packed.tuple(), packed.dict(), "O|O",
                                     const_cast<char**>(keywords), &first, &timeout_object))
      return false;
  }
  return parse_wait_timeout(timeout_object, timeout);
}

PyObject* channel_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (!self) return nullptr;
  new (&as_channel(self)->handle) std::shared_ptr<Channel>();
  new (&as_channel(self)->lock) ObjectLock();
  return self;
}

void channel_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  as_channel(self)->handle.~shared_ptr();
  as_channel(self)->lock.~ObjectLock();
  Py_CLEAR(as_channel(self)->name);
  type->tp_free(self);
  Py_DECREF(type);
}

int channel_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"name", "create", "capacity", "mode", "exclusive", nullptr};
  OptionalName name;
  PyObject* name_object = Py_None;
  int create = 0;
  Py_ssize_t capacity = static_cast<Py_ssize_t>(Channel::kDefaultCapacity);
  int mode = 0600;
  int exclusive = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$pnip", const_cast<char**>(keywords),
                                   &name_object, &create, &capacity, &mode, &exclusive))
    return -1;
  if (!convert_name(name_object, &name)) return -1;
  if (!name && !create) {
    PyErr_SetString(PyExc_ValueError, "name can only be None with create=True");
    return -1;
  }
  if (exclusive && !create) {
    PyErr_SetString(PyExc_ValueError, "exclusive=True needs create=True");
    return -1;
  }
  if (capacity <= 0) {
    PyErr_SetString(PyExc_ValueError, "capacity must be positive");
    return -1;
  }
  if (!check_mode(mode)) return -1;
  if (borrowed(as_channel(self))) {
    PyErr_SetString(PyExc_RuntimeError, "Channel.__init__ called twice");
    return -1;
  }
  std::shared_ptr<Channel> opened;
  if (!guarded(self, [&] {
        const auto bytes = static_cast<std::size_t>(capacity);
        const auto permissions = static_cast<mode_t>(mode);
        opened = std::make_shared<Channel>(!name ? Channel::create_unique(bytes, permissions)
                                           : exclusive
                                               ? Channel::create(*name, bytes, permissions)
                                               : Channel(*name, create != 0, bytes, permissions));
      }))
    return -1;
  PyObject* stored = name_to_python(opened->name());
  if (!stored) return -1;
  ChannelObject* object = as_channel(self);
  PyObject* old_name = nullptr;
  bool twice = false;
  {
    // Checked again: another thread's __init__ may have opened it since the first check.
    ObjectLockGuard guard(object->lock);
    twice = object->handle != nullptr;
    if (!twice) {
      old_name = std::exchange(object->name, stored);
      object->handle = std::move(opened);
    }
  }
  // After the lock: releasing a name or an unused Channel may run Python code or unmap.
  Py_XDECREF(old_name);
  if (twice) {
    Py_DECREF(stored);
    opened.reset();
    PyErr_SetString(PyExc_RuntimeError, "Channel.__init__ called twice");
    return -1;
  }
  return 0;
}

PyObject* channel_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* data = nullptr;
  Timeout timeout;
  static const char* keywords[] = {"data", "timeout", nullptr};
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, data, timeout)) return nullptr;
  HeldBuffer buffer;
  if (!buffer.get(data, PyBUF_SIMPLE)) return nullptr;
  std::size_t size = static_cast<std::size_t>(buffer.size());
  return run(self, timeout, "space in the channel", size, [&](Channel& channel, PyObject*& result) {
    if (channel.try_send(buffer.bytes()) != ChannelStatus::done) return Attempt::wait_writable;
    result = Py_NewRef(Py_None);
    return Attempt::finished;
  });
}

// A claimed message as bytes; a failed allocation counts the message lost (it was taken).
PyObject* take_bytes(Channel& channel, const ChannelDelivery& delivery) {
  PyObject* bytes = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(delivery.data),
                                              static_cast<Py_ssize_t>(delivery.size));
  if (bytes)
    channel.consume(delivery);
  else
    channel.consume_lost(delivery);
  return bytes;
}

PyObject* channel_receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
  Timeout timeout;
  if (!parse_only_timeout(args, nargs, kwnames, timeout)) return nullptr;
  std::size_t no_size = 0;
  return run(self, timeout, "a message", no_size, [&](Channel& channel, PyObject*& result) {
    ChannelDelivery delivery;
    if (channel.try_claim(delivery) != ChannelStatus::done) return nothing_to_claim(channel);
    result = take_bytes(channel, delivery);
    return Attempt::finished;
  });
}

PyObject* channel_receive_into(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                               PyObject* kwnames) {
  PyObject* target = nullptr;
  static const char* keywords[] = {"buffer", "timeout", nullptr};
  Timeout timeout;
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, target, timeout)) return nullptr;
  HeldBuffer buffer;
  if (!buffer.get(target, PyBUF_WRITABLE)) return nullptr;
  std::size_t no_size = 0;
  return run(self, timeout, "a message", no_size, [&](Channel& channel, PyObject*& result) {
    ChannelDelivery delivery;
    const ChannelStatus status =
        channel.try_claim(delivery, static_cast<std::size_t>(buffer.size()));
    if (status == ChannelStatus::would_block) return nothing_to_claim(channel);
    if (status == ChannelStatus::too_large) {
      PyErr_Format(PyExc_ValueError,
                   "the next message has %zu bytes, more than the buffer's %zd (it stays queued)",
                   delivery.size, buffer.size());
      return Attempt::finished;
    }
    if (delivery.size) std::memcpy(buffer.writable_bytes().data(), delivery.data, delivery.size);
    channel.consume(delivery);
    result = PyLong_FromSize_t(delivery.size);
    return Attempt::finished;
  });
}

// Sets `sent` on the exception being raised: how many messages went out before it, so that an
// interrupted send_many() can resume or account.
void attach_sent(std::size_t sent) {
  PyObject* count = PyLong_FromSize_t(sent);
  if (!count) {
    PyErr_Clear();  // the exception being raised is lost too: MemoryError instead
    PyErr_NoMemory();
    return;
  }
  set_on_raised("sent", count);
  Py_DECREF(count);
}

PyObject* channel_send_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  PyObject* messages = nullptr;
  static const char* keywords[] = {"buffers", "timeout", nullptr};
  Timeout timeout;
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, messages, timeout)) return nullptr;
  PyObject* sequence = PySequence_Fast(messages, "buffers must be an iterable of buffers");
  if (!sequence) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
  std::vector<HeldBuffer> buffers;
  std::vector<std::span<const std::byte>> spans;
  try {
    buffers.resize(static_cast<std::size_t>(count));
    spans.resize(static_cast<std::size_t>(count));
  } catch (const std::bad_alloc&) {
    Py_DECREF(sequence);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!buffers[i].get(PySequence_Fast_GET_ITEM(sequence, i), PyBUF_SIMPLE)) {
      Py_DECREF(sequence);
      return nullptr;
    }
    spans[i] = buffers[i].bytes();
  }
  Py_DECREF(sequence);
  std::size_t sent = 0;
  std::size_t next_size = 0;
  const Timeout untimed = timeout;
  PyObject* result = run(
      self, untimed, "space in the channel", next_size,
      [&](Channel& channel, PyObject*& out) {
        for (;;) {
          if (sent == spans.size()) {
            out = PyLong_FromSize_t(sent);
            return Attempt::finished;
          }
          const std::size_t done = channel.try_send_many(std::span(spans).subspan(sent));
          sent += done;
          if (done == 0) {
            next_size = spans[sent].size();
            return Attempt::wait_writable;
          }
        }
      },
      &sent);
  if (result) return result;
  // A timeout after some messages went out reports how many did.
  if (sent > 0 && PyErr_ExceptionMatches(PyExc_TimeoutError)) {
    PyErr_Clear();
    return PyLong_FromSize_t(sent);
  }
  // Any other end (a signal handler's exception, the channel closed by one, a ChannelError)
  // must not lose the count of messages already delivered.
  attach_sent(sent);
  return nullptr;
}

PyObject* channel_receive_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                               PyObject* kwnames) {
  PyObject* count_object = nullptr;
  static const char* keywords[] = {"max_count", "timeout", nullptr};
  Timeout timeout;
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, count_object, timeout))
    return nullptr;
  const Py_ssize_t max_count = PyNumber_AsSsize_t(count_object, PyExc_OverflowError);
  if (max_count == -1 && PyErr_Occurred()) return nullptr;
  if (max_count < 1) {
    PyErr_SetString(PyExc_ValueError, "max_count must be at least 1");
    return nullptr;
  }
  std::vector<ChannelDelivery> deliveries;
  try {
    deliveries.resize(static_cast<std::size_t>(std::min<Py_ssize_t>(max_count, 4096)));
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  std::size_t no_size = 0;
  return run(self, timeout, "a message", no_size, [&](Channel& channel, PyObject*& result) {
    const std::size_t claimed = channel.try_claim_many(deliveries);
    if (claimed == 0) return nothing_to_claim(channel);
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(claimed));
    std::size_t made = 0;
    for (; list && made < claimed; ++made) {
      const ChannelDelivery& delivery = deliveries[made];
      PyObject* bytes = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(delivery.data),
                                                  static_cast<Py_ssize_t>(delivery.size));
      if (!bytes) break;
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(made), bytes);
    }
    if (made == claimed) {
      channel.consume({deliveries.data(), claimed});
      result = list;
    } else {  // out of memory: the claimed messages cannot be handed out
      for (std::size_t i = 0; i < claimed; ++i) channel.consume_lost(deliveries[i]);
      Py_XDECREF(list);
    }
    return Attempt::finished;
  });
}

PyObject* channel_receive_many_into(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                    PyObject* kwnames) {
  PyObject* targets = nullptr;
  static const char* keywords[] = {"buffers", "timeout", nullptr};
  Timeout timeout;
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, targets, timeout)) return nullptr;
  PyObject* sequence = PySequence_Fast(targets, "buffers must be an iterable of writable buffers");
  if (!sequence) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
  if (count < 1) {
    Py_DECREF(sequence);
    PyErr_SetString(PyExc_ValueError, "buffers must hold at least one buffer");
    return nullptr;
  }
  std::vector<HeldBuffer> buffers;
  std::vector<std::span<std::byte>> spans;
  std::vector<std::size_t> sizes;
  try {
    buffers.resize(static_cast<std::size_t>(count));
    spans.resize(static_cast<std::size_t>(count));
    sizes.resize(static_cast<std::size_t>(count));
  } catch (const std::bad_alloc&) {
    Py_DECREF(sequence);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!buffers[i].get(PySequence_Fast_GET_ITEM(sequence, i), PyBUF_WRITABLE)) {
      Py_DECREF(sequence);
      return nullptr;
    }
    spans[i] = buffers[i].writable_bytes();
  }
  Py_DECREF(sequence);
  std::size_t no_size = 0;
  return run(self, timeout, "a message", no_size, [&](Channel& channel, PyObject*& result) {
    const ChannelReceivedMany received = channel.try_receive_many_into(spans, sizes);
    if (received.status == ChannelStatus::would_block) return Attempt::wait_readable;
    if (received.status == ChannelStatus::ended) return Attempt::ended;
    if (received.status == ChannelStatus::too_large) {
      PyErr_Format(PyExc_ValueError,
                   "the next message has %zu bytes, more than the first buffer's %zu (it stays "
                   "queued)",
                   received.size, spans[0].size());
      return Attempt::finished;
    }
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(received.count));
    for (std::size_t i = 0; list && i < received.count; ++i) {
      PyObject* size = PyLong_FromSize_t(sizes[i]);
      if (!size) {  // the messages are in the buffers already; only their sizes are lost
        Py_CLEAR(list);
        break;
      }
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), size);
    }
    result = list;
    return Attempt::finished;
  });
}

PyObject* channel_reserve(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
  PyObject* size_object = nullptr;
  static const char* keywords[] = {"size", "timeout", nullptr};
  Timeout timeout;
  if (!parse_first_and_timeout(args, nargs, kwnames, keywords, size_object, timeout))
    return nullptr;
  const Py_ssize_t size = PyNumber_AsSsize_t(size_object, PyExc_OverflowError);
  if (size == -1 && PyErr_Occurred()) return nullptr;
  if (size < 0) {
    PyErr_SetString(PyExc_ValueError, "size must not be negative");
    return nullptr;
  }
  std::size_t wanted = static_cast<std::size_t>(size);
  return run(self, timeout, "space in the channel", wanted,
             [&](Channel& channel, PyObject*& result, const std::shared_ptr<Channel>& handle) {
               ChannelReservation reservation;
               if (channel.try_reserve(wanted, reservation) != ChannelStatus::done)
                 return Attempt::wait_writable;
               result = make_reservation_view(self, handle, reservation);
               return Attempt::finished;
             });
}

PyObject* channel_peek(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Timeout timeout;
  if (!parse_only_timeout(args, nargs, kwnames, timeout)) return nullptr;
  std::size_t no_size = 0;
  return run(self, timeout, "a message", no_size,
             [&](Channel& channel, PyObject*& result, const std::shared_ptr<Channel>& handle) {
               ChannelDelivery delivery;
               if (channel.try_claim(delivery) != ChannelStatus::done)
                 return nothing_to_claim(channel);
               result = make_peek_view(self, handle, delivery);
               return Attempt::finished;
             });
}

// for message in channel: receive() without a timeout until the end of the stream.
PyObject* channel_iternext(PyObject* self) {
  std::size_t no_size = 0;
  PyObject* result =
      run(self, Timeout{}, "a message", no_size, [&](Channel& channel, PyObject*& out) {
        ChannelDelivery delivery;
        if (channel.try_claim(delivery) != ChannelStatus::done) return nothing_to_claim(channel);
        out = take_bytes(channel, delivery);
        return Attempt::finished;
      });
  if (!result && PyErr_ExceptionMatches(of(self).end_of_stream)) PyErr_Clear();  // StopIteration
  return result;
}

PyObject* channel_declare_producer(PyObject* self, PyObject*) {
  const BorrowedChannel handle = borrowed(as_channel(self));
  if (!handle) return raise_closed();
  if (!guarded(self, [&] { handle->declare_producer(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* channel_finish(PyObject* self, PyObject*) {
  const BorrowedChannel handle = borrowed(as_channel(self));
  if (!handle) return raise_closed();
  handle->finish();
  Py_RETURN_NONE;
}

// The readiness waits of ipcxx.aio (Channel.receive_async and the others wait in its pool for
// readiness, then take inside the awaiting task): at most `timeout` (one slice for None),
// without the GIL, the handle pinned against a close() on another thread. Takes nothing, so a
// waiter that is gone loses nothing. A zero timeout looks once with the GIL held and without
// spinning (a spin that finds nothing would shorten the adaptive spin of this object's waits).
template <typename Wait>
PyObject* wait_ready(PyObject* self, PyObject* timeout_object, Wait&& wait) {
  Timeout timeout;
  if (!parse_wait_timeout(timeout_object, timeout)) return nullptr;
  ChannelObject* object = as_channel(self);
  if (!timeout.forever && timeout.duration.count() == 0) {
    std::shared_ptr<Channel> handle = current(object);
    if (!handle) return raise_closed();
    bool ready = false;
    if (!guarded(self, [&] { ready = wait(*handle, std::chrono::nanoseconds(0), false); }))
      return nullptr;
    return PyBool_FromLong(ready);
  }
  const std::chrono::nanoseconds limit = timeout.forever ? Channel::kSlice : timeout.duration;
  auto waited = blocking_call(
      [&]() -> std::optional<std::shared_ptr<Channel>> {
        std::shared_ptr<Channel> pinned = current(object);
        if (!pinned) {
          raise_closed();
          return std::nullopt;
        }
        return pinned;
      },
      [&](std::shared_ptr<Channel>& pinned) { return wait(*pinned, limit, true); });
  if (!waited) return nullptr;
  if (waited->failure) return raise_failure(self, waited->failure);
  return PyBool_FromLong(*waited->result);
}

PyObject* channel_wait_readable(PyObject* self, PyObject* timeout) {
  return wait_ready(self, timeout,
                    [](Channel& channel, std::chrono::nanoseconds limit, bool first) {
                      return channel.wait_readable(limit, first);
                    });
}

PyObject* channel_wait_writable(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_Format(PyExc_TypeError, "_wait_writable() takes 2 arguments (%zd given)", nargs);
    return nullptr;
  }
  const Py_ssize_t size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
  if (size == -1 && PyErr_Occurred()) return nullptr;
  if (size < 0) {
    PyErr_SetString(PyExc_ValueError, "size must not be negative");
    return nullptr;
  }
  return wait_ready(self, args[1],
                    [size](Channel& channel, std::chrono::nanoseconds limit, bool first) {
                      return channel.wait_writable(static_cast<std::size_t>(size), limit, first);
                    });
}

PyObject* channel_close(PyObject* self, PyObject*) {
  // Waiters and views hold their own reference: the mapping goes with the last of them.
  std::shared_ptr<Channel> taken;
  {
    ChannelObject* object = as_channel(self);
    ObjectLockGuard guard(object->lock);
    taken = std::move(object->handle);
    object->handle.reset();
  }
  taken.reset();  // after the lock: the last reference unmaps
  Py_RETURN_NONE;
}

PyObject* channel_unlink(PyObject* self, PyObject*) {
  const BorrowedChannel handle = borrowed(as_channel(self));
  if (!handle) return raise_closed();
  if (!guarded(self, [&] { handle->unlink(); })) return nullptr;
  Py_RETURN_NONE;
}

PyObject* channel_enter(PyObject* self, PyObject*) {
  if (!borrowed(as_channel(self))) return raise_closed();
  return Py_NewRef(self);
}

PyObject* channel_exit(PyObject* self, PyObject*) { return channel_close(self, nullptr); }

template <typename Read>
PyObject* read_open(PyObject* self, Read&& read) {
  const BorrowedChannel handle = borrowed(as_channel(self));
  if (!handle) return raise_closed();
  return read(*handle);
}

PyObject* get_name(PyObject* self, void*) {
  ChannelObject* object = as_channel(self);
  return new_reference_under(object->lock, object->name);
}
PyObject* get_capacity(PyObject* self, void*) {
  return read_open(self, [](Channel& c) { return PyLong_FromSize_t(c.capacity()); });
}
PyObject* get_max_message_size(PyObject* self, void*) {
  return read_open(self, [](Channel& c) { return PyLong_FromSize_t(c.max_message_size()); });
}
PyObject* get_lost(PyObject* self, void*) {
  return read_open(self, [](Channel& c) { return PyLong_FromUnsignedLongLong(c.lost()); });
}
PyObject* get_abandoned(PyObject* self, void*) {
  return read_open(self, [](Channel& c) { return PyLong_FromUnsignedLongLong(c.abandoned()); });
}
PyObject* get_finished(PyObject* self, void*) {
  return read_open(self, [](Channel& c) { return PyBool_FromLong(c.finished()); });
}
PyObject* get_closed(PyObject* self, void*) { return PyBool_FromLong(!borrowed(as_channel(self))); }
PyObject* get_spin(PyObject* self, void*) {
  // None for the adaptive default, so that reading and writing back keeps the mode.
  return read_open(self, [](Channel& c) {
    return c.spin_adaptive() ? Py_NewRef(Py_None) : PyFloat_FromDouble(c.spin().count() / 1e9);
  });
}

PyObject* get_spin_current(PyObject* self, void*) {
  return read_open(self,
                   [](Channel& c) { return PyFloat_FromDouble(c.spin_current().count() / 1e9); });
}

int set_spin(PyObject* self, PyObject* value, void*) {
  ChannelObject* object = as_channel(self);
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "spin cannot be deleted");
    return -1;
  }
  if (value == Py_None) {  // back to the adaptive default
    const BorrowedChannel handle = borrowed(object);
    if (!handle) return raise_closed(), -1;
    handle->set_spin(Channel::kDefaultSpin, true);
    return 0;
  }
  if (!PyNumber_Check(value) || PyBool_Check(value)) {
    PyErr_Format(PyExc_TypeError, "spin must be a number of seconds or None, not %.50s",
                 Py_TYPE(value)->tp_name);
    return -1;
  }
  const double seconds = PyFloat_AsDouble(value);
  if (seconds == -1.0 && PyErr_Occurred()) return -1;
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1.0) {
    PyErr_SetString(PyExc_ValueError, "spin must be between 0 and 1 second");
    return -1;
  }
  const BorrowedChannel handle = borrowed(object);
  if (!handle) return raise_closed(), -1;
  handle->set_spin(std::chrono::nanoseconds(static_cast<long long>(seconds * 1e9)));
  return 0;
}

int reject_write(PyObject*, PyObject*, void*) {
  PyErr_SetString(PyExc_AttributeError, "attribute is read-only");
  return -1;
}

PyObject* channel_repr(PyObject* self) {
  ChannelObject* object = as_channel(self);
  bool open = false;
  std::size_t capacity = 0;
  PyObject* name = nullptr;
  {
    // A new reference: another thread's __init__ may release the name meanwhile, and %R
    // runs Python code (so the capacity is read here too).
    ObjectLockGuard guard(object->lock);
    open = object->handle != nullptr;
    if (open) capacity = object->handle->capacity();
    name = Py_NewRef(object->name ? object->name : Py_None);
  }
  PyObject* result = open ? PyUnicode_FromFormat("<ipcxx.Channel %R capacity=%zu>", name, capacity)
                          : PyUnicode_FromFormat("<ipcxx.Channel %R (closed)>", name);
  Py_DECREF(name);
  return result;
}

PyMethodDef channel_methods[] = {
    {"send", as_method<channel_send>(), METH_FASTCALL | METH_KEYWORDS,
     "send($self, data, /, timeout=None)\n--\n\n"
     "Send the bytes of any contiguous buffer as one message. Waits for space (timeout None:\n"
     "without limit; 0: not at all); TimeoutError when it expires; ValueError for a message\n"
     "longer than max_message_size."},
    {"receive", as_method<channel_receive>(), METH_FASTCALL | METH_KEYWORDS,
     "receive($self, /, timeout=None)\n--\n\n"
     "The next message as bytes; TimeoutError; EndOfStream once every producer finished or\n"
     "died and nothing is left (for message in channel: the end)."},
    {"receive_into", as_method<channel_receive_into>(), METH_FASTCALL | METH_KEYWORDS,
     "receive_into($self, buffer, /, timeout=None)\n--\n\n"
     "Copy the next message into a writable buffer; returns its size. ValueError when it is\n"
     "longer than the buffer (it stays queued)."},
    {"send_many", as_method<channel_send_many>(), METH_FASTCALL | METH_KEYWORDS,
     "send_many($self, buffers, /, timeout=None)\n--\n\n"
     "Send each buffer as one message, in order, in as few reservations as fit. Returns how\n"
     "many were sent: all, or fewer when the timeout expired after the first. Any other\n"
     "exception raised while sending (a signal handler's, ValueError when a handler closed\n"
     "the channel) has an attribute `sent`: how many went out before it."},
    {"receive_many_into", as_method<channel_receive_many_into>(), METH_FASTCALL | METH_KEYWORDS,
     "receive_many_into($self, buffers, /, timeout=None)\n--\n\n"
     "Wait for the first message, then copy the queued ones, one per buffer, into buffers\n"
     "(writable buffers, in order) and return their sizes: a list as long as the number of\n"
     "messages received. No allocation: reusing the buffers keeps large messages free of the\n"
     "page faults that fresh bytes objects cost. Stops before a message longer than its\n"
     "buffer; ValueError when that is the first (it stays queued). TimeoutError,\n"
     "EndOfStream as receive_many()."},
    {"receive_many", as_method<channel_receive_many>(), METH_FASTCALL | METH_KEYWORDS,
     "receive_many($self, max_count, /, timeout=None)\n--\n\n"
     "Wait for the first message, then take up to max_count that are there: a list of bytes.\n"
     "It waits only while it has taken nothing: an exception means no message was taken."},
    {"reserve", as_method<channel_reserve>(), METH_FASTCALL | METH_KEYWORDS,
     "reserve($self, size, /, timeout=None)\n--\n\n"
     "with ch.reserve(size) as view: a writable memoryview of a message of `size` bytes,\n"
     "sent on normal exit of the block, discarded on an exception."},
    {"peek", as_method<channel_peek>(), METH_FASTCALL | METH_KEYWORDS,
     "peek($self, /, timeout=None)\n--\n\n"
     "with ch.peek() as view: a read-only memoryview of the next message, consumed when the\n"
     "block exits (also on an exception)."},
    {"declare_producer", channel_declare_producer, METH_NOARGS,
     "declare_producer($self, /)\n--\n\n"
     "Count this object as a producer now (its first send does it otherwise), so that the\n"
     "stream cannot end before it sends: call it before starting producers that join later."},
    {"finish", channel_finish, METH_NOARGS,
     "finish($self, /)\n--\n\n"
     "This object sends no more (idempotent; later sends raise ChannelError). When every\n"
     "producer has finished or died, consumers get EndOfStream once they drained the ring.\n"
     "close() finishes too."},
    {"_wait_readable", channel_wait_readable, METH_O,
     "_wait_readable($self, timeout, /)\n--\n\n"
     "For ipcxx.aio: wait at most timeout seconds (None: one slice) until a message may be\n"
     "there, taking none; False when none came."},
    {"_wait_writable", as_method<channel_wait_writable>(), METH_FASTCALL,
     "_wait_writable($self, size, timeout, /)\n--\n\n"
     "For ipcxx.aio: wait at most timeout seconds (None: one slice) until a message of size\n"
     "bytes may fit, reserving nothing; False when it does not."},
    {"close", channel_close, METH_NOARGS,
     "close($self, /)\n--\n\nUnmap the channel from this object (idempotent); views and waits in "
     "progress keep it mapped until they end. Never unlinks."},
    {"unlink", channel_unlink, METH_NOARGS,
     "unlink($self, /)\n--\n\nRemove the channel's name; whoever has it open keeps using it."},
    {"__enter__", channel_enter, METH_NOARGS, "__enter__($self, /)\n--\n\nReturn self."},
    {"__exit__", channel_exit, METH_VARARGS, "Close the channel (never unlinks)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef channel_getset[] = {
    {"name", get_name, reject_write, "The channel's name (read-only).", nullptr},
    {"capacity", get_capacity, reject_write, "Ring bytes, a power of two (read-only).", nullptr},
    {"max_message_size", get_max_message_size, reject_write,
     "The longest message that can ever be sent: capacity / 2 - 16 (read-only).", nullptr},
    {"spin", get_spin, set_spin,
     "Seconds a waiter spins before it sleeps, or None (the default): adaptive, at most\n"
     "50 µs: halved after a wait that slept longer than 100 µs, restored after a shorter\n"
     "one. Set a number for a fixed spin, 0 to sleep at once, None to go back to adaptive.",
     nullptr},
    {"spin_current", get_spin_current, reject_write,
     "Seconds the next wait of this object spins: where the adaptive spin stands (1 µs up\n"
     "to 50 µs), or the fixed spin (read-only).",
     nullptr},
    {"lost", get_lost, reject_write,
     "Messages taken by consumers that died before finishing them (read-only).", nullptr},
    {"abandoned", get_abandoned, reject_write,
     "Reservations never committed: their producer died or discarded them (read-only).", nullptr},
    {"closed", get_closed, reject_write, "True after close() (read-only).", nullptr},
    {"finished", get_finished, reject_write,
     "True after finish() in this process: this object sends no more (read-only).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot channel_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("Channel(name=None, *, create=False, capacity=1048576, mode=0o600, "
                       "exclusive=False)\n--\n\n"
                       "Messages between processes through a ring in POSIX shared memory: any\n"
                       "number of producers and consumers, each message delivered once, FIFO per\n"
                       "producer. name=None with create=True picks a random name.")},
    {Py_tp_new, reinterpret_cast<void*>(channel_new)},
    {Py_tp_init, reinterpret_cast<void*>(channel_init)},
    {Py_tp_dealloc, reinterpret_cast<void*>(channel_dealloc)},
    {Py_tp_methods, channel_methods},
    {Py_tp_getset, channel_getset},
    {Py_tp_repr, reinterpret_cast<void*>(channel_repr)},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(channel_iternext)},
    {0, nullptr}};

}  // namespace

PyObject* unlink_channel(PyObject* module, PyObject* name_object) {
  std::string name;
  if (!parse_unlink_name(name_object, name)) return nullptr;
  if (!guarded(module, [&] { Channel::unlink(name); })) return nullptr;
  Py_RETURN_NONE;
}

bool is_channel(PyObject* owner, PyObject* object) {
  // The type comes from the caller's module state: `object` may be of any type, and only the
  // module's own types find that state.
  PyTypeObject* type = of(owner).channel_type;  // null once the module is cleared
  return type && PyObject_TypeCheck(object, type);
}

int send_now(PyObject* channel, std::span<const std::byte> data) {
  const BorrowedChannel handle = borrowed(as_channel(channel));
  if (!handle) {
    raise_closed();
    return -1;
  }
  ChannelStatus status = ChannelStatus::would_block;
  if (!guarded(channel, [&] { status = handle->try_send(data); })) return -1;
  return status == ChannelStatus::done ? 1 : 0;
}

Py_ssize_t send_many_now(PyObject* channel, std::span<const std::span<const std::byte>> messages) {
  const BorrowedChannel handle = borrowed(as_channel(channel));
  if (!handle) {
    raise_closed();
    return -1;
  }
  std::size_t sent = 0;
  if (!guarded(channel, [&] { sent = handle->try_send_many(messages); })) return -1;
  return static_cast<Py_ssize_t>(sent);
}

PyObject* receive_bytes(PyObject* channel, std::size_t limit, const Timeout& timeout,
                        bool& too_large) {
  too_large = false;
  std::size_t no_size = 0;
  return run(channel, timeout, "a message", no_size, [&](Channel& ring, PyObject*& result) {
    ChannelDelivery delivery;
    const ChannelStatus status = ring.try_claim(delivery, limit);
    if (status == ChannelStatus::would_block) return nothing_to_claim(ring);
    if (status == ChannelStatus::too_large)
      too_large = true;  // result stays null with no error: the message stays queued
    else
      result = take_bytes(ring, delivery);
    return Attempt::finished;
  });
}

PyType_Spec& channel_spec() {
  static PyType_Spec spec = {"ipcxx.Channel", sizeof(ChannelObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, channel_slots};
  return spec;
}

}  // namespace ipcxx::python::ipcxx_state

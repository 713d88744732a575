// ipcxx.Channel and its zero-copy views (extensions/channel.cpp, extensions/channel_view.cpp).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstddef>
#include <memory>
#include <span>

#include "common/conversions.hpp"
#include "ipcxx/channel.hpp"

namespace ipcxx::python::ipcxx_state {

/// ipcxx.Channel.
PyType_Spec& channel_spec();
/// The type of the objects reserve() and peek() return (a context manager giving a memoryview).
PyType_Spec& channel_view_spec();
/// ipcxx.unlink_channel(name).
PyObject* unlink_channel(PyObject* module, PyObject* name);

/// A view of a reservation: writable; committed on normal exit, discarded on an exception or
/// when collected unfinished. `owner` finds the module state.
PyObject* make_reservation_view(PyObject* owner, const std::shared_ptr<Channel>& channel,
                                const ChannelReservation& reservation);
/// A read-only view of a claimed message, consumed on exit (or when collected).
PyObject* make_peek_view(PyObject* owner, const std::shared_ptr<Channel>& channel,
                         const ChannelDelivery& delivery);

// For ipcxx.Queue's native half (extensions/queue_core.cpp), with the GIL held:

/// Whether `object` (of any type) is an ipcxx.Channel of the module instance that `owner`, an
/// object of one of its types, belongs to (or of a subclass).
bool is_channel(PyObject* owner, PyObject* object);
/// Sends `data` as one message if the ring has room now, never waiting: 1 sent, 0 no room,
/// -1 with a Python error set (closed, longer than max_message_size).
int send_now(PyObject* channel, std::span<const std::byte> data);
/// Sends the longest prefix of `messages` that fits now, as one reservation, never waiting:
/// how many were sent, or -1 with a Python error set (closed, one longer than the largest).
Py_ssize_t send_many_now(PyObject* channel, std::span<const std::span<const std::byte>> messages);
/// Takes the next message as bytes, waiting like Channel.receive(timeout) (without the GIL).
/// Null with an error set (TimeoutError, EndOfStream, closed, a signal handler's error), or
/// null with no error and `too_large` set when the next message is longer than `limit` (it
/// stays queued).
PyObject* receive_bytes(PyObject* channel, std::size_t limit, const Timeout& timeout,
                        bool& too_large);

}  // namespace ipcxx::python::ipcxx_state

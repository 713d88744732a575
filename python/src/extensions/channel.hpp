// ipcxx.Channel and its zero-copy views (extensions/channel.cpp, extensions/channel_view.cpp).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <memory>

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

}  // namespace ipcxx::python::ipcxx_state

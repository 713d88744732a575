// Umbrella header: the whole public ipcxx C++ API.
#pragma once

#include "ipcxx/channel.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/inspect.hpp"
#include "ipcxx/posix/limits.hpp"
#include "ipcxx/posix/mapping.hpp"
#include "ipcxx/posix/message_queue.hpp"
#include "ipcxx/posix/open_flags.hpp"
#include "ipcxx/posix/semaphore.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "ipcxx/process.hpp"
#include "ipcxx/robust_mutex.hpp"
#include "ipcxx/sysv/keys.hpp"
#include "ipcxx/sysv/message_queue.hpp"
#include "ipcxx/sysv/semaphore.hpp"
#include "ipcxx/sysv/semaphore_set.hpp"
#include "ipcxx/sysv/shared_memory.hpp"

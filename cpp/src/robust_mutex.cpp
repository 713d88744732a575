// ipcxx::RobustMutex: segment creation race, and the robust pthread mutex protocol.
#include "ipcxx/robust_mutex.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/unique_name.hpp"
#include "ipcxx/error.hpp"
#include "ipcxx/posix/shared_memory.hpp"
#include "ipcxx/process.hpp"
#include "robust_mutex_layout.hpp"

namespace ipcxx {

using namespace robust_mutex;

std::size_t robust_mutex_segment_size() noexcept { return sizeof(RobustMutex::Layout); }

namespace {

// pthread calls return the error number rather than setting errno.
[[noreturn]] void fail(int error, Syscall call, const std::string& name) {
  throw Error(error, call, name);
}

// Mappings deliberately never unmapped (closed while held, see the class comment): reachable
// from here, so leak checkers do not report them; lock-free, so a fork cannot deadlock it.
struct KeptMapping {
  posix::Mapping mapping;
  KeptMapping* next;
};
std::atomic<KeptMapping*> kept_mappings{nullptr};

void keep_mapped(posix::Mapping mapping) noexcept {
  auto* node = new (std::nothrow) KeptMapping{std::move(mapping), nullptr};
  if (!node) return;  // cannot keep it: unmapped after all (the death goes unreported)
  node->next = kept_mappings.load(std::memory_order_relaxed);
  while (!kept_mappings.compare_exchange_weak(node->next, node, std::memory_order_release,
                                              std::memory_order_relaxed)) {
  }
}

void initialise(RobustMutex::Layout& layout, const std::string& name) {
  pthread_mutexattr_t attributes;
  if (int error = pthread_mutexattr_init(&attributes))
    fail(error, Syscall::pthread_mutexattr_init, name);
  // Each step names its own call; the attributes are destroyed whichever one fails.
  Syscall failed = Syscall::pthread_mutexattr_setpshared;
  int error = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  if (!error) {
    failed = Syscall::pthread_mutexattr_setrobust;
    error = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  }
  if (!error) {
    failed = Syscall::pthread_mutexattr_settype;
    error = pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
  }
  if (!error) {
    failed = Syscall::pthread_mutex_init;
    error = pthread_mutex_init(&layout.mutex, &attributes);
  }
  pthread_mutexattr_destroy(&attributes);
  if (error) fail(error, failed, name);
  layout.version = kVersion;
  layout.magic = kMagic;
  layout.state.store(kConsistent, std::memory_order_relaxed);
  layout.unreported_death.store(0, std::memory_order_relaxed);
  layout.acquisitions.store(0, std::memory_order_relaxed);
  layout.ready.store(kReady, std::memory_order_release);
}

// Creates and initialises under O_EXCL; a failure unlinks the half-made segment.
posix::Mapping create_segment(const std::string& name, mode_t mode) {
  posix::SharedMemory memory(name, O_CREAT | O_EXCL, mode);
  try {
    // The page is reserved before it is touched: a full /dev/shm is ENOSPC, not a SIGBUS.
    memory.allocate(sizeof(RobustMutex::Layout));
    posix::Mapping mapping = memory.map();
    initialise(*static_cast<RobustMutex::Layout*>(static_cast<void*>(mapping.bytes().data())),
               name);
    return mapping;
  } catch (...) {
    memory.unlink();
    throw;
  }
}

void sleep_briefly() {
  const timespec pause{0, 1'000'000};
  ::nanosleep(&pause, nullptr);
}

// Opens an existing segment and waits, bounded, for its creator to finish: the size is 0 until
// the creator's allocate() is done, `ready` is 0 until its pthread_mutex_init is done.
posix::Mapping open_segment(const std::string& name, std::chrono::nanoseconds wait) {
  posix::SharedMemory memory(name, 0);
  const detail::Deadline deadline(wait);
  for (;;) {
    const std::size_t size = memory.size();  // fstat: never map what is too small to be a lock
    if (size != 0 && size != sizeof(RobustMutex::Layout))
      throw NotALockError(name + " is not an ipcxx robust lock (its size is " +
                          std::to_string(size) + " bytes, a lock has " +
                          std::to_string(sizeof(RobustMutex::Layout)) + ")");
    if (size != 0) {
      posix::Mapping mapping = memory.map();
      const auto& layout =
          *static_cast<const RobustMutex::Layout*>(static_cast<void*>(mapping.bytes().data()));
      const std::uint32_t ready = layout.ready.load(std::memory_order_acquire);
      if (ready == kReady) {
        if (layout.magic != kMagic)
          throw NotALockError(name + " is not an ipcxx robust lock (wrong magic number)");
        if (layout.version != kVersion)
          throw NotALockError(name + " is an ipcxx robust lock of layout version " +
                              std::to_string(layout.version) + ", this build reads version " +
                              std::to_string(kVersion));
        return mapping;
      }
      if (ready != 0) throw NotALockError(name + " is not an ipcxx robust lock (bad header)");
    }
    if (deadline.expired())
      throw NotALockError(name +
                          " was never initialised as a robust lock (its creator may have died "
                          "while creating it; unlink it and create it again)");
    sleep_briefly();
  }
}

posix::Mapping open_or_create(const std::string& name, bool create, mode_t mode,
                              std::chrono::nanoseconds wait) {
  if (!create) return open_segment(name, wait);
  for (;;) {
    try {
      return create_segment(name, mode);
    } catch (const Error& error) {
      if (error.errno_value() != EEXIST) throw;
    }
    try {
      return open_segment(name, wait);
    } catch (const Error& error) {
      // Unlinked between our two calls: create it again.
      if (error.errno_value() != ENOENT) throw;
    }
  }
}

}  // namespace

RobustMutex::RobustMutex(std::string name, posix::Mapping mapping)
    : name_(std::move(name)), mapping_(std::move(mapping)) {
  shared_ = static_cast<Layout*>(static_cast<void*>(mapping_.bytes().data()));
}

RobustMutex::RobustMutex(std::string name, bool create, mode_t mode,
                         std::chrono::nanoseconds open_wait)
    : name_(std::move(name)) {
  posix::validate_name(name_);
  mapping_ = open_or_create(name_, create, mode, open_wait);
  shared_ = static_cast<Layout*>(static_cast<void*>(mapping_.bytes().data()));
}

RobustMutex RobustMutex::create(std::string name, mode_t mode) {
  posix::validate_name(name);
  posix::Mapping mapping = create_segment(name, mode);
  return RobustMutex(std::move(name), std::move(mapping));
}

RobustMutex RobustMutex::create_unique(mode_t mode) {
  return detail::create_with_unique_name(
      [&](std::string name) { return RobustMutex::create(std::move(name), mode); });
}

RobustMutex::RobustMutex(RobustMutex&& other) noexcept
    : name_(std::move(other.name_)),
      mapping_(std::move(other.mapping_)),
      shared_(std::exchange(other.shared_, nullptr)),
      hold_(std::exchange(other.hold_, std::make_unique<Hold>())) {}

RobustMutex& RobustMutex::operator=(RobustMutex&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    mapping_ = std::move(other.mapping_);
    shared_ = std::exchange(other.shared_, nullptr);
    hold_ = std::exchange(other.hold_, std::make_unique<Hold>());
  }
  return *this;
}

RobustMutex::~RobustMutex() { close(); }

void RobustMutex::close() noexcept {
  if (!shared_) return;
  // Unmapping a mutex a thread of ours holds would leave the kernel's robust list pointing
  // at nothing: that thread's death would never be reported and the lock would stay taken.
  const bool held = held_by_this_object();
  shared_ = nullptr;
  if (held)
    keep_mapped(std::move(mapping_));
  else
    mapping_.unmap();
}

RobustMutex::Layout& RobustMutex::layout() const {
  if (!shared_) throw Error(EBADF, Syscall::pthread_mutex_lock, name_);
  return *shared_;
}

void RobustMutex::check_usable(Syscall call) const {
  if (layout().state.load(std::memory_order_acquire) == kNotRecoverable)
    fail(ENOTRECOVERABLE, call, name_);
}

bool RobustMutex::not_recoverable() const {
  return shared_ && shared_->state.load(std::memory_order_acquire) == kNotRecoverable;
}

namespace {

// Called by a new holder: numbers its acquisition and records it as this object's. Whatever
// acquisition the object recorded before has ended (the lock has one holder).
void record_acquisition(RobustMutex::Layout& shared, std::atomic<std::uint64_t>& number,
                        std::atomic<std::uint64_t>& generation) {
  const std::uint64_t next = shared.acquisitions.load(std::memory_order_relaxed) + 1;
  shared.acquisitions.store(next, std::memory_order_release);
  generation.store(fork_generation(), std::memory_order_relaxed);
  number.store(next, std::memory_order_release);
}

}  // namespace

LockOutcome RobustMutex::finish_lock(int result, Syscall call) {
  Layout& shared = layout();
  switch (result) {
    case 0:
      if (shared.state.load(std::memory_order_acquire) == kNotRecoverable) {
        // Became unusable while we waited (a holder released it unrepaired).
        pthread_mutex_unlock(&shared.mutex);
        fail(ENOTRECOVERABLE, call, name_);
      }
      record_acquisition(shared, hold_->number, hold_->generation);
      if (shared.unreported_death.exchange(0) != 0) return LockOutcome::owner_died;
      return LockOutcome::acquired;
    case EOWNERDEAD:
      record_acquisition(shared, hold_->number, hold_->generation);
      shared.unreported_death.store(0);
      shared.state.store(kInconsistent, std::memory_order_release);
      return LockOutcome::owner_died;
    case ETIMEDOUT:
    case EBUSY:
      return LockOutcome::timed_out;
    default:
      fail(result, call, name_);
  }
}

LockOutcome RobustMutex::acquire() {
  check_usable(Syscall::pthread_mutex_lock);
  return finish_lock(pthread_mutex_lock(&layout().mutex), Syscall::pthread_mutex_lock);
}

LockOutcome RobustMutex::try_acquire() {
  check_usable(Syscall::pthread_mutex_trylock);
  return finish_lock(pthread_mutex_trylock(&layout().mutex), Syscall::pthread_mutex_trylock);
}

LockOutcome RobustMutex::acquire_for(std::chrono::nanoseconds timeout) {
  check_usable(Syscall::pthread_mutex_clocklock);
  const detail::Deadline deadline(timeout);
  const timespec at = deadline.monotonic();
  return finish_lock(pthread_mutex_clocklock(&layout().mutex, CLOCK_MONOTONIC, &at),
                     Syscall::pthread_mutex_clocklock);
}

namespace {

enum class Holder { none, this_thread, other, dead };

// After an EOWNERDEAD taken only to look (locked(), wait_free()): records the death for the
// next acquisition to report (finish_lock) and gives the lock back. pthread_mutex_consistent
// first, since unlocking an inconsistent robust mutex would make it not recoverable.
void pass_on_death(RobustMutex::Layout& shared) {
  shared.state.store(kInconsistent, std::memory_order_release);
  shared.unreported_death.store(1);
  pthread_mutex_consistent(&shared.mutex);
  pthread_mutex_unlock(&shared.mutex);
}

// Who holds the mutex, found without waiting: an ERRORCHECK lock with a passed deadline answers
// EDEADLK to its holder and ETIMEDOUT to everyone else; when free we get it and give it back.
// A dead holder's lock has to be taken to find out: the death is then recorded for the next
// acquisition to report, and the lock is given back; it counts as held by the dead holder until
// that acquisition.
Holder find_holder(RobustMutex::Layout& shared, const std::string& name) {
  const timespec past{0, 0};
  const int result = pthread_mutex_clocklock(&shared.mutex, CLOCK_MONOTONIC, &past);
  switch (result) {
    case EDEADLK:
      return Holder::this_thread;
    case ETIMEDOUT:
    case EBUSY:
      return Holder::other;
    case 0: {
      const bool death_left = shared.unreported_death.load() != 0;
      pthread_mutex_unlock(&shared.mutex);
      return death_left ? Holder::dead : Holder::none;
    }
    case EOWNERDEAD:
      pass_on_death(shared);
      return Holder::dead;
    default:
      fail(result, Syscall::pthread_mutex_clocklock, name);
  }
}

}  // namespace

// The number of this object's acquisition when it is the lock's latest one and was made in this
// process (not inherited across fork), else 0. Its thread may have died since.
std::uint64_t RobustMutex::own_acquisition() const noexcept {
  const std::uint64_t number = hold_->number.load(std::memory_order_acquire);
  if (number == 0 || hold_->generation.load(std::memory_order_relaxed) != fork_generation() ||
      shared_->acquisitions.load(std::memory_order_acquire) != number)
    return 0;
  return number;
}

bool RobustMutex::held_by_this_object() noexcept {
  if (!shared_) return false;
  for (;;) {
    std::uint64_t number = own_acquisition();
    if (number == 0) return false;
    Holder holder = Holder::other;
    try {
      holder = find_holder(*shared_, name_);
    } catch (const Error& error) {
      // Not recoverable: nobody can hold it. Anything else: assume held (the safe answer).
      if (error.errno_value() != ENOTRECOVERABLE) return true;
      holder = Holder::none;
    }
    // Our acquisition is the latest and some live thread holds the lock: that is our thread.
    // (So does, for the few instructions before it numbers its acquisition, the successor of
    // our dead thread: the safe answer, a close() refused once, never a wrong unmap.)
    if (holder == Holder::this_thread || holder == Holder::other) return true;
    // The thread died holding it. Forget that acquisition, unless a thread of ours took the
    // lock through this object meanwhile: then look again.
    if (hold_->number.compare_exchange_strong(number, 0)) return false;
  }
}

bool RobustMutex::wait_free(std::chrono::nanoseconds timeout) {
  check_usable(Syscall::pthread_mutex_clocklock);
  Layout& shared = layout();
  const detail::Deadline deadline(timeout);
  const timespec at = deadline.monotonic();
  const int result = pthread_mutex_clocklock(&shared.mutex, CLOCK_MONOTONIC, &at);
  switch (result) {
    case 0:
      // Given back untouched: a death recorded earlier stays for the next acquisition.
      pthread_mutex_unlock(&shared.mutex);
      check_usable(Syscall::pthread_mutex_clocklock);
      return true;
    case EOWNERDEAD:
      pass_on_death(shared);
      return true;
    case ETIMEDOUT:
    case EBUSY:
      return false;
    default:
      fail(result, Syscall::pthread_mutex_clocklock, name_);
  }
}

void RobustMutex::release() {
  check_usable(Syscall::pthread_mutex_unlock);
  Layout& shared = layout();
  // An object releases only its own acquisition: releasing through another object of this
  // process would leave this one recording a hold, and its close() would unmap a mutex this
  // thread holds (glibc's robust list then points into unmapped memory). That the calling
  // thread is the holder (not a dead thread, not the parent of this fork child) is left to
  // pthread_mutex_unlock's own check, which costs nothing more.
  const std::uint64_t number = hold_->number.load(std::memory_order_acquire);
  if (number == 0 || shared.acquisitions.load(std::memory_order_acquire) != number)
    fail(EPERM, Syscall::pthread_mutex_unlock, name_);
  if (shared.state.load(std::memory_order_acquire) == kInconsistent) {
    // Only the holder may doom the lock; anybody else gets the EPERM unlock would give.
    if (find_holder(shared, name_) != Holder::this_thread)
      fail(EPERM, Syscall::pthread_mutex_unlock, name_);
    shared.state.store(kNotRecoverable, std::memory_order_release);
  }
  if (int error = pthread_mutex_unlock(&shared.mutex))
    fail(error, Syscall::pthread_mutex_unlock, name_);
  // Unless another thread took the lock through this object already: that hold is its own.
  std::uint64_t released = number;
  hold_->number.compare_exchange_strong(released, 0);
}

void RobustMutex::make_consistent() {
  check_usable(Syscall::pthread_mutex_consistent);
  Layout& shared = layout();
  if (find_holder(shared, name_) != Holder::this_thread)
    fail(EPERM, Syscall::pthread_mutex_consistent, name_);
  if (shared.state.load(std::memory_order_acquire) != kInconsistent)
    fail(EINVAL, Syscall::pthread_mutex_consistent, name_);
  // EINVAL here means glibc already considers it consistent: a death locked() recorded.
  const int error = pthread_mutex_consistent(&shared.mutex);
  if (error && error != EINVAL) fail(error, Syscall::pthread_mutex_consistent, name_);
  shared.state.store(kConsistent, std::memory_order_release);
}

bool RobustMutex::locked() {
  check_usable(Syscall::pthread_mutex_clocklock);
  Layout& shared = layout();
  const bool held = find_holder(shared, name_) != Holder::none;
  check_usable(Syscall::pthread_mutex_clocklock);
  return held;
}

void RobustMutex::unlink() const { unlink(name_); }

void RobustMutex::unlink(std::string_view name) { posix::SharedMemory::unlink(name); }

}  // namespace ipcxx

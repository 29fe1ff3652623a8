#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// A scheduled callback; destroying the handle does not cancel it, cancel() does.
class TESSERA_API TimerHandle {
 public:
  virtual ~TimerHandle() = default;
  /// Prevents the callback from running if it has not started yet. Idempotent; call it on the
  /// owning executor.
  virtual void cancel() = 0;
};

/// A serial executor (an Asio strand): everything posted to one executor runs one at a time,
/// in order. Each module instance gets its own; its state needs no locks if it is touched
/// only from there.
class TESSERA_API Executor {
 public:
  virtual ~Executor() = default;

  /// Runs `fn` on this executor, later. Thread-safe.
  virtual void post(std::function<void()> fn) = 0;

  /// True when the calling thread is currently running this executor's work.
  virtual bool runningInThisThread() const = 0;

  /// Runs `fn` on this executor after `delay` unless cancelled first. Thread-safe.
  virtual std::unique_ptr<TimerHandle> schedule(std::chrono::nanoseconds delay,
                                                std::function<void()> fn) = 0;

  /// Runs `work` on the daemon's bounded pool of blocking threads (for fork/exec waits,
  /// filesystem writes and other calls that may block), then posts `done` back to this
  /// executor. Errors: ResourceExhausted when the pool's queue is full (nothing is run).
  virtual Status runBlocking(std::function<void()> work, std::function<void()> done) = 0;
};

}  // namespace tessera::api

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "tessera/api/visibility.h"

namespace tessera::api {

/// A monotonically increasing count. Thread-safe, lock-free.
class Counter {
 public:
  void increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// A distribution of durations; a snapshot reports count, min, max and percentiles in
/// milliseconds under `<name>`, `<name>/count`, `<name>/p50`, ... (Mesos's timer keys).
/// Thread-safe.
class TESSERA_API Timer {
 public:
  virtual ~Timer() = default;
  /// Adds one observation.
  virtual void record(std::chrono::nanoseconds duration) = 0;
};

/// The metrics registry a module reports into; keys follow Mesos's style
/// (`allocator/drf/allocation_runs`). Counters and timers live as long as the registry; the
/// returned references stay valid until the module is destroyed. Thread-safe.
class TESSERA_API Metrics {
 public:
  virtual ~Metrics() = default;

  /// Returns the counter named `name`, creating it at zero the first time.
  virtual Counter& counter(std::string_view name) = 0;

  /// Returns the timer named `name`, creating it empty the first time.
  virtual Timer& timer(std::string_view name) = 0;

  /// Registers a gauge whose value is read by calling `read` on the registering module's
  /// executor (so it may read the module's state without locks). Replaces a gauge of the
  /// same name. Removed automatically when the module is destroyed.
  virtual void gauge(std::string_view name, std::function<double()> read) = 0;

  /// Removes a gauge registered by this module; unknown names are ignored.
  virtual void removeGauge(std::string_view name) = 0;
};

}  // namespace tessera::api

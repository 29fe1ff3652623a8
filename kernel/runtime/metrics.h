#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/executor.h"
#include "tessera/api/metrics.h"

namespace tessera::kernel::runtime {

/// What a timer reports: the most recent sample and statistics over its window, in
/// milliseconds (Mesos's timer keys: `<name>`, `<name>/count`, `/min`, `/max`, `/p50`, `/p90`,
/// `/p95`, `/p99`, `/p999`, `/p9999`).
struct TimerStats {
  double last = 0;     ///< the most recent sample
  uint64_t count = 0;  ///< samples in the window (as Mesos counts them)
  uint64_t total = 0;  ///< samples ever recorded
  double sum = 0;      ///< sum over the window
  double min = 0;      ///< minimum over the window
  double max = 0;      ///< maximum over the window
  double p50 = 0;      ///< percentiles over the window, linearly interpolated as in Mesos
  double p90 = 0;      ///< 90th percentile
  double p95 = 0;      ///< 95th percentile
  double p99 = 0;      ///< 99th percentile
  double p999 = 0;     ///< 99.9th percentile
  double p9999 = 0;    ///< 99.99th percentile
};

/// A timer keeping a bounded window of its most recent samples. Thread-safe.
class WindowTimer final : public api::Timer {
 public:
  /// Keeps at most `window` samples (at least one).
  explicit WindowTimer(size_t window);
  /// Adds one sample, dropping the oldest beyond the window.
  void record(std::chrono::nanoseconds duration) override;
  /// Statistics over the current window; `count` 0 when nothing was recorded yet.
  TimerStats stats() const;

 private:
  const size_t window_;
  mutable std::mutex mutex_;
  std::deque<double> samples_;  // milliseconds, oldest first
  uint64_t total_ = 0;
};

/// Every metric's value at one moment, as collected by MetricsRegistry::snapshot().
struct MetricsSnapshot {
  std::map<std::string, uint64_t> counters;  ///< every counter
  std::map<std::string, double> gauges;      ///< gauges that answered before the timeout
  std::map<std::string, TimerStats> timers;  ///< timers with at least one sample
  std::vector<std::string> timedOut;         ///< gauges that did not answer in time

  /// The Mesos `/metrics/snapshot` view: one flat map, timers expanded into their keys.
  std::map<std::string, double> flat() const;
  /// `flat()` as a JSON object with sorted keys; non-finite values are left out.
  std::string toJson() const;
  /// Prometheus text exposition format 0.0.4: names prefixed `tessera_`, invalid characters
  /// replaced by `_`; counters as counter, gauges as gauge, timers as summary (quantiles, _sum
  /// and _count over the window).
  std::string toPrometheus() const;
};

/// The daemon's one metrics registry. Counters and timers live as long as the registry;
/// gauges are read on the executor that registered them, so a snapshot is asynchronous.
/// Thread-safe.
class MetricsRegistry {
 public:
  /// Samples a timer keeps.
  static constexpr size_t kDefaultTimerWindow = 1000;

  /// `io` runs the snapshot timeouts; it must outlive the registry's pending snapshots.
  explicit MetricsRegistry(boost::asio::io_context& io, size_t timerWindow = kDefaultTimerWindow);
  /// Snapshots still in flight complete on their own (they do not reference the registry).
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// The counter `name`, created at zero the first time; the reference is stable.
  api::Counter& counter(std::string_view name);
  /// The timer `name`, created empty the first time; the reference is stable.
  WindowTimer& timer(std::string_view name);

  /// Registers (or replaces) gauge `name`. `read` runs on `executor`, or inline on the
  /// snapshotting thread when `executor` is null (only for reads that are thread-safe).
  /// `executor` must outlive the registration. `owner` tags the gauge for removeGauges().
  void gauge(std::string_view name, api::Executor* executor, std::function<double()> read,
             const void* owner = nullptr);
  /// Removes gauge `name` if it is registered by `owner` (any owner when null).
  void removeGauge(std::string_view name, const void* owner = nullptr);
  /// Removes every gauge registered by `owner`.
  void removeGauges(const void* owner);

  /// Collects every metric and calls `done` once, from an arbitrary thread, when all gauges
  /// answered or `timeout` passed (late gauges are listed in `timedOut` and left out).
  void snapshot(std::chrono::nanoseconds timeout, std::function<void(MetricsSnapshot)> done);
  /// snapshot() and wait for it. Not from an executor a gauge runs on (it would wait for
  /// itself until the timeout).
  MetricsSnapshot snapshotAndWait(std::chrono::nanoseconds timeout);

 private:
  struct Gauge {
    api::Executor* executor;
    std::shared_ptr<std::function<double()>> read;
    const void* owner;
  };

  boost::asio::io_context& io_;
  const size_t timerWindow_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<api::Counter>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<WindowTimer>, std::less<>> timers_;
  std::map<std::string, Gauge, std::less<>> gauges_;
};

/// A module's view of the registry: gauges it registers are read on its executor and are
/// removed when the view is destroyed. Thread-safe.
class ScopedMetrics final : public api::Metrics {
 public:
  /// `registry` and `executor` must outlive the view.
  ScopedMetrics(MetricsRegistry& registry, api::Executor& executor)
      : registry_(registry), executor_(executor) {}
  ~ScopedMetrics() override { registry_.removeGauges(this); }
  ScopedMetrics(const ScopedMetrics&) = delete;
  ScopedMetrics& operator=(const ScopedMetrics&) = delete;

  /// The registry's counter `name`.
  api::Counter& counter(std::string_view name) override { return registry_.counter(name); }
  /// The registry's timer `name`.
  api::Timer& timer(std::string_view name) override { return registry_.timer(name); }
  /// Registers gauge `name`, read on this view's executor.
  void gauge(std::string_view name, std::function<double()> read) override {
    registry_.gauge(name, &executor_, std::move(read), this);
  }
  /// Removes gauge `name` if this view registered it.
  void removeGauge(std::string_view name) override { registry_.removeGauge(name, this); }

 private:
  MetricsRegistry& registry_;
  api::Executor& executor_;
};

/// `name` as a Prometheus metric name: `tessera_` prefix, characters outside [a-zA-Z0-9_:]
/// replaced by `_`.
std::string prometheusName(std::string_view name);

}  // namespace tessera::kernel::runtime

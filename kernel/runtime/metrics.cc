#include "kernel/runtime/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <future>
#include <optional>
#include <set>

#include "tessera/api/json.h"

namespace tessera::kernel::runtime {

namespace asio = boost::asio;

namespace {

// Mesos's percentile: linear interpolation between the two nearest ranks.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double position = p * static_cast<double>(sorted.size() - 1);
  auto index = static_cast<size_t>(std::floor(position));
  double delta = position - static_cast<double>(index);
  if (index + 1 >= sorted.size()) return sorted.back();
  return sorted[index] + delta * (sorted[index + 1] - sorted[index]);
}

std::string formatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

}  // namespace

WindowTimer::WindowTimer(size_t window) : window_(std::max<size_t>(window, 1)) {}

void WindowTimer::record(std::chrono::nanoseconds duration) {
  double ms = std::chrono::duration<double, std::milli>(duration).count();
  std::lock_guard lock(mutex_);
  samples_.push_back(ms);
  if (samples_.size() > window_) samples_.pop_front();
  ++total_;
}

TimerStats WindowTimer::stats() const {
  std::vector<double> sorted;
  TimerStats stats;
  {
    std::lock_guard lock(mutex_);
    if (samples_.empty()) return stats;
    stats.last = samples_.back();
    stats.total = total_;
    sorted.assign(samples_.begin(), samples_.end());
  }
  std::sort(sorted.begin(), sorted.end());
  stats.count = sorted.size();
  for (double sample : sorted) stats.sum += sample;
  stats.min = sorted.front();
  stats.max = sorted.back();
  stats.p50 = percentile(sorted, 0.5);
  stats.p90 = percentile(sorted, 0.9);
  stats.p95 = percentile(sorted, 0.95);
  stats.p99 = percentile(sorted, 0.99);
  stats.p999 = percentile(sorted, 0.999);
  stats.p9999 = percentile(sorted, 0.9999);
  return stats;
}

std::map<std::string, double> MetricsSnapshot::flat() const {
  std::map<std::string, double> out;
  for (const auto& [name, value] : counters) out[name] = static_cast<double>(value);
  for (const auto& [name, value] : gauges) out[name] = value;
  for (const auto& [name, t] : timers) {
    out[name] = t.last;
    out[name + "/count"] = static_cast<double>(t.count);
    out[name + "/min"] = t.min;
    out[name + "/max"] = t.max;
    out[name + "/p50"] = t.p50;
    out[name + "/p90"] = t.p90;
    out[name + "/p95"] = t.p95;
    out[name + "/p99"] = t.p99;
    out[name + "/p999"] = t.p999;
    out[name + "/p9999"] = t.p9999;
  }
  return out;
}

std::string MetricsSnapshot::toJson() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : flat()) {
    if (!std::isfinite(value)) continue;  // JSON has no NaN or Infinity
    if (!first) out += ',';
    first = false;
    out += api::jsonQuote(name);
    out += ':';
    out += fmt::format("{}", value);
  }
  out += '}';
  return out;
}

std::string MetricsSnapshot::toPrometheus() const {
  std::string out;
  // Distinct Mesos names can collapse onto one Prometheus name ("a/b" and "a_b"); a name may
  // appear once only, so the first one (in sorted order) wins.
  std::set<std::string> seen;
  auto claim = [&seen](const std::string& name, std::initializer_list<const char*> suffixes) {
    if (seen.count(name)) return false;
    for (const char* suffix : suffixes) {
      if (seen.count(name + suffix)) return false;
    }
    seen.insert(name);
    for (const char* suffix : suffixes) seen.insert(name + suffix);
    return true;
  };
  for (const auto& [name, value] : counters) {
    std::string metric = prometheusName(name);
    if (!claim(metric, {})) continue;
    out += fmt::format("# TYPE {} counter\n{} {}\n", metric, metric, value);
  }
  for (const auto& [name, value] : gauges) {
    std::string metric = prometheusName(name);
    if (!claim(metric, {})) continue;
    out += fmt::format("# TYPE {} gauge\n{} {}\n", metric, metric, formatNumber(value));
  }
  for (const auto& [name, t] : timers) {
    std::string metric = prometheusName(name);
    if (!claim(metric, {"_sum", "_count"})) continue;
    out += fmt::format("# TYPE {} summary\n", metric);
    const std::pair<const char*, double> quantiles[] = {{"0.5", t.p50},    {"0.9", t.p90},
                                                        {"0.95", t.p95},   {"0.99", t.p99},
                                                        {"0.999", t.p999}, {"0.9999", t.p9999}};
    for (const auto& [q, v] : quantiles) {
      out += fmt::format("{}{{quantile=\"{}\"}} {}\n", metric, q, formatNumber(v));
    }
    out += fmt::format("{}_sum {}\n{}_count {}\n", metric, formatNumber(t.sum), metric, t.count);
  }
  return out;
}

MetricsRegistry::MetricsRegistry(asio::io_context& io, size_t timerWindow)
    : io_(io), timerWindow_(timerWindow) {}

MetricsRegistry::~MetricsRegistry() = default;

api::Counter& MetricsRegistry::counter(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = counters_.find(name);
  if (it == counters_.end()) {
    it = counters_.emplace(std::string(name), std::make_unique<api::Counter>()).first;
  }
  return *it->second;
}

WindowTimer& MetricsRegistry::timer(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = timers_.find(name);
  if (it == timers_.end()) {
    it = timers_.emplace(std::string(name), std::make_unique<WindowTimer>(timerWindow_)).first;
  }
  return *it->second;
}

void MetricsRegistry::gauge(std::string_view name, api::Executor* executor,
                            std::function<double()> read, const void* owner) {
  auto shared = std::make_shared<std::function<double()>>(std::move(read));
  std::lock_guard lock(mutex_);
  gauges_.insert_or_assign(std::string(name), Gauge{executor, std::move(shared), owner});
}

void MetricsRegistry::removeGauge(std::string_view name, const void* owner) {
  std::lock_guard lock(mutex_);
  auto it = gauges_.find(name);
  if (it != gauges_.end() && (owner == nullptr || it->second.owner == owner)) gauges_.erase(it);
}

void MetricsRegistry::removeGauges(const void* owner) {
  std::lock_guard lock(mutex_);
  std::erase_if(gauges_, [owner](const auto& entry) { return entry.second.owner == owner; });
}

namespace {

// One snapshot in flight: gauges report into it from their executors; whoever brings the
// count to zero, or the timeout, completes it. Late answers find it completed and are dropped.
struct Collection {
  std::mutex mutex;
  MetricsSnapshot snapshot;
  std::set<std::string> pending;
  bool completed = false;
  std::function<void(MetricsSnapshot)> done;
  std::unique_ptr<asio::steady_timer> timer;

  // Completes if nothing is pending (or `force`); call without the mutex held.
  void maybeComplete(bool force) {
    std::function<void(MetricsSnapshot)> callback;
    MetricsSnapshot result;
    {
      std::lock_guard lock(mutex);
      if (completed || (!force && !pending.empty())) return;
      completed = true;
      snapshot.timedOut.assign(pending.begin(), pending.end());
      result = std::move(snapshot);
      callback = std::move(done);
      if (timer) timer->cancel();
    }
    callback(std::move(result));
  }

  void report(const std::string& name, std::optional<double> value) {
    {
      std::lock_guard lock(mutex);
      if (completed) return;
      pending.erase(name);
      if (value) snapshot.gauges[name] = *value;
    }
    maybeComplete(false);
  }
};

std::optional<double> readGauge(const std::function<double()>& read) {
  try {
    return read();
  } catch (...) {
    return std::nullopt;  // a failing gauge is left out, as if it had no value
  }
}

}  // namespace

void MetricsRegistry::snapshot(std::chrono::nanoseconds timeout,
                               std::function<void(MetricsSnapshot)> done) {
  auto collection = std::make_shared<Collection>();
  collection->done = std::move(done);
  std::vector<std::pair<std::string, std::shared_ptr<std::function<double()>>>> inlineGauges;
  {
    std::lock_guard registryLock(mutex_);
    std::lock_guard lock(collection->mutex);
    for (const auto& [name, counter] : counters_) {
      collection->snapshot.counters[name] = counter->value();
    }
    for (const auto& [name, timer] : timers_) {
      TimerStats stats = timer->stats();
      if (stats.count > 0) collection->snapshot.timers[name] = stats;
    }
    for (const auto& [name, gauge] : gauges_) collection->pending.insert(name);
    if (!collection->pending.empty()) {
      collection->timer = std::make_unique<asio::steady_timer>(io_, timeout);
      collection->timer->async_wait([collection](const boost::system::error_code& ec) {
        if (!ec) collection->maybeComplete(true);
      });
    }
    // Posting under the registry's lock keeps each executor alive for its post: removing a
    // gauge (which a view does before its executor goes away) waits for this lock.
    for (const auto& [name, gauge] : gauges_) {
      if (gauge.executor == nullptr) {
        inlineGauges.emplace_back(name, gauge.read);
        continue;
      }
      gauge.executor->post([collection, name = name, read = gauge.read] {
        collection->report(name, readGauge(*read));
      });
    }
  }
  for (const auto& [name, read] : inlineGauges) collection->report(name, readGauge(*read));
  collection->maybeComplete(false);
}

MetricsSnapshot MetricsRegistry::snapshotAndWait(std::chrono::nanoseconds timeout) {
  std::promise<MetricsSnapshot> promise;
  auto future = promise.get_future();
  snapshot(timeout,
           [&promise](MetricsSnapshot snapshot) { promise.set_value(std::move(snapshot)); });
  return future.get();
}

std::string prometheusName(std::string_view name) {
  std::string out = "tessera_";
  out.reserve(out.size() + name.size());
  for (char c : name) {
    bool valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == ':';
    out += valid ? c : '_';
  }
  return out;
}

}  // namespace tessera::kernel::runtime

#pragma once

/// A module's Context with a real runtime and strand, for tests and benches that drive a module
/// library directly (no dlopen) the way the kernel would: calls posted to its executor, answers
/// awaited with a deadline.

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "tessera/api/module.h"

namespace tessera::testing {

/// Accepts every route and serves none.
class NullRouter final : public api::HttpRouter {
 public:
  api::Status addRoute(std::string_view, std::string_view, api::HttpHandler, bool) override {
    return api::Status::ok();
  }
};

/// Keeps the routes a module adds so a test or bench can call the handlers directly.
class RecordingRouter final : public api::HttpRouter {
 public:
  struct Route {
    api::HttpHandler handler;
    bool prefix = false;
  };
  api::Status addRoute(std::string_view, std::string_view path, api::HttpHandler handler,
                       bool prefix) override {
    routes[std::string(path)] = Route{std::move(handler), prefix};
    return api::Status::ok();
  }
  // Streaming routes: Unimplemented (the api default); a module runs without them then.

  /// The handler a request to `path` reaches: the exact route, else the longest prefix route;
  /// null when none.
  api::HttpHandler* find(const std::string& path) {
    api::HttpHandler* best = nullptr;
    size_t bestLength = 0;
    for (auto& [route, entry] : routes) {
      const bool match = path == route || (entry.prefix && path.starts_with(route + "/"));
      if (match && route.size() >= bestLength) {
        best = &entry.handler;
        bestLength = route.size();
      }
    }
    return best;
  }
  std::map<std::string, Route> routes;
};

/// Drops every line.
class NullLogger final : public api::Logger {
 public:
  void log(Level, std::string_view) override {}
};

/// Keeps counters and gauges by name so a test can read what the module published.
class MapMetrics final : public api::Metrics {
 public:
  api::Counter& counter(std::string_view name) override {
    std::lock_guard lock(mutex);
    return counters[std::string(name)];
  }
  api::Timer& timer(std::string_view) override { std::abort(); }
  void gauge(std::string_view name, std::function<double()> read) override {
    std::lock_guard lock(mutex);
    gauges[std::string(name)] = std::move(read);
  }
  void removeGauge(std::string_view name) override {
    std::lock_guard lock(mutex);
    gauges.erase(std::string(name));
  }
  std::mutex mutex;
  std::map<std::string, api::Counter> counters;
  std::map<std::string, std::function<double()>> gauges;
};

/// A module's Context without a runtime, for unit tests and benches that drive a module library
/// on one thread: every call runs on `executor` (the test's own fake: inline, with timers it
/// fires by hand), routes are recorded (`router.find`), logs dropped, metrics kept by name and
/// the state store is the kernel's in-memory one (`store`, shared by successive module
/// instances as a restarted leader would see it). `executor` must outlive the context's users.
/// With `sharedState`, state() is that store instead of `store`: successive instances, each on
/// a context and executor of its own, then see one store (it must outlive them).
class StubContext : public api::Context {
 public:
  explicit StubContext(api::Executor& executor, std::string role = "framework")
      : executor_(executor), role_(std::move(role)) {}
  StubContext(api::Executor& executor, api::StateStore& sharedState, std::string role = "framework")
      : executor_(executor), role_(std::move(role)), state_(&sharedState) {}

  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return mapMetrics; }
  api::Executor& executor() override { return executor_; }
  api::HttpRouter& http() override { return router; }
  std::string_view role() const override { return role_; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return *state_; }

  RecordingRouter router;
  kernel::state::MemoryStore store;
  MapMetrics mapMetrics;

 private:
  api::Executor& executor_;
  const std::string role_;
  NullLogger logger_;
  api::StateStore* state_ = &store;
};

class ModuleContext : public api::Context {
 public:
  using NullRouter = ::tessera::testing::NullRouter;
  using MapMetrics = ::tessera::testing::MapMetrics;

  /// `loggerName` names the logger the module writes to.
  explicit ModuleContext(std::string loggerName) : logger_(std::move(loggerName)) {
    runtime.start();
  }
  ~ModuleContext() override { runtime.stop(); }

  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return metrics_; }
  api::Executor& executor() override { return *executor_; }
  api::HttpRouter& http() override { return router_; }
  std::string_view role() const override { return "agent"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return stateStore_; }

  kernel::state::MemoryStore stateStore_;
  kernel::runtime::Runtime runtime;
  std::unique_ptr<kernel::runtime::StrandExecutor> executor_ = runtime.makeExecutor();
  kernel::runtime::SpdLogger logger_;
  MapMetrics metrics_;
  NullRouter router_;
};

/// Runs `call(done)` on `executor` and waits up to `timeout` for the value handed to `done`;
/// nullopt when none came in time.
template <typename T, typename Call>
std::optional<T> onExecutor(api::Executor& executor, Call call,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  executor.post([call = std::move(call), promise]() mutable {
    call([promise](T value) { promise->set_value(std::move(value)); });
  });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

}  // namespace tessera::testing

#pragma once

/// What a module's HTTP routes need in a unit test without a daemon: an executor that runs
/// everything in place, a router that matches requests as the daemon's does (and can refuse a
/// path as taken), and the stub Context (module_context.h) wired to both.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tests/support/module_context.h"

namespace tessera::testing {

/// Runs posted work at once and blocking work then its continuation (counted in `blocking`);
/// a timer is a test error.
class InlineExecutor final : public api::Executor {
 public:
  void post(std::function<void()> fn) override { fn(); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds,
                                             std::function<void()>) override {
    std::abort();
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    ++blocking;
    work();
    done();
    return api::Status::ok();
  }
  int blocking = 0;
};

/// Routes by (method, path, prefix); a path in `taken` is refused as the daemon's router would.
/// get() answers a GET as the daemon would route it (it expects the route to be a GET one).
class TestRouter final : public api::HttpRouter {
 public:
  struct Entry {
    std::string method;
    api::HttpHandler handler;
    bool prefix = false;
  };

  api::Status addRoute(std::string_view method, std::string_view path, api::HttpHandler handler,
                       bool prefix) override {
    if (taken.contains(std::string(path))) return api::alreadyExists("route '{}' is taken", path);
    routes[std::string(path)] = {std::string(method), std::move(handler), prefix};
    return api::Status::ok();
  }

  api::HttpResponse get(const std::string& path) {
    const Entry* best = nullptr;
    std::size_t length = 0;
    for (const auto& [route, entry] : routes) {
      // As the daemon's router: a prefix matches at a segment boundary.
      const bool match = path == route || (entry.prefix && path.starts_with(route) &&
                                           (route.back() == '/' || path[route.size()] == '/'));
      if (match && route.size() >= length) {
        best = &entry;
        length = route.size();
      }
    }
    if (best == nullptr) return api::HttpResponse{404, "", {}, "no route"};
    EXPECT_EQ(best->method, "GET");
    api::HttpRequest request;
    request.method = "GET";
    request.path = path;
    api::HttpResponse response{0, "", {}, ""};
    best->handler(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    return response;
  }

  std::map<std::string, Entry> routes;
  std::set<std::string> taken;
};

/// The stub Context on an InlineExecutor, with a TestRouter in place of its recording router.
class RouterContext final : public StubContext {
 public:
  RouterContext() : StubContext(inline_) {}
  api::HttpRouter& http() override { return router; }

  InlineExecutor inline_;
  TestRouter router;
};

}  // namespace tessera::testing

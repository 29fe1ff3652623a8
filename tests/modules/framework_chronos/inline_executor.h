#pragma once

// An executor that runs everything in place, for the Chronos unit tests: posted work at once,
// blocking work then its continuation (counted); a timer is a test error.

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>

#include "tessera/api/executor.h"

namespace tessera::modules::chronos {

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

}  // namespace tessera::modules::chronos

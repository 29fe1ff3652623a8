#include "kernel/agent/isolator_proxy.h"

#include <future>
#include <string>
#include <utility>

namespace tessera::kernel::agent {

namespace {

class IsolatorProxy final : public api::Isolator {
 public:
  IsolatorProxy(api::Isolator& target, api::Executor& targetExecutor, api::Executor& caller)
      : target_(target), targetExecutor_(targetExecutor), caller_(caller) {}

  // The instance belongs to the role; the proxy never stops it.
  void stop() override {}

  std::vector<std::string> isolations() const override {
    if (targetExecutor_.runningInThisThread()) return target_.isolations();
    std::promise<std::vector<std::string>> promise;
    auto future = promise.get_future();
    targetExecutor_.post([&] { promise.set_value(target_.isolations()); });
    return future.get();
  }

  void recover(const std::vector<api::ContainerCheckpoint>& alive,
               std::function<void(api::Status)> done) override {
    targetExecutor_.post([target = &target_, alive, done = back(std::move(done))]() mutable {
      target->recover(alive, std::move(done));
    });
  }

  void prepare(const api::ContainerConfig& config, std::function<void(api::Status)> done) override {
    targetExecutor_.post([target = &target_, config, done = back(std::move(done))]() mutable {
      target->prepare(config, std::move(done));
    });
  }

  void isolate(std::string_view containerId, int64_t pid,
               std::function<void(api::Status)> done) override {
    targetExecutor_.post(
        [target = &target_, id = std::string(containerId), pid,
         done = back(std::move(done))]() mutable { target->isolate(id, pid, std::move(done)); });
  }

  void watch(std::string_view containerId,
             std::function<void(api::ContainerLimitation)> limited) override {
    targetExecutor_.post(
        [target = &target_, id = std::string(containerId),
         limited = back(std::move(limited))]() mutable { target->watch(id, std::move(limited)); });
  }

  void update(std::string_view containerId, const api::Resources& resources,
              std::function<void(api::Status)> done) override {
    targetExecutor_.post([target = &target_, id = std::string(containerId), resources,
                          done = back(std::move(done))]() mutable {
      target->update(id, resources, std::move(done));
    });
  }

  void usage(std::string_view containerId, v1::ResourceStatistics stats,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override {
    targetExecutor_.post([target = &target_, id = std::string(containerId),
                          stats = std::move(stats), done = back(std::move(done))]() mutable {
      target->usage(id, std::move(stats), std::move(done));
    });
  }

  void cleanup(std::string_view containerId, std::function<void(api::Status)> done) override {
    targetExecutor_.post(
        [target = &target_, id = std::string(containerId), done = back(std::move(done))]() mutable {
          target->cleanup(id, std::move(done));
        });
  }

 private:
  // Wraps a callback so it runs on the caller's executor.
  template <typename T>
  std::function<void(T)> back(std::function<void(T)> fn) {
    api::Executor* caller = &caller_;
    return [caller, fn = std::move(fn)](T value) {
      caller->post([fn, value = std::move(value)]() mutable { fn(std::move(value)); });
    };
  }

  api::Isolator& target_;
  api::Executor& targetExecutor_;
  api::Executor& caller_;
};

}  // namespace

std::shared_ptr<api::Isolator> makeIsolatorProxy(api::Isolator& isolator,
                                                 api::Executor& isolatorExecutor,
                                                 api::Executor& callerExecutor) {
  return std::make_shared<IsolatorProxy>(isolator, isolatorExecutor, callerExecutor);
}

}  // namespace tessera::kernel::agent

#include "kernel/scheduler/framework_host.h"

#include <future>

#include "kernel/runtime/logging.h"

namespace tessera::kernel::scheduler {

FrameworkHost::FrameworkHost(runtime::Runtime& runtime, modules::ModuleHost& modules,
                             FrameworkHostOptions options)
    : runtime_(runtime), modules_(modules), options_(std::move(options)) {
  options_.driver.master = options_.master;
}

FrameworkHost::~FrameworkHost() { stop(); }

void FrameworkHost::runOnExecutor(api::Executor& executor, const std::function<void()>& fn) {
  std::promise<void> done;
  auto future = done.get_future();
  executor.post([&] {
    fn();
    done.set_value();
  });
  future.wait();
}

api::Status FrameworkHost::start() {
  if (framework_ != nullptr || stopped_) {
    return api::failedPrecondition("framework '{}' was started already", options_.module);
  }
  // Check the address first, so a bad --master creates nothing.
  if (auto master = parseMasterAddress(options_.master); !master) return master.status();
  auto made = modules_.create<api::Framework>(options_.module);
  if (!made) return made.status();
  framework_ = *made;
  api::Executor* executor = modules_.executorOf(framework_);
  driver_ =
      std::make_shared<HttpSchedulerDriver>(runtime_, *executor, *framework_, options_.driver);
  auto hooked = modules_.addStopHook(framework_, [driver = driver_] { driver->stop(); });
  if (!hooked) return hooked;
  runOnExecutor(*executor, [this] { framework_->start(*driver_); });
  runtime::logger("framework")
      ->info("started framework module '{}' against master {}", options_.module, options_.master);
  return api::Status::ok();
}

void FrameworkHost::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (driver_ == nullptr) return;
  api::Executor* executor = modules_.executorOf(framework_);
  if (executor == nullptr) return;  // the ModuleHost stopped the instance, and the driver first
  runOnExecutor(*executor, [this] { driver_->stop(); });
}

}  // namespace tessera::kernel::scheduler

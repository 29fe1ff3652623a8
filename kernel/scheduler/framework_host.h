#pragma once

#include <memory>
#include <string>

#include "kernel/modules/module_host.h"
#include "kernel/runtime/runtime.h"
#include "kernel/scheduler/driver.h"
#include "tessera/api/framework.h"
#include "tessera/api/status.h"

namespace tessera::kernel::scheduler {

/// What a FrameworkHost runs.
struct FrameworkHostOptions {
  /// A loaded module of kind "framework" (its modules.json name).
  std::string module;
  /// The master, `host:port`; overrides `driver.master`.
  std::string master;
  /// Timeouts and backoff of the driver.
  DriverOptions driver;
};

/// Runs one framework module against a master: creates the instance through the ModuleHost
/// (kind "framework", on its own executor), makes an HttpSchedulerDriver bound to that executor
/// and calls Framework::start(driver) there. Used by `tessera framework` and `tessera local
/// --frameworks`.
///
/// Shutdown order: stop() (the driver goes quiet: no more callbacks, calls fail), then the
/// ModuleHost's stopAll() (Module::stop() and destruction), then destroy the FrameworkHost:
/// the driver must outlive the instance that holds a reference to it.
///
/// Methods are called from the role's control thread, never from a module's executor.
class FrameworkHost {
 public:
  /// `runtime` and `modules` must outlive the host.
  FrameworkHost(runtime::Runtime& runtime, modules::ModuleHost& modules,
                FrameworkHostOptions options);
  /// stop()s.
  ~FrameworkHost();
  FrameworkHost(const FrameworkHost&) = delete;
  FrameworkHost& operator=(const FrameworkHost&) = delete;

  /// Creates the instance, its driver, and starts it. Errors: InvalidArgument for a master
  /// address the driver cannot use (zk:// included) or a module of another kind; NotFound for
  /// an unknown module; Internal when its factory fails; FailedPrecondition when started
  /// already.
  api::Status start();

  /// Stops the driver on the instance's executor and waits for it. Idempotent.
  void stop();

  /// The instance, after start() (null before); owned by the ModuleHost.
  api::Framework* framework() const { return framework_; }
  /// The driver, after start() (null before).
  HttpSchedulerDriver* driver() const { return driver_.get(); }

 private:
  // Runs `fn` on the instance's executor and waits for it.
  void runOnExecutor(const std::function<void()>& fn);

  runtime::Runtime& runtime_;
  modules::ModuleHost& modules_;
  FrameworkHostOptions options_;
  api::Framework* framework_ = nullptr;
  api::Executor* executor_ = nullptr;
  std::unique_ptr<HttpSchedulerDriver> driver_;
  bool stopped_ = false;
};

}  // namespace tessera::kernel::scheduler

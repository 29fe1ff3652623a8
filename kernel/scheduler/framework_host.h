#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

  /// `zk://[user:password@]host:port,.../path`: the hosts of this module contend for
  /// leadership under the path and keep the module's state (and its FrameworkID) there.
  /// Empty: this host simply leads, and the state goes to `state` (or the daemon's store).
  std::string zk;
  /// The ZooKeeper session timeout for `zk` (Marathon's --zk_session_timeout).
  std::chrono::milliseconds zkSessionTimeout{10000};
  /// Credentials for a master that authenticates frameworks (--principal, --secret).
  std::optional<std::string> principal;
  std::optional<std::string> secret;
  /// FrameworkInfo.failover_timeout when the module leaves it unset (Marathon's default: a
  /// week): the master keeps the framework's tasks this long while no leader is subscribed.
  std::chrono::seconds failoverTimeout{7 * 24 * 3600};
  /// Module parameters appended to the manifest's (`marathon --framework_name=x` becomes
  /// `framework_name=x`).
  std::vector<std::pair<std::string, std::string>> parameters;
  /// Without `zk`: the store the module's key space is carved from (not owned; must outlive
  /// the host). Null: the daemon's store.
  api::StateStore* state = nullptr;
  /// Makes the router the module's routes go to (another port: `tessera local` serves Marathon
  /// on :8080). Null: the daemon's router.
  std::function<std::unique_ptr<api::HttpRouter>(api::Executor&)> routerFor;
  /// `host:port` at which this host serves the module's API (for webui_url, /v2/info and
  /// /v2/leader, and what followers forward to). Empty: not known.
  std::string advertisedAddress;
};

/// Runs one framework module against a master: creates the instance through the ModuleHost
/// (kind "framework", on its own executor), makes an HttpSchedulerDriver bound to that executor
/// and calls Framework::start(driver) there. Used by `tessera framework` and `tessera local
/// --frameworks`.
///
/// Shutdown: the driver is stopped (no more callbacks, calls fail) right before the instance's
/// Module::stop(), by a ModuleHost stop hook, and lives until the instance is destroyed, whether
/// the FrameworkHost goes first or the ModuleHost does. stop() stops the driver earlier.
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

  /// Stops the driver on the instance's executor and waits for it (nothing once the ModuleHost
  /// stopped the instance). Idempotent.
  void stop();

  /// The instance, after start() (null before); owned by the ModuleHost.
  api::Framework* framework() const { return framework_; }
  /// The driver, after start() (null before).
  HttpSchedulerDriver* driver() const { return driver_.get(); }

 private:
  // Runs `fn` on the instance's executor and waits for it.
  void runOnExecutor(api::Executor& executor, const std::function<void()>& fn);

  runtime::Runtime& runtime_;
  modules::ModuleHost& modules_;
  FrameworkHostOptions options_;
  api::Framework* framework_ = nullptr;
  // Shared with the instance's stop hook, so it outlives the instance.
  std::shared_ptr<HttpSchedulerDriver> driver_;
  bool stopped_ = false;
};

}  // namespace tessera::kernel::scheduler

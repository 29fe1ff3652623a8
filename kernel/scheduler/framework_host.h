#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/election/election.h"
#include "kernel/modules/module_host.h"
#include "kernel/runtime/runtime.h"
#include "kernel/scheduler/driver.h"
#include "kernel/scheduler/hosted_driver.h"
#include "kernel/scheduler/leadership.h"
#include "kernel/zookeeper/url.h"
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
  /// With `zk`: called (on the election's executor) when this host led and can no longer (its
  /// session expired, or ZooKeeper was unreachable past the session timeout). `tessera
  /// framework` exits with status 1 there, as a master does. Null: the host stops the driver and
  /// leads no more (it does not contend again).
  std::function<void(const std::string& reason)> onLeadershipLost;
  /// With `zk`: called once the module abdicated (Framework's host.abdicate()): the driver is
  /// stopped and this host withdrew from the election. `tessera framework` ends its process with
  /// status 0 there, for a supervisor to start it again as a follower. Null: nothing more.
  std::function<void()> onAbdicated;
};

/// The key of the store (the zk store, or `state`) under which a host keeps its module's
/// FrameworkID; the module's own keys are under modulePrefix(), out of its reach.
std::string frameworkIdKey(std::string_view module);
/// Where a module's own key space starts in its host's store: `/modules/<module>`.
std::string modulePrefix(std::string_view module);

/// Runs one framework module against a master: creates the instance through the ModuleHost
/// (kind "framework", on its own executor) with its own store (a ScopedStore of `zk`'s store or
/// of `state`), makes a HostedDriver bound to that executor, calls Framework::attached() and,
/// once this host leads, Framework::start(driver) there. Used by `tessera framework` and
/// `tessera local --frameworks`.
///
/// Leadership. Without `zk` the host leads from start(). With `zk`, contend() stands for
/// election under the zk path (kernel/election, the znode naming `advertisedAddress`); the
/// elected host reads the FrameworkID its predecessor kept and starts the module, which
/// subscribes with it (failover). A follower's module routes forward to the leader
/// (ForwardingRouter).
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

  /// With `zk`: stands for election, once the HTTP port is open (`advertisedAddress`, when not
  /// empty, replaces the option's: the port may be known only now). Without: nothing. Errors:
  /// FailedPrecondition before start().
  api::Status contend(std::string advertisedAddress = {});

  /// Stops the driver on the instance's executor and waits for it (nothing once the ModuleHost
  /// stopped the instance). Idempotent.
  void stop();

  /// The instance, after start() (null before); owned by the ModuleHost.
  api::Framework* framework() const { return framework_; }
  /// The driver, after start() (null before).
  HttpSchedulerDriver* driver() const { return hosted_ ? &hosted_->driver->inner() : nullptr; }
  /// Leadership as the module sees it, after start() (null before).
  const Leadership* leadership() const { return hosted_ ? hosted_->leadership.get() : nullptr; }

 private:
  // What the instance uses; shared with its stop hook, so it outlives the instance.
  struct Hosted {
    // Where the host's own store calls reply; declared first, so it outlives the store.
    std::unique_ptr<runtime::StrandExecutor> replies;
    std::unique_ptr<api::StateStore> zkStore;  // with `zk`
    api::StateStore* store = nullptr;          // zk's or `state`; null: none (not kept)
    std::unique_ptr<api::StateStore> moduleStore;
    std::shared_ptr<Leadership> leadership;
    std::shared_ptr<HostedDriver> driver;
    uint64_t frameworkIdVersion = 0;  // the module's executor only
  };

  // Runs `fn` on the instance's executor and waits for it.
  void runOnExecutor(api::Executor& executor, const std::function<void()>& fn);
  // On the election executor.
  void onElected();
  void onLost(const std::string& reason);
  void onAbdicate();
  // Writes the driver's FrameworkID to the store now, unless kept already (control threads).
  void keepFrameworkIdNow();

  runtime::Runtime& runtime_;
  modules::ModuleHost& modules_;
  FrameworkHostOptions options_;
  std::optional<zookeeper::ZkUrl> zk_;
  api::Framework* framework_ = nullptr;
  std::shared_ptr<Hosted> hosted_;
  std::unique_ptr<runtime::StrandExecutor> election_;
  std::shared_ptr<election::LeaderContender> contender_;
  std::shared_ptr<election::LeaderDetector> detector_;
  bool stopped_ = false;
};

}  // namespace tessera::kernel::scheduler

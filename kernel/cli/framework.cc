#include "kernel/cli/framework.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "kernel/cli/common.h"
#include "kernel/cli/daemon.h"
#include "kernel/cli/resolve.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/logging.h"
#include "kernel/scheduler/framework_host.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

namespace {

// A leader that lost its ZooKeeper session must stop leading at once: as a master does, it
// exits for its supervisor to restart it (as a follower, until elected again).
[[noreturn]] void exitForSupervisor(std::string_view role, const std::string& reason) {
  runtime::logger(role)->critical(
      "lost leadership: {}; exiting so a supervisor restarts this framework host", reason);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) { logger->flush(); });
  std::fflush(nullptr);
  ::_exit(1);
}

}  // namespace

api::Status validateFrameworkHostFlags(const scheduler::FrameworkHostOptions& options) {
  if (!options.zk.empty()) {
    if (!zookeeper::isZkUrl(options.zk)) {
      return api::invalidArgument("flag '--zk': '{}' is not a zk:// URL", options.zk);
    }
    if (auto url = zookeeper::parseZkUrl(options.zk); !url) {
      return url.status().withContext("flag '--zk'");
    }
  }
  if (options.zkSessionTimeout < std::chrono::seconds(1) ||
      options.zkSessionTimeout > std::chrono::minutes(10)) {
    return api::invalidArgument("flag '--zk_session_timeout' must be between 1secs and 10mins");
  }
  if (options.failoverTimeout.count() < 0) {
    return api::invalidArgument("flag '--failover_timeout' must not be negative");
  }
  if (options.secret && !options.principal) {
    return api::invalidArgument("flag '--secret' needs '--principal'");
  }
  if (options.principal && options.principal->empty()) {
    return api::invalidArgument("flag '--principal' must not be empty");
  }
  return api::Status::ok();
}

api::Result<std::string> resolveFrameworkModule(const modules::ModuleManager& manager,
                                                std::string_view flag, std::string_view value) {
  if (const auto* module = manager.findOfKind(api::kKindFramework, value)) return module->name;
  std::string loaded;
  for (const auto& module : manager.modules()) {
    if (module.kind != api::kKindFramework) continue;
    if (!loaded.empty()) loaded += ", ";
    loaded += fmt::format("'{}'", module.name);
    for (const auto& alias : module.aliases) loaded += fmt::format(" (alias '{}')", alias);
  }
  return api::invalidArgument(
      "flag '{}': no module '{}' is loaded as a framework module or alias (loaded: {})", flag,
      value, loaded.empty() ? std::string("none") : loaded);
}

int runFramework(const std::vector<std::string>& args) {
  constexpr std::string_view kRole = "framework";
  CommonFlags common;
  common.port = 8080;  // Marathon's port: the module's routes are served here
  std::string module;
  std::string master;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  flags
      .add("module", &module,
           "The framework module to run: its modules.json name or an alias its entry gives")
      .required();
  flags.add("master", &master, "The master, HOST:PORT or zk://host:port,.../path").required();
  std::string zk;
  runtime::Duration zkSessionTimeout = std::chrono::seconds(10);
  runtime::Duration failoverTimeout = std::chrono::hours(24 * 7);
  std::optional<std::string> principal;
  std::optional<std::string> secret;
  flags.add("zk", &zk,
            "zk://[user:password@]host:port,.../path: the hosts of this module elect one leader "
            "there (the others forward its routes to it) and keep the module's state and "
            "FrameworkID there. Without it this host leads alone and keeps them in its store");
  flags.add("zk_session_timeout", &zkSessionTimeout,
            "ZooKeeper session timeout for --zk: a leader that cannot reach ZooKeeper this long "
            "exits with status 1 and another host takes over");
  flags.add("principal", &principal,
            "The principal the framework authenticates to the master as (and its "
            "FrameworkInfo.principal unless the module sets one)");
  flags
      .add("secret", &secret,
           "The secret of --principal (sent as HTTP Basic credentials); file:///path reads "
           "it from a file")
      .secret()
      .allowFile();
  flags.add("failover_timeout", &failoverTimeout,
            "FrameworkInfo.failover_timeout unless the module sets one: how long the master "
            "keeps the framework's tasks while no leader is subscribed");
  if (auto exit = exitCodeFor(loadFlags(kRole, flags, args))) return *exit;
  scheduler::FrameworkHostOptions options;
  options.module = module;
  options.master = master;
  options.zk = zk;
  options.zkSessionTimeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(zkSessionTimeout);
  options.failoverTimeout = std::chrono::duration_cast<std::chrono::seconds>(failoverTimeout);
  options.principal = principal;
  options.secret = secret;
  return hostFramework(kRole, "--module", common, std::move(options),
                       [&flags] { return flags.values(); });
}

int hostFramework(std::string_view role, std::string_view moduleFlag, const CommonFlags& common,
                  scheduler::FrameworkHostOptions options,
                  std::function<std::map<std::string, std::string>()> flagValues) {
  const std::string master = options.master;
  const bool zk = zookeeper::isZkUrl(master);
  if (auto parsed = scheduler::parseMasterAddress(master); !zk && !parsed) {
    printError(role, parsed.status().message());
    return 1;
  }
  if (auto valid = validateFrameworkHostFlags(options); !valid) {
    printError(role, valid.message());
    return 1;
  }
  runtime::LoggingOptions logging{std::string(role), common.loggingLevel,
                                  common.logDir.value_or(""), common.quiet};
  if (auto status = runtime::setupLogging(logging); !status) {
    printError(role, status.message());
    return 1;
  }
  blockStopSignals();
  Daemon daemon({std::string(role), common, std::move(flagValues), {}});
  if (auto started = daemon.start(); !started) {
    printError(role, started.message());
    return 1;
  }
  // The full name, before anything keys state or logs by it.
  auto module = resolveFrameworkModule(daemon.moduleManager(), moduleFlag, options.module);
  if (!module) {
    printError(role, module.status().message());
    daemon.stop();
    return 1;
  }
  options.module = std::move(module).value();
  std::unique_ptr<LeaderFollower> follower;
  if (zk) {
    // --master=zk://...: the driver subscribes to the leader and re-resolves after a failover.
    auto followed = LeaderFollower::start(daemon.runtime(), master, "--master");
    std::optional<std::string> leader;
    if (followed) leader = (*followed)->awaitLeader(std::chrono::seconds(30));
    if (!followed || !leader) {
      printError(role, followed
                           ? fmt::format("no leading master found under '{}' within 30secs", master)
                           : followed.status().message());
      if (followed) (*followed)->stop();
      daemon.stop();
      return 1;
    }
    follower = std::move(followed).value();
    options.master = *leader;
    options.driver.resolveMaster = follower->resolver();
  }
  if (options.state == nullptr) options.state = &daemon.state();
  if (!options.routerFor) {
    options.routerFor = [router = daemon.routerPtr()](api::Executor& executor) {
      return std::make_unique<net::ExecutorRouter>(router, executor);
    };
  }
  if (!options.zk.empty()) {
    const std::string name(role);
    options.onLeadershipLost = [name](const std::string& reason) {
      exitForSupervisor(name, reason);
    };
    // Abdication ends the process as SIGTERM does (status 0): the driver stops, the znode goes
    // with the session, and a supervisor starts this host again as a follower.
    options.onAbdicated = [] { ::kill(::getpid(), SIGTERM); };
  }
  const bool advertise = options.advertisedAddress.empty();
  const bool withZk = !options.zk.empty();
  scheduler::FrameworkHost host(daemon.runtime(), daemon.modules(), std::move(options));
  api::Status started = host.start();
  if (!started && withZk && started.code() == api::StatusCode::kPermissionDenied) {
    started =
        started.withContext("flag '--zk' (are its credentials those the znodes were made with?)");
  }
  if (started) started = daemon.serve();  // the module's routes are in place: open the port
  if (started) {
    // Now that the port is known: what followers forward to, and what the module advertises.
    std::string address;
    if (advertise) {
      const std::string ip = common.ip == "0.0.0.0" ? "127.0.0.1" : common.ip;
      address = fmt::format("{}:{}", common.hostname.value_or(ip), daemon.port());
    }
    started = host.contend(address);
  }
  if (!started) {
    printError(role, started.message());
    host.stop();
    if (follower) follower->stop();
    daemon.stop();
    return 1;
  }
  int signal = waitForStopSignal();
  runtime::logger(role)->info("received signal {}, stopping", signal);
  host.stop();  // the driver goes quiet first,
  if (follower) follower->stop();
  daemon.stop();  // then the module stops and is destroyed; the driver outlives it
  return 0;
}

}  // namespace tessera::kernel::cli

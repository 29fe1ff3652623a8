#include "kernel/cli/framework.h"

#include "kernel/cli/common.h"
#include "kernel/cli/daemon.h"
#include "kernel/cli/resolve.h"
#include "kernel/runtime/logging.h"
#include "kernel/scheduler/framework_host.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

int runFramework(const std::vector<std::string>& args) {
  constexpr std::string_view kRole = "framework";
  CommonFlags common;
  common.port = 8080;  // Marathon's port: the module's routes are served here
  std::string module;
  std::string master;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  flags.add("module", &module, "The framework module to run (its modules.json name)").required();
  flags.add("master", &master, "The master, HOST:PORT or zk://host:port,.../path").required();
  switch (loadFlags(kRole, flags, args)) {
    case LoadOutcome::kExitOk:
      return 0;
    case LoadOutcome::kExitError:
      return 1;
    case LoadOutcome::kRun:
      break;
  }
  scheduler::FrameworkHostOptions options;
  options.module = module;
  options.master = master;
  return hostFramework(kRole, common, std::move(options), [&flags] { return flags.values(); });
}

int hostFramework(std::string_view role, const CommonFlags& common,
                  scheduler::FrameworkHostOptions options,
                  std::function<std::map<std::string, std::string>()> flagValues) {
  const std::string master = options.master;
  const bool zk = zookeeper::isZkUrl(master);
  if (auto parsed = scheduler::parseMasterAddress(master); !zk && !parsed) {
    printError(role, parsed.status().message());
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
  scheduler::FrameworkHost host(daemon.runtime(), daemon.modules(), std::move(options));
  api::Status started = host.start();
  if (started) started = daemon.serve();  // the module's routes are in place: open the port
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

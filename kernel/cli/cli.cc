#include "kernel/cli/cli.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "kernel/cli/common.h"
#include "kernel/cli/daemon.h"
#include "kernel/cli/execute.h"
#include "kernel/cli/framework.h"
#include "kernel/cli/ha_master.h"
#include "kernel/cli/http_auth.h"
#include "kernel/cli/marathon.h"
#include "kernel/cli/modules_check.h"
#include "kernel/cli/resolve.h"
#include "kernel/cli/roles.h"
#include "kernel/modules/manifest.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/logging.h"
#include "kernel/scheduler/framework_host.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

namespace {

constexpr std::string_view kUsage =
    "Usage: tessera <command> [options]\n"
    "\n"
    "Commands:\n"
    "  local     master, agent and frameworks in one process, HTTP on :5050\n"
    "  master    a master: agents, frameworks, offers; HTTP on :5050\n"
    "  agent     an agent: runs tasks for a master (--master=HOST:PORT); HTTP on :5051\n"
    "  execute   runs one command as a task on a cluster and exits with its exit code\n"
    "  framework hosts a framework module against a master (--module, --master)\n"
    "  resolve   prints the leading master's ip:port (zk://host:port,.../path)\n"
    "  marathon  hosts a framework module with Marathon's flags (--master, --zk, --http_port)\n"
    "  chronos   hosts a framework module with Chronos's flags (--master, --zk_hosts, ...)\n"
    "  modules   list the modules a manifest would load, without starting anything\n"
    "  version   print the version\n"
    "\n"
    "The binary runs a command when called by its name: mesos-local, mesos-master,\n"
    "mesos-agent, mesos-slave, mesos-execute, mesos-resolve, marathon, chronos (the build\n"
    "and 'cmake --install' make these symlinks next to tessera).\n"
    "'tessera <command> --help' lists a command's flags.\n";

// argv[0] aliases: the classic Mesos binary names run the matching command.
const std::map<std::string, std::string, std::less<>> kAliases = {
    {"mesos-local", "local"}, {"mesos-master", "master"},   {"mesos-agent", "agent"},
    {"mesos-slave", "agent"}, {"mesos-execute", "execute"}, {"mesos-resolve", "resolve"},
    {"marathon", "marathon"}, {"chronos", "chronos"},
};

// Runs a daemon until SIGINT/SIGTERM: `setup` adds the role's components between the daemon's
// start and its HTTP port opening, `afterServe` what needs the port open; `beforeStop` runs
// first on the way down.
int runDaemon(std::string_view role, runtime::FlagSet& flags, const CommonFlags& common,
              std::vector<std::string> builtinKinds,
              const std::function<api::Status(Daemon&)>& setup,
              const std::function<void()>& beforeStop = {},
              const std::function<api::Status(Daemon&)>& afterServe = {},
              const std::function<void()>& release = {}) {
  runtime::LoggingOptions logging{std::string(role), common.loggingLevel,
                                  common.logDir.value_or(""), common.quiet};
  if (auto status = runtime::setupLogging(logging); !status) {
    printError(role, status.message());
    return 1;
  }
  blockStopSignals();
  Daemon daemon({std::string(role), common, [&flags] { return flags.values(); }, builtinKinds});
  api::Status started = daemon.start();
  if (started) started = setup(daemon);
  if (started) started = daemon.serve();
  if (started && afterServe) started = afterServe(daemon);
  if (!started) {
    if (beforeStop) beforeStop();
    daemon.stop();
    if (release) release();
    printError(role, started.message());
    return 1;
  }
  int signal = waitForStopSignal([&daemon, role] {
    auto log = runtime::logger(role);
    log->info("received SIGHUP: reloading the modules' credentials and ACLs");
    for (const auto& refused : daemon.modules().reloadAll()) log->warn("reload: {}", refused);
  });
  runtime::logger(role)->info("received signal {}, stopping", signal);
  if (beforeStop) beforeStop();
  daemon.stop();
  // The role's components hold strands of the daemon's runtime: they go before the daemon.
  if (release) release();
  return 0;
}

int runMaster(const std::vector<std::string>& args) {
  CommonFlags common;
  MasterFlags masterFlags;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  addMasterFlags(flags, masterFlags);
  HttpAuthFlags httpAuth;
  addHttpAuthFlags(flags, httpAuth, "credentials");
  HaFlags ha;
  addHaFlags(flags, ha);
  if (auto exit = exitCodeFor(loadFlags("master", flags, args))) return *exit;
  masterFlags.credentials = httpAuth.credentials;
  if (masterFlags.registry != "replicated_log" && masterFlags.registry != "in_memory") {
    printError("master", fmt::format("flag '--registry': '{}' is neither replicated_log nor "
                                     "in_memory",
                                     masterFlags.registry));
    return 1;
  }
  const bool inMemory = masterFlags.registry == "in_memory";
  if (!ha.zk.empty()) {
    // HA: the master component runs while elected, its registry in ZooKeeper (or, with
    // --registry=in_memory, in the leader's memory).
    auto url = validateHaFlags(ha);
    if (!url) {
      printError("master", url.status().message());
      return 1;
    }
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(ha.zkSessionTimeout);
    std::unique_ptr<HaMaster> haMaster;
    return runDaemon(
        "master", flags, common, {"allocator"},
        [&](Daemon& daemon) -> api::Status {
          if (auto gated = installHttpAuthentication(daemon, "master", httpAuth, "credentials");
              !gated) {
            return gated;
          }
          auto started = HaMaster::start(daemon, common, masterFlags, *url, timeout);
          if (!started) return started.status();
          haMaster = std::move(started).value();
          return api::Status::ok();
        },
        [&] {
          if (haMaster) haMaster->stop();
        },
        [&](Daemon& daemon) -> api::Status { return haMaster->contend(daemon.port()); },
        [&] { haMaster.reset(); });
  }
  if (ha.quorum != 0) {
    printError("master", "flag '--quorum' needs '--zk' (it concerns replicated masters)");
    return 1;
  }
  if (!inMemory && common.workDir.empty()) {
    printError("master",
               "flag '--work_dir' is required for the replicated_log registry "
               "(or use --registry=in_memory)");
    return 1;
  }
  std::unique_ptr<MasterRole> master;
  return runDaemon(
      "master", flags, common, {"allocator"},
      [&](Daemon& daemon) -> api::Status {
        if (auto gated = installHttpAuthentication(daemon, "master", httpAuth, "credentials");
            !gated) {
          return gated;
        }
        auto started = MasterRole::start(daemon, common, masterFlags, inMemory);
        if (!started) return started.status();
        master = std::move(started).value();
        return api::Status::ok();
      },
      {}, {}, [&] { master.reset(); });
}

int runAgent(const std::vector<std::string>& args) {
  CommonFlags common;
  common.port = 5051;
  AgentFlags agentFlags;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  addAgentFlags(flags, agentFlags, /*withMaster=*/true);
  HttpAuthFlags httpAuth;
  addHttpAuthFlags(flags, httpAuth, "http_credentials");
  if (auto exit = exitCodeFor(loadFlags("agent", flags, args))) return *exit;
  if (common.workDir.empty()) {
    printError("agent", "flag '--work_dir' is required (sandboxes and checkpoints live there)");
    return 1;
  }
  std::unique_ptr<AgentRole> agent;
  std::unique_ptr<LeaderFollower> follower;
  static std::atomic<bool> refused{false};
  int code = runDaemon(
      "agent", flags, common, {"containerizer"},
      [&](Daemon& daemon) -> api::Status {
        if (auto gated = installHttpAuthentication(daemon, "agent", httpAuth, "http_credentials");
            !gated) {
          return gated;
        }
        AgentRole::Placement placement;
        placement.masterAddress = agentFlags.master;
        if (zookeeper::isZkUrl(agentFlags.master)) {
          // Follow the leader: ask the detector before every connection attempt.
          auto started = LeaderFollower::start(daemon.runtime(), agentFlags.master, "--master");
          if (!started) return started.status();
          follower = std::move(started).value();
          placement.resolveMaster = follower->resolver();
        }
        placement.workDir = common.workDir;
        placement.httpPort = common.port;
        // Refused by the master (marked gone): stop, as a Mesos agent does, and exit non-zero.
        placement.onRefused = [](const std::string& message) {
          printError("agent", fmt::format("the master refused this agent: {}", message));
          refused = true;
          ::kill(::getpid(), SIGTERM);
        };
        auto started = AgentRole::start(daemon, common, agentFlags, std::move(placement));
        if (!started) return started.status();
        agent = std::move(started).value();
        if (follower) {
          auto* role = agent.get();
          follower->onChange([role](const std::string&) { role->agent().masterChanged(); });
        }
        return api::Status::ok();
      },
      [&] {
        if (follower) follower->stop();
      },
      {},
      [&] {
        agent.reset();
        follower.reset();
      });
  return refused ? 1 : code;
}

// A framework `tessera local` hosts on a port of its own (Marathon's :8080, Chronos's :4400),
// if its module is loaded: `--<part>_port` (0 turns it off) and `--<part>_module`.
struct OwnPortFramework {
  std::string part;    // "marathon": the flags' prefix
  std::string module;  // the module playing the part: its full name or an alias
  uint16_t port;
  bool explicitModule = false;  // --<part>_module was given: its module must be loaded
};

void addOwnPortFlags(runtime::FlagSet& flags, OwnPortFramework& framework) {
  const std::string title = framework.part == "marathon" ? "Marathon" : "Chronos";
  flags.add(framework.part + "_port", &framework.port,
            fmt::format("Port on which the {} framework module (--{}_module) serves its own API, "
                        "apart from the master's; 0 turns it off",
                        title, framework.part));
  flags.add(framework.part + "_module", &framework.module,
            fmt::format("The framework module serving as {} on --{}_port; skipped when not "
                        "loaded, except that one given explicitly must be",
                        title, framework.part));
}

// Hosts `framework` with its routes on a router of their own, served on its port: none of the
// daemon's shared endpoints (/metrics, /health, ...) is there, so a module's routes never
// collide with the kernel's. Null when it is turned off. `framework.module` is a full name.
api::Result<std::unique_ptr<scheduler::FrameworkHost>> hostOnOwnPort(
    Daemon& daemon, const CommonFlags& common, const OwnPortFramework& framework) {
  if (framework.port == 0) return std::unique_ptr<scheduler::FrameworkHost>();
  auto router = std::make_shared<net::Router>();
  scheduler::FrameworkHostOptions options;
  options.module = framework.module;
  options.master = fmt::format("{}:{}", common.ip, daemon.port());
  options.state = &daemon.state();  // the module's scoped key space and its kept FrameworkID
  options.routerFor = [router](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
    return std::make_unique<net::ExecutorRouter>(router, executor);
  };
  options.advertisedAddress =
      fmt::format("{}:{}", common.hostname.value_or(common.ip), framework.port);
  auto host = std::make_unique<scheduler::FrameworkHost>(daemon.runtime(), daemon.modules(),
                                                         std::move(options));
  // Its routes are in place before its port opens, as the daemon's are.
  if (auto started = host->start(); !started) {
    return started.withContext("flag '--{}_module': framework '{}'", framework.part,
                               framework.module);
  }
  auto bound = daemon.serveExtra(framework.port, router);
  if (!bound) {
    host->stop();
    return bound.status().withContext("flag '--{}_port'", framework.part);
  }
  runtime::logger("local")->info("{} ('{}') serving on http://{}:{}", framework.part,
                                 framework.module, common.ip, *bound);
  return host;
}

int runLocal(const std::vector<std::string>& args) {
  CommonFlags common;
  MasterFlags masterFlags;
  masterFlags.registry = "in_memory";
  AgentFlags agentFlags;
  int64_t numAgents = 1;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  addMasterFlags(flags, masterFlags);
  addAgentFlags(flags, agentFlags, /*withMaster=*/false);
  HttpAuthFlags httpAuth;
  addHttpAuthFlags(flags, httpAuth, "credentials");
  flags.add("num_agents", &numAgents, "Number of agents to run in the process").alias("num_slaves");
  std::string frameworkNames;
  flags.add("frameworks", &frameworkNames,
            "Framework modules to run against the local master, comma-separated (full names or "
            "manifest aliases)");
  // The defaults are manifest aliases: the kernel names no module.
  std::vector<OwnPortFramework> ownPort = {{"marathon", "marathon", 8080},
                                           {"chronos", "chronos", 4400}};
  for (auto& framework : ownPort) addOwnPortFlags(flags, framework);
  if (auto exit = exitCodeFor(loadFlags("local", flags, args))) return *exit;
  masterFlags.credentials = httpAuth.credentials;
  for (auto& framework : ownPort) {
    framework.explicitModule =
        flags.find(framework.part + "_module")->source() != runtime::FlagSource::kDefault;
  }
  if (numAgents < 0 || numAgents > 64) {
    printError("local", "flag '--num_agents' must be between 0 and 64");
    return 1;
  }
  // Without --work_dir the agents' sandboxes go to a private temporary folder, removed on exit.
  std::filesystem::path agentsDir;
  std::optional<std::filesystem::path> temporary;
  if (common.workDir.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tessera-local-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      printError("local", fmt::format("cannot create a temporary work dir in '{}': {}",
                                      std::filesystem::temp_directory_path().string(),
                                      std::strerror(errno)));
      return 1;
    }
    temporary = pattern;
    agentsDir = *temporary;
  } else {
    agentsDir = std::filesystem::path(common.workDir) / "agents";
  }
  std::unique_ptr<MasterRole> master;
  std::vector<std::unique_ptr<AgentRole>> agents;
  std::vector<std::unique_ptr<scheduler::FrameworkHost>> frameworks;
  int code = runDaemon(
      "local", flags, common, {"allocator", "containerizer"},
      [&](Daemon& daemon) -> api::Status {
        if (auto gated = installHttpAuthentication(daemon, "local", httpAuth, "credentials");
            !gated) {
          return gated;
        }
        auto started =
            MasterRole::start(daemon, common, masterFlags, masterFlags.registry == "in_memory");
        if (!started) return started.status();
        master = std::move(started).value();
        for (int64_t i = 1; i <= numAgents; ++i) {
          AgentRole::Placement placement;
          placement.masterAddress = fmt::format("{}:{}", common.ip, common.port);
          placement.workDir = (agentsDir / std::to_string(i)).string();
          placement.httpPort = common.port;
          placement.routePrefix = fmt::format("/slave({})", i);
          placement.stateRoot = fmt::format("/agents/{}/", i);
          auto agent = AgentRole::start(daemon, common, agentFlags, std::move(placement));
          if (!agent) return agent.status().withContext("agent {}", i);
          agents.push_back(std::move(agent).value());
        }
        return api::Status::ok();
      },
      [&] {
        for (auto& framework : frameworks) framework->stop();
        // `tessera local` owns its tasks: none outlives it.
        for (auto& agent : agents) agent->destroyContainers(std::chrono::seconds(3));
      },
      [&](Daemon& daemon) -> api::Status {
        // Framework modules reach the master through its HTTP port, as they would from afar.
        // Names become full names before they key any state.
        std::vector<std::string> listed;
        for (const auto& name : splitList(frameworkNames)) {
          auto full = resolveFrameworkModule(daemon.moduleManager(), "--frameworks", name);
          if (!full) return full.status();
          listed.push_back(*full);
        }
        for (const auto& name : listed) {
          scheduler::FrameworkHostOptions options;
          options.module = name;
          options.master = fmt::format("{}:{}", common.ip, daemon.port());
          options.state = &daemon.state();
          auto host = std::make_unique<scheduler::FrameworkHost>(daemon.runtime(), daemon.modules(),
                                                                 std::move(options));
          if (auto started = host->start(); !started) {
            return started.withContext("flag '--frameworks': framework '{}'", name);
          }
          frameworks.push_back(std::move(host));
        }
        for (auto& framework : ownPort) {
          if (framework.port == 0) continue;
          const std::string flag = fmt::format("--{}_module", framework.part);
          auto full = resolveFrameworkModule(daemon.moduleManager(), flag, framework.module);
          if (!full) {
            // A default names a module the manifest may leave out; one given must be loaded.
            if (framework.explicitModule) return full.status();
            runtime::logger("local")->info("not hosting {}: no framework module '{}' is loaded",
                                           framework.part, framework.module);
            continue;
          }
          framework.module = std::move(full).value();
          // One instance per module: named in --frameworks, it is served on the master's port.
          if (std::find(listed.begin(), listed.end(), framework.module) != listed.end()) {
            if (framework.explicitModule) {
              return api::invalidArgument("flag '--{}_module': '{}' is in '--frameworks' too",
                                          framework.part, framework.module);
            }
            continue;
          }
          auto host = hostOnOwnPort(daemon, common, framework);
          if (!host) return host.status();
          if (*host) frameworks.push_back(std::move(host).value());
        }
        return api::Status::ok();
      },
      [&] {
        frameworks.clear();
        agents.clear();
        master.reset();
      });
  if (temporary) {
    std::error_code ignored;
    std::filesystem::remove_all(*temporary, ignored);
  }
  return code;
}

// Prints rows as columns two spaces apart, each as wide as its widest cell (the last one
// unpadded), so long module names and library paths do not push the columns out of line.
void printTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], widths[i]) : row[i];
    }
    line.erase(line.find_last_not_of(' ') + 1);  // no trailing blanks when the last cell is empty
    std::cout << line << "\n";
  }
}

int runModules(const std::vector<std::string>& args) {
  CommonFlags common;
  bool json = false;
  std::optional<std::string> check;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  flags.add("json", &json, "Print JSON instead of a table");
  flags.add("check", &check,
            "Check one module library (PATH.so) against this tessera instead; exit 0 if it loads");
  if (auto exit = exitCodeFor(loadFlags("modules", flags, args))) return *exit;
  if (check) return checkModuleLibrary(*check, std::cout);
  auto entries = modules::readManifests({common.modules, common.modulesDir, defaultManifestPath()},
                                        moduleSearchPath(common));
  if (!entries) {
    printError("modules", entries.status().message());
    return 1;
  }
  modules::ModuleManager manager;
  if (auto loaded = manager.load(*entries); !loaded) {
    printError("modules", loaded.message());
    return 1;
  }
  if (json) {
    Poco::JSON::Array list;
    for (const auto& m : manager.modules()) {
      Poco::JSON::Object object;
      object.set("name", m.name);
      object.set("kind", m.kind);
      object.set("library", m.library);
      object.set("api_version", m.apiVersion);
      object.set("description", m.description);
      object.set("author", m.author);
      Poco::JSON::Array parameters;
      for (const auto& [key, value] : m.parameters.entries()) {
        Poco::JSON::Object parameter;
        parameter.set("key", key);
        parameter.set("value", value);
        parameters.add(parameter);
      }
      object.set("parameters", parameters);
      list.add(object);
    }
    list.stringify(std::cout, 2);
    std::cout << std::endl;
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "KIND", "API", "LIBRARY", "PARAMETERS"}};
  for (const auto& m : manager.modules()) {
    std::string parameters;
    for (const auto& [key, value] : m.parameters.entries()) {
      if (!parameters.empty()) parameters += ",";
      parameters += key + "=" + value;
    }
    rows.push_back({m.name, m.kind, std::to_string(m.apiVersion), m.library, parameters});
  }
  printTable(rows);
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string self = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "tessera";
  std::string command;
  if (auto alias = kAliases.find(self); alias != kAliases.end()) {
    command = alias->second;
  } else if (!args.empty()) {
    command = args.front();
    args.erase(args.begin());
  }
  if (command == "local") return runLocal(args);
  if (command == "master") return runMaster(args);
  if (command == "agent" || command == "slave") return runAgent(args);
  if (command == "execute") return runExecute(args);
  if (command == "framework") return runFramework(args);
  if (command == "modules") return runModules(args);
  if (command == "resolve") return runResolve(args);
  if (command == "marathon") return runMarathon(args);
  if (command == "chronos") return runChronos(args);
  if (command == "version" || command == "--version") {
    std::cout << "tessera " << versionInfo().version << std::endl;
    return 0;
  }
  if (command.empty() || command == "help" || command == "--help") {
    std::cout << kUsage;
    return command.empty() ? 2 : 0;
  }
  std::cerr << "tessera: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tessera::kernel::cli

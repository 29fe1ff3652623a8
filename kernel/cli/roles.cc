#include "kernel/cli/roles.h"

#include <algorithm>
#include <future>
#include <set>
#include <utility>

#include "kernel/cli/http_auth.h"
#include "kernel/cli/module_flags.h"
#include "kernel/runtime/logging.h"
#include "kernel/state/memory_store.h"

namespace tessera::kernel::cli {

namespace {

std::string namesOfKind(const modules::ModuleManager& manager, std::string_view kind) {
  std::string names;
  for (const auto& module : manager.modules()) {
    if (module.kind != kind) continue;
    if (!names.empty()) names += ", ";
    names += fmt::format("'{}'", module.name);
  }
  return names.empty() ? std::string("none") : names;
}

}  // namespace

std::vector<std::string> splitList(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto part = text.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) parts.emplace_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

void addMasterFlags(runtime::FlagSet& flags, MasterFlags& m) {
  flags.add("registry", &m.registry,
            "Where the registry of admitted agents lives: replicated_log (durable: under "
            "--work_dir, or with --zk in ZooKeeper under <path>/state) or in_memory (in the "
            "master's memory; with --zk a new leader knows no agents until they re-register, "
            "as in Mesos: for testing)");
  flags.add("cluster", &m.cluster, "Human readable name of the cluster, shown in /state");
  flags.add("webui_dir", &m.webuiDir,
            "Directory of the web UIs; the master serves its page from <dir>/master at / "
            "(default: <prefix>/share/tessera/webui beside the binary)");
  flags.add("allocator", &m.allocator,
            "The allocator module to use (default: the first allocator module loaded; "
            "HierarchicalDRF means the same)");
  flags
      .add("agent_ping_timeout", &m.agentPingTimeout,
           "How long an agent may stay silent before a ping counts as missed")
      .alias("slave_ping_timeout");
  flags
      .add("max_agent_ping_timeouts", &m.maxAgentPingTimeouts,
           "Missed pings after which an agent is marked unreachable (at least 1)")
      .alias("max_slave_ping_timeouts")
      .atLeast(1);
  flags
      .add("agent_reregister_timeout", &m.agentReregisterTimeout,
           "After a master restart, how long known agents have to re-register before they "
           "are marked unreachable")
      .alias("slave_reregister_timeout");
  flags.add("transport_port", &m.transportPort,
            "Port agents connect to (0: any free port; agents find it through the HTTP port)");
  flags
      .add("authenticate_frameworks", &m.authenticateFrameworks,
           "Refuse scheduler API calls that are not authenticated (401); otherwise they go on "
           "unauthenticated. Needs --http_framework_authenticators (basic: against "
           "--credentials). Frameworks use the HTTP API here, so this is Mesos's "
           "--authenticate_http_frameworks too")
      .alias("authenticate_http_frameworks");
  flags.add("http_framework_authenticators", &m.httpFrameworkAuthenticators,
            "The authenticator module that authenticates scheduler API calls: basic (HTTP "
            "Basic against --credentials) or a loaded authenticator module's name (default: "
            "none)");
  flags.add("authenticate_agents", &m.authenticateAgents,
            "Admit only agents that authenticate on the transport (challenge-response against "
            "--credentials with the --authenticators module; the secret never crosses the "
            "wire); others are refused and told why");
  flags.add("authenticators", &m.authenticators,
            "The authenticator module agents authenticate with on the transport: hmac "
            "(HMAC-SHA256 challenge-response, in the role of Mesos's crammd5) or a loaded "
            "authenticator module's name");
  addAuthorizationFlags(flags, m.authorization);
  flags.add("max_event_stream_queue_size", &m.maxEventStreamQueueSize,
            "Bytes of events written to a scheduler's event stream and not yet read by the "
            "scheduler, at most: past it the stream is closed, the framework disconnected and "
            "its failover timeout starts (0B: no limit)");
  flags.add("weights", &m.weights,
            "Role weights, role1=weight1,role2=weight2 (positive numbers; default 1). Applied "
            "at start unless the registry holds weights set through PUT /weights, which win");
}

void addAgentFlags(runtime::FlagSet& flags, AgentFlags& a, bool withMaster) {
  if (withMaster) {
    flags
        .add("master", &a.master,
             "The master's address, host:port, or zk://host:port,.../path to follow the leader")
        .required();
    flags
        .add("credential", &a.credential,
             "The agent's principal and secret for the master's --authenticate_agents: "
             "file:///path (or a path) of Mesos's JSON {\"principal\":..,\"secret\":..} or one "
             "'principal secret' line, or that JSON inline")
        .secret();
    flags.add("authenticatee", &a.authenticatee,
              "The authenticator module answering the master's challenge with --credential "
              "(hmac, or a loaded authenticator module's name)");
    // `tessera local`'s agents ask the master's authorizer (its --acls).
    addAuthorizationFlags(flags, a.authorization);
  }
  flags.add("resources", &a.resources,
            "Total consumable resources, 'cpus:4;mem:4096;ports:[31000-32000]' or JSON "
            "(default: detected)");
  flags.add("attributes", &a.attributes, "Attributes of the machine, 'rack:r1;zone:a'");
  flags.add("containerizers", &a.containerizers,
            "Containerizer modules in order of preference (mesos = native)");
  flags.add("isolation", &a.isolation,
            "Isolation mechanisms, comma-separated (e.g. cgroups/cpu,cgroups/mem,namespaces/pid)");
  flags.add("cgroups_root", &a.cgroupsRoot,
            "Name of the root cgroup, below each controller, of the cgroups/* isolation");
  flags.add("cgroups_enable_cfs", &a.cgroupsEnableCfs,
            "Cap each container's CPU with a CFS quota of its cpus (cgroups/cpu)");
  flags.add("recover", &a.recover,
            "reconnect: re-attach to live tasks after a restart; cleanup: kill them");
  flags.add("executor_shutdown_grace_period", &a.executorShutdownGracePeriod,
            "Time between SIGTERM and SIGKILL when a task without a kill policy is killed");
  flags.add("docker_socket", &a.dockerSocket,
            "The Docker daemon's unix socket (for --containerizers=docker)");
  flags.add("docker_kill_orphans", &a.dockerKillOrphans,
            "At recovery, remove Docker containers of this agent's work dir that belong to no "
            "known task");
  // Sandbox garbage collection
  flags.add("gc_delay", &a.gcDelay,
            "How long after its executor ended a sandbox is removed (sooner as the disk fills)");
  flags
      .add("gc_disk_headroom", &a.gcDiskHeadroom,
           "Fraction of the disk to keep free, in [0,1]: sandboxes older than "
           "gc_delay * max(0, 1 - gc_disk_headroom - disk usage) are removed")
      .check([](const runtime::Flag::Value& value) {
        const double headroom = std::get<double>(value);
        if (!(headroom >= 0.0 && headroom <= 1.0)) {
          return api::invalidArgument("must be in [0,1], got {}", headroom);
        }
        return api::Status::ok();
      });
  flags
      .add("disk_watch_interval", &a.diskWatchInterval,
           "How often the work dir's disk usage is read for sandbox garbage collection")
      .check([](const runtime::Flag::Value& value) {
        if (std::get<runtime::Duration>(value) <= runtime::Duration::zero()) {
          return api::invalidArgument("must be positive");
        }
        return api::Status::ok();
      });
  // The fetcher
  flags.add("fetcher_cache_dir", &a.fetcherCacheDir,
            "Directory of the fetcher's cache of URIs with cache=true, emptied at start "
            "(default: <work_dir>/fetch)");
  flags.add("fetcher_cache_size", &a.fetcherCacheSize,
            "Size of the fetcher's cache; least recently used files go first");
  flags.add("fetcher_stall_timeout", &a.fetcherStallTimeout,
            "A download that receives no data for this long fails the task's fetch");
  flags.add("fetcher_max_parallel", &a.fetcherMaxParallel,
            "Number of tasks whose URIs are fetched at once; the others wait");
  flags.add("fetcher_link_cached", &a.fetcherLinkCached,
            "Cache hits hard-link read-only files into the sandbox (the cached file, or the "
            "files of an archive extracted once into the cache) when the task does not run as "
            "root; false copies the cached file and extracts the archive for every task, as "
            "Mesos does");
}

api::Result<std::string> resolveAllocator(const modules::ModuleManager& manager,
                                          std::string_view flag) {
  if (flag.empty() || flag == "HierarchicalDRF") {
    for (const auto& module : manager.modules()) {
      if (module.kind == api::kKindAllocator) return module.name;
    }
    return api::invalidArgument(
        "flag '--allocator': no allocator module is loaded (add one to --modules)");
  }
  const auto* module = manager.find(flag);
  if (module == nullptr || module->kind != api::kKindAllocator) {
    return api::invalidArgument(
        "flag '--allocator': '{}' is not a loaded allocator module "
        "(loaded: {})",
        flag, namesOfKind(manager, api::kKindAllocator));
  }
  return module->name;
}

api::Result<std::optional<std::string>> resolveAuthenticator(const modules::ModuleManager& manager,
                                                             std::string_view flag,
                                                             bool authenticateFrameworks) {
  if (flag.empty()) {
    if (authenticateFrameworks) {
      return api::invalidArgument(
          "flag '--authenticate_frameworks' needs an authenticator: name one with "
          "--http_framework_authenticators (loaded: {})",
          namesOfKind(manager, api::kKindAuthenticator));
    }
    return std::optional<std::string>();
  }
  const auto* module = manager.findOfKind(api::kKindAuthenticator, flag);
  if (module == nullptr) {
    return api::invalidArgument(
        "flag '--http_framework_authenticators': '{}' is not a loaded authenticator module "
        "(loaded: {})",
        flag, namesOfKind(manager, api::kKindAuthenticator));
  }
  return std::optional<std::string>(module->name);
}

api::Result<api::Authenticator*> createAgentAuthenticator(Daemon& daemon,
                                                          const MasterFlags& flags) {
  const auto* module =
      daemon.moduleManager().findOfKind(api::kKindAuthenticator, flags.authenticators);
  if (module == nullptr) {
    // Without --authenticate_agents a missing module only means agents cannot authenticate.
    if (!flags.authenticateAgents) return static_cast<api::Authenticator*>(nullptr);
    return api::invalidArgument(
        "flag '--authenticators': '{}' is not a loaded authenticator module (loaded: {})",
        flags.authenticators, namesOfKind(daemon.moduleManager(), api::kKindAuthenticator));
  }
  if (flags.credentials.empty()) {
    if (!flags.authenticateAgents) return static_cast<api::Authenticator*>(nullptr);
    return api::invalidArgument("flag '--authenticate_agents' needs '--credentials'");
  }
  auto created = daemon.modules().create<api::Authenticator>(
      module->name, authenticatorParameters(flags.credentials, "tessera-master"));
  if (!created) {
    return created.status().withContext(
        "flag '--authenticators={}' (its credentials: "
        "'--credentials')",
        flags.authenticators);
  }
  if ((*created)->mechanism().empty()) {
    return api::invalidArgument(
        "flag '--authenticators': module '{}' has no challenge-response mechanism", module->name);
  }
  runtime::logger("master")->info("agents authenticate with '{}' ({}){}", module->name,
                                  (*created)->mechanism(),
                                  flags.authenticateAgents ? ", and must" : "");
  return *created;
}

api::Result<std::vector<std::string>> resolveContainerizers(const modules::ModuleManager& manager,
                                                            std::string_view flag) {
  std::vector<std::string> names;
  for (auto entry : splitList(flag)) {
    if (entry == "mesos") entry = "native";
    const modules::LoadedModule* found = nullptr;
    for (const auto& module : manager.modules()) {
      if (module.kind != api::kKindContainerizer) continue;
      if (selects(api::kKindContainerizer, entry, module.name)) {
        found = &module;
        break;
      }
    }
    if (found == nullptr) {
      return api::invalidArgument(
          "flag '--containerizers': no containerizer module '{}' is loaded (loaded: {})", entry,
          namesOfKind(manager, api::kKindContainerizer));
    }
    names.push_back(found->name);
  }
  if (names.empty()) return api::invalidArgument("flag '--containerizers' is empty");
  return names;
}

api::Result<std::unique_ptr<MasterRole>> MasterRole::start(Daemon& daemon,
                                                           const CommonFlags& common,
                                                           const MasterFlags& flags,
                                                           bool registryInMemory,
                                                           api::StateStore* registry) {
  auto weights = master::parseWeightsFlag(flags.weights);
  if (!weights) return weights.status().withContext("flag '--weights'");
  auto allocatorName = resolveAllocator(daemon.moduleManager(), flags.allocator);
  if (!allocatorName) return allocatorName.status();
  auto allocator = daemon.modules().create<api::Allocator>(*allocatorName);
  if (!allocator) return allocator.status();
  auto authenticatorName = resolveAuthenticator(
      daemon.moduleManager(), flags.httpFrameworkAuthenticators, flags.authenticateFrameworks);
  if (!authenticatorName) return authenticatorName.status();
  api::Authenticator* authenticator = nullptr;
  if (*authenticatorName) {
    auto created = daemon.modules().create<api::Authenticator>(
        **authenticatorName, authenticatorParameters(flags.credentials, "tessera-master"));
    if (!created) {
      return created.status().withContext(
          "flag '--http_framework_authenticators={}' (its credentials: '--credentials')",
          flags.httpFrameworkAuthenticators);
    }
    authenticator = *created;
  }
  auto authorizer = createAuthorizer(daemon, flags.authorization);
  if (!authorizer) return authorizer.status();
  auto agentAuthenticator = createAgentAuthenticator(daemon, flags);
  if (!agentAuthenticator) return agentAuthenticator.status();

  master::MasterServices services;
  services.runtime = &daemon.runtime();
  services.metrics = &daemon.metrics();
  services.router = daemon.routerPtr();
  auto role = std::unique_ptr<MasterRole>(new MasterRole());
  if (registry != nullptr) {
    services.state = registry;
  } else if (registryInMemory) {
    // --registry=in_memory: the registry goes with the process even when --work_dir is set.
    role->registry_ = std::make_unique<state::MemoryStore>();
    services.state = role->registry_.get();
  } else {
    services.state = &daemon.state();
  }
  services.allocator = *allocator;
  services.allocatorExecutor = daemon.modules().executorOf(*allocator);
  if (authenticator != nullptr) {
    services.authenticator = authenticator;
    services.authenticatorExecutor = daemon.modules().executorOf(authenticator);
    services.moduleReloads = [&modules = daemon.modules()] { return modules.reloads(); };
  }
  if (*agentAuthenticator != nullptr) {
    services.agentAuthenticator = *agentAuthenticator;
    services.agentAuthenticatorExecutor = daemon.modules().executorOf(*agentAuthenticator);
  }
  if (*authorizer != nullptr) {
    services.authorizer = *authorizer;
    services.authorizerExecutor = daemon.modules().executorOf(*authorizer);
    // The shared /flags and `tessera local`'s agents ask the same authorizer.
    daemon.authorizerSlot().set({services.authorizer, services.authorizerExecutor});
  }

  master::MasterOptions options;
  options.ip = common.ip;
  options.hostname = common.hostname.value_or(common.ip);
  options.httpPort = common.port;
  options.transportPort = flags.transportPort;
  options.cluster = flags.cluster;
  options.webuiDir = flags.webuiDir.empty() ? defaultWebuiDir() / "master"
                                            : std::filesystem::path(flags.webuiDir) / "master";
  options.workDir = common.workDir;
  options.registryInMemory = registryInMemory;
  options.agentPingTimeout = flags.agentPingTimeout;
  options.maxAgentPingTimeouts = flags.maxAgentPingTimeouts;
  options.agentReregisterTimeout = flags.agentReregisterTimeout;
  options.maxEventStreamQueueBytes = flags.maxEventStreamQueueSize.value;
  options.flags = daemon.flagValues();
  options.version = versionInfo();
  options.authenticateFrameworks = flags.authenticateFrameworks;
  options.authenticateAgents = flags.authenticateAgents;
  options.weights = std::move(weights).value();

  role->master_ = std::make_unique<master::Master>(std::move(services), std::move(options));
  if (auto started = role->master_->start(); !started) return started;
  auto* master = role->master_.get();
  daemon.onStop([master] { master->stop(); });
  return role;
}

api::Result<std::unique_ptr<AgentRole>> AgentRole::start(Daemon& daemon, const CommonFlags& common,
                                                         const AgentFlags& flags,
                                                         Placement placement) {
  if (flags.recover != "reconnect" && flags.recover != "cleanup") {
    return api::invalidArgument("flag '--recover': '{}' is neither reconnect nor cleanup",
                                flags.recover);
  }
  auto names = resolveContainerizers(daemon.moduleManager(), flags.containerizers);
  if (!names) return names.status();

  auto role = std::unique_ptr<AgentRole>(new AgentRole());
  agent::AgentServices services;
  services.runtime = &daemon.runtime();
  services.metrics = &daemon.metrics();
  services.router = daemon.routerPtr();
  services.state = &daemon.state();
  // The agent's module flags become parameters (they win over the manifest's) of the one module
  // their family selects: `docker_*` only to the containerizer `--containerizers=docker` names,
  // `cgroups_*` only to the isolator `cgroups` names (kernel/cli/module_flags.h).
  const std::vector<ModuleFlag> moduleFlags = {
      {"docker_socket", flags.dockerSocket},
      {"docker_kill_orphans", flags.dockerKillOrphans ? "true" : "false"},
      {"cgroups_root", flags.cgroupsRoot},
      {"cgroups_enable_cfs", flags.cgroupsEnableCfs ? "true" : "false"}};
  for (const auto& name : *names) {
    auto containerizer = daemon.modules().create<api::Containerizer>(
        name, flagsFor(api::kKindContainerizer, name, moduleFlags));
    if (!containerizer) return containerizer.status();
    role->containerizers_.push_back(
        {name, *containerizer, daemon.modules().executorOf(*containerizer)});
  }
  services.containerizers = role->containerizers_;

  // --isolation: names an isolator module declares go to that module (created once, even if
  // it serves several); the rest are for the containerizers themselves, which refuse what
  // they do not know.
  // Every isolator module is told --isolation (appended to its manifest parameters), so it can
  // check its controllers at start and stay idle when not asked for, plus its own family's flags.
  const auto wanted = splitList(flags.isolation);
  std::set<std::string, std::less<>> served;
  for (const auto& module : daemon.moduleManager().modules()) {
    if (module.kind != api::kKindIsolator) continue;
    std::vector<ModuleFlag> parameters = {{"isolation", flags.isolation}};
    for (auto& flag : flagsFor(api::kKindIsolator, module.name, moduleFlags)) {
      parameters.push_back(std::move(flag));
    }
    auto isolator = daemon.modules().create<api::Isolator>(module.name, parameters);
    if (!isolator) return isolator.status();
    api::Executor* executor = daemon.modules().executorOf(*isolator);
    std::promise<std::vector<std::string>> asked;
    executor->post([&] { asked.set_value((*isolator)->isolations()); });
    bool used = false;
    for (const auto& name : asked.get_future().get()) {
      if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
      served.insert(name);
      used = true;
    }
    if (used) services.isolators.emplace_back(*isolator, executor);
  }
  std::string ownIsolation;
  for (const auto& name : wanted) {
    if (served.count(name)) continue;
    if (!ownIsolation.empty()) ownIsolation += ",";
    ownIsolation += name;
  }

  if (!flags.credential.empty()) {
    const auto* module =
        daemon.moduleManager().findOfKind(api::kKindAuthenticator, flags.authenticatee);
    if (module == nullptr) {
      return api::invalidArgument(
          "flag '--authenticatee': '{}' is not a loaded authenticator module (loaded: {})",
          flags.authenticatee, namesOfKind(daemon.moduleManager(), api::kKindAuthenticator));
    }
    auto created = daemon.modules().create<api::Authenticator>(module->name,
                                                               {{"credential", flags.credential}});
    if (!created) return created.status().withContext("flag '--credential'");
    if ((*created)->mechanism().empty() || !(*created)->principal()) {
      return api::invalidArgument(
          "flag '--authenticatee': module '{}' cannot answer a challenge with --credential",
          module->name);
    }
    services.authenticatee = *created;
  }

  // --acls: the sandboxes (ACCESS_SANDBOX) and /flags (VIEW_FLAGS) are authorized. In
  // `tessera local` the master created the process's authorizer already.
  services.authorizer = daemon.authorizerSlot().get();
  if (!services.authorizer) {
    auto authorizer = createAuthorizer(daemon, flags.authorization);
    if (!authorizer) return authorizer.status();
    if (*authorizer != nullptr) {
      services.authorizer = {*authorizer, daemon.modules().executorOf(*authorizer)};
      daemon.authorizerSlot().set(services.authorizer);
    }
  }

  agent::AgentOptions options;
  options.master = placement.masterAddress;
  options.resolveMaster = placement.resolveMaster;
  options.ip = common.ip;
  options.hostname = common.hostname.value_or(common.ip);
  options.httpPort = placement.httpPort;
  options.workDir = placement.workDir;
  options.resources = flags.resources;
  options.attributes = flags.attributes;
  options.isolation = ownIsolation;
  options.recover = flags.recover;
  options.killGracePeriod = flags.executorShutdownGracePeriod;
  options.routePrefix = placement.routePrefix;
  options.stateRoot = placement.stateRoot;
  options.onRefused = placement.onRefused;
  options.gc.delay = flags.gcDelay;
  options.gc.diskHeadroom = flags.gcDiskHeadroom;
  options.gc.diskWatchInterval = flags.diskWatchInterval;
  options.flags = daemon.flagValues();
  // The fetcher
  options.fetcherCacheDir = flags.fetcherCacheDir;
  options.fetcherCacheSize = flags.fetcherCacheSize.value;
  options.fetcherStallTimeout = flags.fetcherStallTimeout;
  options.fetcherMaxParallel = static_cast<size_t>(std::max<int64_t>(1, flags.fetcherMaxParallel));
  options.fetcherLinkCached = flags.fetcherLinkCached;

  role->agent_ = std::make_unique<agent::Agent>(std::move(services), std::move(options));
  if (auto started = role->agent_->start(); !started) return started;
  auto* agent = role->agent_.get();
  daemon.onStop([agent] { agent->stop(); });
  return role;
}

void AgentRole::destroyContainers(runtime::Duration grace) {
  for (const auto& slot : containerizers_) {
    std::promise<std::vector<std::string>> listed;
    slot.executor->post([&] {
      slot.containerizer->containers(
          [&](std::vector<std::string> ids) { listed.set_value(std::move(ids)); });
    });
    auto ids = listed.get_future().get();
    std::vector<std::promise<void>> destroyed(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      slot.executor->post([&, i] {
        slot.containerizer->destroy(ids[i], grace,
                                    [&, i](const api::Status&) { destroyed[i].set_value(); });
      });
    }
    for (auto& done : destroyed) done.get_future().wait();
  }
}

}  // namespace tessera::kernel::cli

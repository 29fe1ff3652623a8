#pragma once

/// The cluster roles as the CLI assembles them: flags with Mesos's names, the modules a role
/// needs (allocator, containerizers) resolved from what the manifest loaded, and the master and
/// agent components started inside a Daemon.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/agent/agent.h"
#include "kernel/cli/authz.h"
#include "kernel/cli/daemon.h"
#include "kernel/master/master.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/flags.h"

namespace tessera::kernel::cli {

/// `tessera master` flags beyond the common ones.
struct MasterFlags {
  std::string registry = "replicated_log";  ///< replicated_log (durable in --work_dir) | in_memory
  std::string cluster;
  /// --webui_dir: the folder of the web UIs; the master serves `<dir>/master` at `/`. Empty:
  /// defaultWebuiDir().
  std::string webuiDir;
  std::string allocator;  ///< a loaded allocator module; empty or HierarchicalDRF: the first one
  runtime::Duration agentPingTimeout = std::chrono::seconds(15);
  int64_t maxAgentPingTimeouts = 5;
  runtime::Duration agentReregisterTimeout = std::chrono::minutes(10);
  uint16_t transportPort = 0;
  /// Refuse scheduler calls the authenticator does not authenticate (else they go on
  /// unauthenticated). Needs --http_framework_authenticators.
  bool authenticateFrameworks = false;
  /// The loaded authenticator module that authenticates scheduler calls; empty: none (Mesos's
  /// default is its built-in "basic", which Tessera does not have).
  std::string httpFrameworkAuthenticators;
  /// --authenticate_agents: agents must authenticate on the transport (challenge-response).
  bool authenticateAgents = false;
  /// --authenticators: the transport authenticator module (name or alias; default `hmac`).
  std::string authenticators = "hmac";
  /// --credentials (declared with the HTTP authentication flags, kernel/cli/http_auth.h): the
  /// `basic` framework authenticator checks scheduler calls against it.
  std::string credentials;
  /// --acls and --authorizers (kernel/cli/authz.h).
  AuthorizationFlags authorization;
  /// Mesos's --weights=role1=weight1,role2=weight2 (weights set through PUT /weights win).
  std::string weights;
  /// Events written to a scheduler's stream and not yet read by it, at most (0: no limit).
  runtime::Bytes maxEventStreamQueueSize{runtime::kMegabyte};
};

/// `tessera agent` flags beyond the common ones.
struct AgentFlags {
  std::string master;
  std::string resources;
  std::string attributes;
  std::string containerizers = "mesos";
  std::string isolation = "posix/cpu,posix/mem";
  /// The cgroups isolator's root cgroup below each controller (Mesos's --cgroups_root).
  std::string cgroupsRoot = "tessera";
  /// A hard CFS quota of cpus x 100ms per 100ms period (Mesos's --cgroups_enable_cfs).
  bool cgroupsEnableCfs = false;
  std::string recover = "reconnect";
  runtime::Duration executorShutdownGracePeriod = std::chrono::seconds(5);
  /// Passed to every containerizer module as parameters (the Docker one uses them).
  std::string dockerSocket = "/var/run/docker.sock";
  bool dockerKillOrphans = true;
  // Sandbox garbage collection
  runtime::Duration gcDelay = std::chrono::hours(24 * 7);
  double gcDiskHeadroom = 0.1;
  runtime::Duration diskWatchInterval = std::chrono::minutes(1);
  // The fetcher (Mesos's names and defaults; the cache lives under the work dir by default).
  std::string fetcherCacheDir;  ///< empty: <work_dir>/fetch
  runtime::Bytes fetcherCacheSize{2 * runtime::kGigabyte};
  runtime::Duration fetcherStallTimeout = std::chrono::seconds(60);
  int64_t fetcherMaxParallel = 4;
  bool fetcherLinkCached = true;  ///< a Tessera flag: Mesos always copies and extracts
  /// --credential: the agent's own principal and secret (file:///path, a path or inline), for
  /// the master's challenge; empty: the agent does not authenticate.
  std::string credential;
  /// --authenticatee: the authenticator module (name or alias) answering the challenge.
  std::string authenticatee = "hmac";
  /// --acls and --authorizers of a standalone agent (kernel/cli/authz.h).
  AuthorizationFlags authorization;
};

/// Splits a comma-separated flag value ("a, b,,c") into its non-empty, trimmed parts.
std::vector<std::string> splitList(std::string_view text);

void addMasterFlags(runtime::FlagSet& flags, MasterFlags& master);
/// `withMaster`: false for `tessera local`, whose agents talk to its own master.
void addAgentFlags(runtime::FlagSet& flags, AgentFlags& agent, bool withMaster);

/// The allocator module `--allocator` names among the loaded ones. Errors: InvalidArgument
/// naming '--allocator' (and the allocator modules that are loaded).
api::Result<std::string> resolveAllocator(const modules::ModuleManager& manager,
                                          std::string_view flag);
/// The authenticator module `--http_framework_authenticators` names among the loaded ones, or
/// none when the flag is empty. Errors: InvalidArgument naming '--http_framework_authenticators'
/// (and the authenticator modules that are loaded), or '--authenticate_frameworks' when it is
/// set without an authenticator.
api::Result<std::optional<std::string>> resolveAuthenticator(const modules::ModuleManager& manager,
                                                             std::string_view flag,
                                                             bool authenticateFrameworks);

/// The master's transport authenticator for agents (--authenticators, created with
/// --credentials), or null when agents cannot authenticate (no --credentials or no such module,
/// and --authenticate_agents is off). Errors: InvalidArgument naming the flag at fault when
/// --authenticate_agents is on and the module or the credentials are missing.
api::Result<api::Authenticator*> createAgentAuthenticator(Daemon& daemon, const MasterFlags& flags);
/// The containerizer modules `--containerizers` names, in order: an entry is a loaded module's
/// full name or its short name (`native` for `..._containerizer_native`; `mesos` means
/// `native`). Errors: InvalidArgument naming '--containerizers'.
api::Result<std::vector<std::string>> resolveContainerizers(const modules::ModuleManager& manager,
                                                            std::string_view flag);

/// A master inside a daemon: its allocator module and the component.
class MasterRole {
 public:
  /// Creates the allocator and starts the master; the daemon stops it first on stop().
  /// `registry`, when set, is where the registry lives (the ZooKeeper store of an HA master);
  /// it must outlive the role.
  static api::Result<std::unique_ptr<MasterRole>> start(Daemon& daemon, const CommonFlags& common,
                                                        const MasterFlags& flags,
                                                        bool registryInMemory,
                                                        api::StateStore* registry = nullptr);
  master::Master& master() { return *master_; }

 private:
  std::unique_ptr<api::StateStore> registry_;  ///< set for --registry=in_memory
  std::unique_ptr<master::Master> master_;
};

/// An agent inside a daemon: its containerizer modules and the component.
class AgentRole {
 public:
  struct Placement {
    std::string masterAddress;  ///< host:port of the master's HTTP port
    std::string workDir;        ///< the agent's own work dir
    uint16_t httpPort = 5051;   ///< where its endpoints are served
    std::string routePrefix;    ///< "" or "/slave(N)"
    std::string stateRoot = "/agent/";
    /// Set for a zk:// master: who leads now (see AgentOptions::resolveMaster).
    std::function<std::optional<std::string>()> resolveMaster;
    /// When the master refuses the agent (see AgentOptions::onRefused).
    std::function<void(const std::string&)> onRefused;
  };
  static api::Result<std::unique_ptr<AgentRole>> start(Daemon& daemon, const CommonFlags& common,
                                                       const AgentFlags& flags,
                                                       Placement placement);
  agent::Agent& agent() { return *agent_; }
  /// Destroys every container of this agent (SIGTERM, SIGKILL after `grace`) and waits for it:
  /// `tessera local` leaves no process behind.
  void destroyContainers(runtime::Duration grace);

 private:
  std::unique_ptr<agent::Agent> agent_;
  std::vector<agent::ContainerizerSlot> containerizers_;
};

}  // namespace tessera::kernel::cli

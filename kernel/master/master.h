#pragma once

/// The master role: admits agents over the internal transport (kernel/protocol/internal.proto),
/// serves the v1 scheduler API (`POST /api/v1/scheduler`), the operator API (`POST /api/v1`) and
/// the classic JSON endpoints, and turns the allocator module's offers into v1 OFFERS events.
///
/// Threading: all master state lives on the master's own strand. The allocator is called only
/// on its executor (posts), and what it calls back with is posted to the master's strand.
/// start() and stop() are called from the role's control thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/http/endpoints.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/allocator.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/authorizer.h"
#include "tessera/api/executor.h"
#include "tessera/api/state_store.h"
#include "tessera/api/status.h"

namespace tessera::kernel::master {

/// The master's flags, with Mesos's names and defaults.
struct MasterOptions {
  std::string hostname;  ///< for MasterInfo and /state; the ip when not set
  std::string ip = "127.0.0.1";
  uint16_t httpPort = 5050;  ///< the port the daemon's HTTP server bound (for MasterInfo)
  /// Where agents connect (the internal transport). 0: any free port; agents discover it from
  /// `GET /master/transport` on the HTTP port, so operators only ever name :5050.
  uint16_t transportPort = 0;
  std::string cluster;  ///< --cluster, reported in /state
  /// The master's web UI (`<--webui_dir>/master`): `GET /` answers its index.html and
  /// `GET /static/<file>` its files. Empty: no UI (those paths stay 404).
  std::filesystem::path webuiDir;
  std::string workDir;            ///< --work_dir; the registry lives in the state store
  bool registryInMemory = false;  ///< --registry=in_memory
  runtime::Duration agentPingTimeout = std::chrono::seconds(15);  ///< --agent_ping_timeout
  int64_t maxAgentPingTimeouts = 5;                               ///< --max_agent_ping_timeouts
  /// --agent_reregister_timeout: after a master restart, agents in the registry that have not
  /// re-registered by then are marked unreachable.
  runtime::Duration agentReregisterTimeout = std::chrono::minutes(10);
  /// Interval of HEARTBEAT events on scheduler streams (Mesos: 15 secs).
  runtime::Duration schedulerHeartbeatInterval = std::chrono::seconds(15);
  /// --max_event_stream_queue_size: a scheduler's event stream with more than this written
  /// and not yet read by the scheduler is closed (the framework is then disconnected and its
  /// failover timeout runs). 0: no limit.
  uint64_t maxEventStreamQueueBytes = 1024 * 1024;
  /// How long a framework without failover_timeout is kept after its stream closes.
  runtime::Duration defaultFailoverTimeout = std::chrono::seconds(0);
  /// Effective flags, redacted, for /state and GET_FLAGS.
  std::function<std::map<std::string, std::string>()> flags;
  /// What /state, GET_VERSION and MasterInfo report; version "0.1.0" when empty.
  http::VersionInfo version;
  /// --authenticate_frameworks: scheduler calls the authenticator does not authenticate are
  /// refused (401). When false, they go on unauthenticated (as in Mesos). Needs an
  /// authenticator (MasterServices::authenticator).
  bool authenticateFrameworks = false;
  /// How long the scheduler API remembers that a Basic `Authorization` header authenticated a
  /// principal, so repeat calls skip the authenticator's executor (AuthenticationCache; a
  /// module reload, MasterServices::moduleReloads, forgets everything at once). 0: never.
  std::chrono::milliseconds schedulerAuthenticationTtl{1000};
  /// --authenticate_agents: agents must pass the challenge-response of
  /// MasterServices::agentAuthenticator before they may (re-)register; others are refused
  /// with the reason. When false, an agent that offers credentials is still checked.
  bool authenticateAgents = false;
  /// --weights: role weights applied at start unless the registry holds weights (set through
  /// `PUT /weights`, which win). Valid (see parseWeightsFlag()).
  std::map<std::string, double> weights;
};

/// Parses Mesos's `--weights=role1=weight1,role2=weight2`. Errors: InvalidArgument for a
/// malformed entry, an invalid role or a weight that is not a positive number.
api::Result<std::map<std::string, double>> parseWeightsFlag(std::string_view text);

/// What the role gives the master. Everything outlives the master.
struct MasterServices {
  runtime::Runtime* runtime = nullptr;
  runtime::MetricsRegistry* metrics = nullptr;
  std::shared_ptr<net::Router> router;
  /// The registry of admitted / unreachable / gone agents is kept here under `/master/registry/`.
  api::StateStore* state = nullptr;
  api::Allocator* allocator = nullptr;         ///< the --allocator module
  api::Executor* allocatorExecutor = nullptr;  ///< where the allocator must be called
  /// The --http_framework_authenticators module, asked about every scheduler API call; null:
  /// none, every call is admitted without a principal.
  api::Authenticator* authenticator = nullptr;
  api::Executor* authenticatorExecutor = nullptr;  ///< where the authenticator must be called
  /// How many times the modules were asked to reload their credentials (SIGHUP), counted after
  /// each reload completed: a change forgets every remembered scheduler authentication. Any
  /// thread. Null: never changes.
  std::function<uint64_t()> moduleReloads;
  /// The --authenticators module that checks agents' challenge-responses on the transport;
  /// null: agents that offer credentials are refused (nothing could check them).
  api::Authenticator* agentAuthenticator = nullptr;
  api::Executor* agentAuthenticatorExecutor = nullptr;
  /// The --authorizers module (Mesos's local authorizer with --acls), asked before every
  /// decision that needs a permission; null: everything is allowed, nothing is asked.
  api::Authorizer* authorizer = nullptr;
  api::Executor* authorizerExecutor = nullptr;  ///< where the authorizer must be called
};

class Master {
 public:
  Master(MasterServices services, MasterOptions options);
  /// stop()s.
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  /// Recovers the registry, initializes the allocator, starts the agent transport and adds the
  /// master's routes and metrics. Errors: the first failure; nothing is left running.
  api::Status start();
  /// Closes scheduler streams and agent connections, removes routes and metrics. Idempotent.
  void stop();

  /// The port agents connect to (after start()).
  uint16_t transportPort() const;
  /// This master's id (a UUID made at start).
  const std::string& id() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::kernel::master

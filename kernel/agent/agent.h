#pragma once

/// The agent role: detects its resources, registers with the master over the internal
/// transport, runs tasks through containerizer modules in sandboxes, checkpoints what it runs
/// and its status updates, retries updates until acknowledged, and recovers after a restart.
///
/// Threading: all agent state lives on the agent's own strand; containerizers are called on
/// their executors and their answers posted back. start() and stop() run on the control thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernel/agent/gc.h"
#include "kernel/http/authorization.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/containerizer.h"
#include "tessera/api/executor.h"
#include "tessera/api/isolator.h"
#include "tessera/api/state_store.h"
#include "tessera/api/status.h"

namespace tessera::kernel::agent {

/// "host:port" of --master ("http://" allowed in front; a [v6] host loses its brackets).
/// Errors: InvalidArgument naming the flag.
api::Result<std::pair<std::string, uint16_t>> parseMaster(std::string master);
/// Asks a master's HTTP port for its agent transport port (GET /master/transport). Blocking.
api::Result<uint16_t> discoverTransportPort(const std::string& host, uint16_t port);

/// The agent's flags, with Mesos's names and defaults.
struct AgentOptions {
  /// --master: "host:port" of the master's HTTP port. The agent asks `GET /master/transport`
  /// there for the internal transport's port, again after every disconnection.
  std::string master = "127.0.0.1:5050";
  /// When set (--master=zk://...), asked before every connection attempt, on a blocking
  /// thread, for the leading master's "host:port" (nullopt: none known yet); `master` is then
  /// only shown. Thread-safe.
  std::function<std::optional<std::string>()> resolveMaster;
  std::string hostname;  ///< for AgentInfo; the ip when not set
  std::string ip = "127.0.0.1";
  uint16_t httpPort = 5051;  ///< the HTTP port serving this agent's endpoints
  /// --work_dir: sandboxes under `<work_dir>/slaves/<agent id>/frameworks/...` (DESIGN §7).
  std::string workDir;
  std::string resources;   ///< --resources, text or JSON; empty: detect
  std::string attributes;  ///< --attributes="rack:r1;zone:a"
  /// The --isolation names no isolator module in AgentServices::isolators serves,
  /// comma-separated: the containerizers implement these themselves (and refuse unknown ones).
  std::string isolation;
  std::string recover = "reconnect";  ///< --recover: reconnect | cleanup
  /// --executor_shutdown_grace_period: the kill grace period of tasks without a kill policy.
  runtime::Duration killGracePeriod = std::chrono::seconds(5);
  /// First retry of an unacknowledged status update; doubles up to 10 minutes (Mesos: 10secs).
  runtime::Duration statusUpdateRetryInterval = std::chrono::seconds(10);
  /// Prefix of this agent's routes: "" for a standalone agent (which also answers under
  /// "/slave(1)"), "/slave(N)" for agent N inside `tessera local`.
  std::string routePrefix;
  /// Keys of this agent in the state store start with this ("/agent/" or "/agents/<N>/").
  std::string stateRoot = "/agent/";
  /// Called on the agent's strand when the master refuses it (it was marked gone): the agent
  /// stops talking to the master; a standalone agent process exits.
  std::function<void(const std::string& message)> onRefused;
  /// Sandbox garbage collection: --gc_delay, --gc_disk_headroom, --disk_watch_interval.
  GcOptions gc;
  /// Effective flags, redacted, for /state and /flags.
  std::function<std::map<std::string, std::string>()> flags;

  // The fetcher (fetcher.h).
  /// --fetcher_cache_dir: the cache of fetched URIs; empty: `<work_dir>/fetch`. Emptied at
  /// start (the cache is not recovered, as with Mesos).
  std::string fetcherCacheDir;
  /// --fetcher_cache_size: the cache's capacity in bytes, least recently used out first.
  uint64_t fetcherCacheSize = 2ULL << 30;
  /// --fetcher_stall_timeout: a download that receives no byte for this long fails.
  runtime::Duration fetcherStallTimeout = std::chrono::seconds(60);
  /// --fetcher_max_parallel: tasks whose URIs are fetched at once (the others queue).
  size_t fetcherMaxParallel = 4;
  /// --fetcher_link_cached: cache hits may be read-only hard links (fetcher.h); false copies
  /// and extracts every hit.
  bool fetcherLinkCached = true;
};

/// One containerizer the agent may use, in --containerizers order.
struct ContainerizerSlot {
  std::string name;  ///< the module's name, for checkpoints and logs
  api::Containerizer* containerizer = nullptr;
  api::Executor* executor = nullptr;  ///< where it must be called
};

/// What the role gives the agent. Everything outlives the agent.
struct AgentServices {
  runtime::Runtime* runtime = nullptr;
  runtime::MetricsRegistry* metrics = nullptr;
  std::shared_ptr<net::Router> router;
  api::StateStore* state = nullptr;               ///< checkpoints live here under `stateRoot`
  std::vector<ContainerizerSlot> containerizers;  ///< non-empty
  /// The isolator modules named by --isolation, with their executors.
  std::vector<std::pair<api::Isolator*, api::Executor*>> isolators;
  /// The --authenticatee module holding the agent's --credential: when set, every connection
  /// to the master first answers the master's challenge with it (principal() and respond()
  /// are thread-safe, called on the agent's strand). Null: the agent registers without.
  api::Authenticator* authenticatee = nullptr;
  /// The --acls authorizer: when set, `/files/*` asks ACCESS_SANDBOX (the object: the user the
  /// sandbox's task runs as) for the request's principal, and refuses with 403. Empty: open.
  http::AuthorizerRef authorizer;
};

class Agent {
 public:
  Agent(AgentServices services, AgentOptions options);
  /// stop()s.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Detects resources, initializes and recovers the containerizers from the checkpoints,
  /// adds the routes and starts registering with the master (in the background: an unreachable
  /// master is retried with backoff). Errors: bad --resources/--attributes (naming the flag), a
  /// containerizer that fails to initialize or recover; nothing is left running.
  api::Status start();
  /// Stops talking to the master and removes routes. Tasks keep running (they are recovered by
  /// the next agent on the same work dir). Idempotent.
  void stop();

  /// The leading master changed: drop the connection to the old one and connect to the new one
  /// now rather than after a ping timeout and backoff. Thread-safe.
  void masterChanged();

  /// The agent id once registered, else empty. Thread-safe.
  std::string id() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::kernel::agent

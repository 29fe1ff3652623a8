#pragma once

/// Many agents in one process, for benches at the scale of a real cluster (20,000 agents would
/// be 20,000 `tessera agent` processes). Each simulated agent speaks the real agent protocol
/// (kernel/protocol/internal.proto) over its own transport connection to whoever leads: it
/// registers with its own resources and attributes, "runs" the tasks it is given (TASK_RUNNING
/// at once, then, after a configurable time, a chosen end state), sends each status update
/// until it is acknowledged, one at a time per task as the agent's status update manager does,
/// and after a failover re-registers with its id and its tasks. What it does not do is run
/// anything: no containers, no sandboxes, no HTTP endpoints.
///
/// Threads: none of its own. Every agent is a strand on the caller's Runtime (one io_context,
/// a few threads), with one TransportClient; timers are Asio timers. Memory is what the agent
/// must keep to re-register: its AgentInfo and one record per live task.
///
/// Finding the master: `zk://...` follows the leader through ZooKeeper, one session per
/// `agentsPerSession` agents (1: one each, as real agents); `host:port` is a master's HTTP
/// address, whose transport port each agent asks for (GET /master/transport) before each
/// connection, unless `transportPort` gives it (then no HTTP at all: what 20,000 agents need).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/api/status.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::net {
class TlsContext;
/// The process's TLS (kernel/net/tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();
}  // namespace tessera::kernel::net

namespace tessera::bench {

struct SimulatedAgentsOptions {
  std::string master;  ///< zk://.../path, or the master's host:port (HTTP)
  int agents = 100;
  int agentsPerSession = 1;  ///< zk:// only
  std::chrono::milliseconds sessionTimeout{10000};
  /// With a host:port master: its transport port, so the agents connect straight to it.
  uint16_t transportPort = 0;
  /// Agent `index`'s hostname, port, resources and attributes (its id comes from the master).
  /// Empty: cpus:1;mem:256;disk:256;ports:[31000-31010], hostname simulated-<index>.
  std::function<v1::AgentInfo(int index)> describe;
  /// How long a task "runs" before it ends in `endState`; 0: until killed or finishTasks().
  std::chrono::milliseconds taskDuration{0};
  v1::TaskState endState = v1::TASK_FINISHED;
  /// Unacknowledged updates are sent again this often (the agent's status update retry).
  std::chrono::milliseconds updateRetry{10000};
  /// TLS on the transport connections (verified as TransportClientOptions::tls says); null:
  /// plain. The process's by default, as a real agent's.
  std::shared_ptr<kernel::net::TlsContext> tls = kernel::net::processTls();
};

/// What the agents have done so far, summed over all of them.
struct SimulatedAgentsStats {
  size_t registered = 0;      ///< agents (re-)registered on their current connection
  size_t refused = 0;         ///< agents the master refused (must stay 0)
  size_t registrations = 0;   ///< AgentRegistered/AgentReregistered received, all time
  size_t tasksReceived = 0;   ///< RunTask messages that started a task
  size_t running = 0;         ///< tasks in TASK_RUNNING now
  size_t live = 0;            ///< tasks not yet terminal, or terminal with updates unacknowledged
  size_t updatesCreated = 0;  ///< status updates generated (each must be acknowledged once)
  size_t updatesSent = 0;     ///< status update messages sent, retries included
  size_t acknowledged = 0;    ///< updates acknowledged (the head of a task's queue matched)
  size_t staleAcks = 0;       ///< acknowledgements matching no pending update
};

class SimulatedAgent;
class SimulatedSession;
struct SimulatedCounters;

class SimulatedAgents {
 public:
  /// Starts every agent (each connects as soon as it knows a master). `runtime` must be started
  /// and outlive this object.
  static api::Result<std::unique_ptr<SimulatedAgents>> start(kernel::runtime::Runtime& runtime,
                                                             SimulatedAgentsOptions options);
  /// stop()s.
  ~SimulatedAgents();
  /// Disconnects every agent and ends the sessions. Idempotent.
  void stop();

  /// Agents registered (or re-registered) on their current connection.
  size_t registered() const;
  /// Agents the master refused (must stay 0).
  size_t refused() const;
  /// Tasks in TASK_RUNNING across all agents.
  size_t runningTasks() const;
  /// Every counter at once (each read atomically; the set is not one snapshot).
  SimulatedAgentsStats stats() const;
  /// Sends the end state (`endState`) for every running task now. Thread-safe; returns once
  /// every agent has queued its updates.
  void finishTasks();

 private:
  SimulatedAgents() = default;
  std::vector<std::shared_ptr<SimulatedSession>> sessions_;
  std::vector<std::shared_ptr<SimulatedAgent>> agents_;
  std::shared_ptr<SimulatedCounters> counters_;
  bool stopped_ = false;
};

/// The AgentInfo SimulatedAgentsOptions::describe gives by default (the shape of the failover
/// bench's agent processes), and a helper to build others.
v1::AgentInfo defaultSimulatedAgent(int index);
/// `simulated-<index>` with `resources` ("cpus:32;mem:65536;ports:[31000-32000]") and
/// `attributes` ("rack:r1;zone:a": text values). Asserts that both parse.
v1::AgentInfo simulatedAgent(int index, const std::string& resources,
                             const std::string& attributes);

}  // namespace tessera::bench

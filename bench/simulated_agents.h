#pragma once

/// Many agents in one process, for bench/failover at the scale of a real cluster (1,000 agents
/// would be 1,000 `tessera agent` processes). Each simulated agent speaks the real agent
/// protocol (kernel/protocol/internal.proto) over its own transport connection to whoever leads:
/// it registers, "runs" the tasks it is given (TASK_RUNNING at once, kept until told otherwise),
/// sends status updates until they are acknowledged, and after a failover re-registers with its
/// id and its tasks. What it does not do is run anything: no containers, no sandboxes, no
/// HTTP endpoints. Leader detection is real too: every `agentsPerSession` agents share one
/// ZooKeeper session (1: one each, as real agents).

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/api/status.h"

namespace tessera::bench {

struct SimulatedAgentsOptions {
  std::string master;  ///< zk://.../path
  int agents = 100;
  int agentsPerSession = 1;
  std::chrono::milliseconds sessionTimeout{10000};
};

class SimulatedAgent;
class SimulatedSession;
struct SimulatedCounters;

class SimulatedAgents {
 public:
  /// Starts every agent (each connects as soon as its session knows a leader). `runtime` must
  /// be started and outlive this object.
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
  /// Sends TASK_FINISHED for every running task (the end of a bench run). Thread-safe.
  void finishTasks();

 private:
  SimulatedAgents() = default;
  std::vector<std::shared_ptr<SimulatedSession>> sessions_;
  std::vector<std::shared_ptr<SimulatedAgent>> agents_;
  std::shared_ptr<SimulatedCounters> counters_;
  bool stopped_ = false;
};

}  // namespace tessera::bench

#pragma once

/// The master's bookkeeping, touched only on the master's strand (see master.h). Internal to
/// kernel/master.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernel/net/http_server.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "tessera/api/executor.h"
#include "tessera/api/resources.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::master {

/// What the registry holds for one agent (`/master/registry/agents/<id>`).
enum class RegistryState { kAdmitted, kUnreachable, kGone };

/// The registry's view of one agent and the version of its key, for compare-and-set.
struct RegistryEntry {
  v1::AgentInfo info;
  RegistryState state = RegistryState::kAdmitted;
  uint64_t version = 0;
  double unreachableTime = 0;  ///< seconds since the epoch, when marked unreachable
  /// The agent's dynamic reservations (RESERVE through ACCEPT), each in its reserved form
  /// (`cpus(web,alice):2`); written here before the allocator sees them.
  api::Resources reserved;
};

/// One task the master knows, on an agent, of a framework.
struct TaskEntry {
  v1::TaskInfo info;  ///< agent_id filled in
  std::string frameworkId;
  std::string agentId;
  std::string role;
  v1::TaskState state = v1::TASK_STAGING;
  std::optional<v1::TaskStatus> latestStatus;
  std::vector<std::pair<v1::TaskState, double>> statuses;  ///< (state, timestamp)
  api::Resources resources;
  /// Given back to the allocator (the task reached a terminal state or its agent went away).
  bool recovered = false;
  /// The uuid of the terminal update; its acknowledgement completes the task.
  std::string terminalUuid;
};

/// An outstanding offer.
struct OfferEntry {
  v1::Offer offer;
  std::string frameworkId;
  std::string agentId;
  std::string role;
  api::Resources resources;
};

enum class AgentStatus { kActive, kDisconnected, kUnreachable };

/// A registered agent (connected or not).
struct AgentEntry {
  std::string id;
  v1::AgentInfo info;
  std::string pid;
  std::string version;
  net::ConnectionPtr connection;  ///< null while disconnected
  AgentStatus status = AgentStatus::kActive;
  bool inAllocator = false;
  double registeredTime = 0;
  double reregisteredTime = 0;
  /// What the agent offers: its reported resources with `dynamicReservations` applied.
  api::Resources total;
  /// The dynamic reservations applied to `total` (those of the registry that fit what the agent
  /// reports), each in its reserved form.
  api::Resources dynamicReservations;
  std::unique_ptr<api::TimerHandle> removalTimer;
};

/// A framework: subscribed now, disconnected (within its failover timeout) or recovered from
/// agents' re-registration.
struct FrameworkEntry {
  std::string id;
  v1::FrameworkInfo info;
  std::vector<std::string> roles;
  std::shared_ptr<net::HttpStream> stream;
  std::string streamId;
  bool active = false;
  bool connected = false;
  bool recovered = false;  ///< known from agents only, not subscribed since the master started
  bool inAllocator = false;
  double registeredTime = 0;
  double reregisteredTime = 0;
  double unregisteredTime = 0;
  std::deque<TaskEntry> completedTasks;
  std::unique_ptr<api::TimerHandle> failoverTimer;
  std::unique_ptr<api::TimerHandle> heartbeatTimer;

  bool partitionAware() const {
    for (const auto& capability : info.capabilities()) {
      if (capability.type() == v1::FrameworkInfo::Capability::PARTITION_AWARE) return true;
    }
    return false;
  }
};

/// One ACCEPT call being carried out: the offers' agent and role, what is left of the offered
/// resources after the operations so far, and the task ids used by them.
struct Acceptance {
  std::string frameworkId;
  std::string agentId;
  std::string role;
  api::Resources remaining;
  std::set<std::string> seen;
  std::chrono::nanoseconds refuse{0};  ///< the call's filter for what is given back
  /// What the authorizer refused for this call (its operations on them are dropped), kept
  /// here because the operations after a reservation run after its registry write.
  std::set<std::string> refusedUsers;
  std::set<std::string> refusedReserveRoles;
  std::set<std::string> refusedUnreservePrincipals;
};

/// An ACCEPT whose operations are being carried out, possibly across registry writes.
struct PendingAccept {
  Acceptance acceptance;
  std::vector<v1::Offer::Operation> operations;
  internal::AcceptedOperations view;  ///< the call read for unsupported kinds
  size_t next = 0;                    ///< the next operation to carry out
};

/// Tasks are keyed by (framework id, task id).
using TaskKey = std::pair<std::string, std::string>;

}  // namespace tessera::kernel::master

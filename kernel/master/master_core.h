#pragma once

/// The master's implementation object, shared (through weak references) with every callback
/// that may outlive the Master: everything here runs on `strand` unless noted.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/master/authentication_cache.h"
#include "kernel/master/master.h"
#include "kernel/master/master_state.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/duration.h"
#include "tessera/api/task_state.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel::master {

/// Completed tasks kept per framework, and completed frameworks kept (Mesos's
/// --max_completed_tasks_per_framework / --max_completed_frameworks are 1000 and 50).
inline constexpr size_t kMaxCompletedTasks = 1000;
inline constexpr size_t kMaxCompletedFrameworks = 50;
/// The ACCEPT operation the master answers for task by task without carrying it out.
inline constexpr std::string_view kLaunchGroup = "LAUNCH_GROUP";

struct Core : std::enable_shared_from_this<Core> {
  Core(MasterServices services, MasterOptions options);

  // --- set up at construction / start, read-only afterwards -------------------------------
  MasterServices services;
  MasterOptions options;
  std::string masterId;
  std::unique_ptr<runtime::StrandExecutor> strand;
  std::unique_ptr<net::TransportServer> transport;
  uint16_t transportPortValue = 0;
  double startTime = 0;
  v1::MasterInfo masterInfo;
  bool stopped = false;  // on the strand

  // Store calls in flight: stop() waits for them, because the store posts its reply to the
  // strand, which must still exist then.
  std::mutex pendingMutex;
  std::condition_variable pendingDone;
  int pendingStoreCalls = 0;

  // --- state (strand only) ----------------------------------------------------------------
  std::map<std::string, RegistryEntry> registry;
  std::map<std::string, AgentEntry> agents;
  std::map<uint64_t, std::string> agentByConnection;  // connection id -> agent id
  std::set<uint64_t> registering;                     // connections with a write in flight
  std::map<std::string, FrameworkEntry> frameworks;
  std::deque<FrameworkEntry> completedFrameworks;
  std::map<TaskKey, TaskEntry> tasks;
  std::map<std::string, OfferEntry> offers;
  std::unique_ptr<api::TimerHandle> reregisterTimer;
  uint64_t nextAgent = 0;
  uint64_t nextFramework = 0;
  uint64_t nextOffer = 0;
  uint64_t nextStream = 0;
  // Role policy (policy.cc): weights and quota as the registry holds them, with the versions
  // of their registry keys (0: not written yet). Changes are made one at a time, in order.
  std::map<std::string, double> weights;
  uint64_t weightsVersion = 0;
  std::map<std::string, api::Resources> quotas;  // role -> guarantee
  uint64_t quotaVersion = 0;
  std::deque<std::function<void(std::function<void()> next)>> policyQueue;
  bool policyBusy = false;

  // --- authorization (authorization.cc) ---------------------------------------------------
  /// What a principal may see of /state, /tasks, /frameworks while one is rendered (strand
  /// only; null: everything).
  struct ViewFilter {
    std::set<std::string> frameworkUsers;  ///< VIEW_FRAMEWORK allowed for these users
    std::set<std::string> taskUsers;       ///< VIEW_TASK allowed for these users
    bool flags = true;                     ///< VIEW_FLAGS
  };
  const ViewFilter* view = nullptr;
  /// Users RUN_TASK was refused for, while an ACCEPT is carried out (strand only).
  std::set<std::string> refusedUsers;
  /// While one ACCEPT is applied with an authorizer: the reservation roles RESERVE_RESOURCES
  /// refused, and the reserver principals UNRESERVE_RESOURCES refused (their operations are
  /// dropped).
  std::set<std::string> refusedReserveRoles;
  std::set<std::string> refusedUnreservePrincipals;
  /// Asks the authorizer each of `requests` on its executor and runs `then` on the strand
  /// with one answer per request (true: allowed; an error counts as denied, logged). Without
  /// an authorizer, runs `then` at once with every answer true. Denials are counted.
  void authorize(std::vector<api::AuthorizationRequest> requests,
                 std::function<void(Core&, std::vector<bool>)> then);
  /// Every one of `requests`; `then` gets nullopt when all are allowed, else the message of
  /// the first refusal, naming its principal, action and object.
  void authorizeAll(std::vector<api::AuthorizationRequest> requests,
                    std::function<void(Core&, std::optional<std::string>)> then);
  /// One question, as authorizeAll().
  void authorizeOne(api::AuthorizationRequest request,
                    std::function<void(Core&, std::optional<std::string>)> then);
  /// Renders `render` with what the request's principal may see, then responds.
  void renderFiltered(const api::HttpRequest& request,
                      std::function<std::string(const Core&)> render, api::HttpResponder respond);
  bool visible(const FrameworkEntry& framework) const;
  bool visible(const TaskEntry& task) const;
  /// The user a task runs as: its command's, else its framework's.
  std::string userOf(const TaskEntry& task) const;

  // --- agent authentication (agent_auth.cc) ----------------------------------------------
  /// A challenge sent on a connection and not answered yet (one per connection).
  struct AgentChallenge {
    std::string mechanism;
    std::string principal;
    std::string challenge;
    bool verifying = false;  // the answer is with the authenticator
  };
  std::map<uint64_t, AgentChallenge> agentChallenges;   // connection id -> challenge
  std::map<uint64_t, std::string> authenticatedAgents;  // connection id -> principal
  void authenticateAgent(const net::ConnectionPtr& connection,
                         const internal::AuthenticateAgent& message);
  void agentAuthenticationResponse(const net::ConnectionPtr& connection,
                                   const internal::AuthenticationResponse& message);
  /// True when `connection` may (re-)register: authentication is not required, or it passed.
  /// Otherwise refuses it (the agent is told why) and counts the failure.
  bool agentMayRegister(const net::ConnectionPtr& connection);
  /// Tells the agent why and counts `master/agent_authentication_failures`.
  void refuseAgentAuthentication(const net::ConnectionPtr& connection, const std::string& why);
  void forgetAgentAuthentication(uint64_t connectionId);

  // --- metrics ------------------------------------------------------------------------------
  api::Counter& counter(const std::string& name);

  // --- lifecycle ----------------------------------------------------------------------------
  api::Status recoverRegistry();  // control thread: waits
  /// Reads weights and quota from the registry (--weights when it holds no weights).
  api::Status recoverPolicy();  // control thread: waits
  /// Hands the recovered weights and quota to the allocator (on its executor).
  api::Status applyPolicy(api::Allocator& allocator) const;
  void armReregisterTimeout();
  api::Status addRoutes();
  /// `GET /` and `GET /static/...`: the web UI from options.webuiDir (none when empty).
  api::Status addWebuiRoutes();
  void addMetrics();
  void shutdownOnStrand();

  // --- state store helpers --------------------------------------------------------------
  void storeSet(const std::string& key, std::string value, uint64_t expected,
                std::function<void(api::Result<uint64_t>)> done);
  /// Writes the agent's registry entry with `state` (compare-and-set on the version last read
  /// or written), keeping its reservations.
  void writeRegistry(const std::string& agentId, const v1::AgentInfo& info, RegistryState state,
                     std::function<void(api::Status)> done);
  /// Writes the admitted agent's dynamic reservations into its registry entry. Errors:
  /// FailedPrecondition if the registry does not hold the agent as admitted; the store's.
  void writeReservations(const std::string& agentId, api::Resources reserved,
                         std::function<void(api::Status)> done);
  void writeRegistryEntry(const std::string& agentId, const v1::AgentInfo& info,
                          RegistryState state, double unreachableTime, api::Resources reserved,
                          std::function<void(api::Status)> done);

  // --- agents ---------------------------------------------------------------------------
  void onAgentMessage(const net::ConnectionPtr& connection, internal::Envelope envelope);
  void onAgentClosed(const net::ConnectionPtr& connection, const api::Status& reason);
  void registerAgent(const net::ConnectionPtr& connection, const internal::RegisterAgent& message);
  void reregisterAgent(const net::ConnectionPtr& connection,
                       const internal::ReregisterAgent& message);
  void admitAgent(const net::ConnectionPtr& connection, const std::string& agentId,
                  const v1::AgentInfo& info, const std::string& pid, const std::string& version,
                  const internal::ReregisterAgent* reregister);
  void agentDisconnected(AgentEntry& agent);
  void markUnreachable(const std::string& agentId);
  /// MARK_AGENT_GONE: writes the registry entry as gone, then removes the agent (refusing its
  /// connection) and ends its tasks. `done` gets NotFound for an unknown agent, the store's
  /// error if the write fails, else ok once the registry holds the mark.
  void markGone(const std::string& agentId, std::function<void(api::Status)> done);
  void removeGoneAgent(const std::string& agentId);
  void statusUpdate(const internal::StatusUpdate& update);
  bool sendToAgent(const std::string& agentId, const internal::Envelope& envelope);

  // --- allocator ------------------------------------------------------------------------
  void allocatorCall(std::function<api::Status(api::Allocator&)> fn, std::string what);
  void onOffers(const std::string& frameworkId, std::vector<api::Offer> offers);
  void recover(const std::string& frameworkId, const std::string& agentId,
               const api::Resources& resources, std::optional<std::chrono::nanoseconds> refuse);
  void rescindOffer(const std::string& offerId, bool recoverResources);
  std::vector<api::Allocation> allocationsOfAgent(const std::string& agentId) const;
  std::vector<api::Allocation> allocationsOfFramework(const std::string& frameworkId) const;

  // --- scheduler API --------------------------------------------------------------------
  void schedulerCall(const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream);
  /// Asks the authenticator about `request` (on its executor), then goes on in authenticated().
  void authenticateCall(std::shared_ptr<const api::HttpRequest> request, v1::scheduler::Call call,
                        std::shared_ptr<net::HttpStream> stream);
  /// 401 / 403 per `result` and --authenticate_frameworks, else dispatchCall(). A success is
  /// remembered under `generation`, the module reload count read before the authenticator
  /// was asked.
  void authenticated(const api::HttpRequest& request, const v1::scheduler::Call& call,
                     api::AuthenticationResult result, uint64_t generation,
                     std::shared_ptr<net::HttpStream> stream);
  /// The module reload count now (MasterServices::moduleReloads; 0 without one).
  uint64_t moduleReloads() const { return services.moduleReloads ? services.moduleReloads() : 0; }
  /// Basic credentials the authenticator accepted lately (strand only).
  AuthenticationCache authentications;
  /// Runs a parsed call; `principal`: who the authenticator says sent it (none: unauthenticated).
  void dispatchCall(const api::HttpRequest& request, const v1::scheduler::Call& call,
                    const std::optional<std::string>& principal,
                    std::shared_ptr<net::HttpStream> stream);
  void subscribe(const v1::scheduler::Call& call, const std::optional<std::string>& principal,
                 std::shared_ptr<net::HttpStream> stream);
  void frameworkDisconnected(const std::string& frameworkId, const std::string& streamId);
  void removeFramework(const std::string& frameworkId);
  /// Removes the framework after `timeout` unless it is connected by then.
  void armFailoverTimer(FrameworkEntry& framework, runtime::Duration timeout);
  void sendEvent(FrameworkEntry& framework, const v1::scheduler::Event& event);
  void sendUpdate(const std::string& frameworkId, const v1::TaskStatus& status);
  void heartbeat(const std::string& frameworkId);
  /// ACCEPT: validates and uses up the offers, applies the operations in order, gives what is
  /// left back to the allocator with the call's refuse filter. `view`: the same call read by
  /// readAcceptedOperations(), for the operation kinds the v1 protos do not hold. Errors:
  /// Unimplemented, with nothing done, for an operation the v1 protos do not hold (CREATE,
  /// DESTROY, ...).
  api::Status accept(FrameworkEntry& framework, const v1::scheduler::Call::Accept& accept,
                     const internal::AcceptedOperations& view);
  /// The ACCEPT call `body` read for its operations' kind names; empty
  /// when every operation of `call` has a v1 kind (no second parse) or the body cannot be read so.
  static internal::AcceptedOperations readAcceptedOperations(
      const v1::scheduler::Call::Accept& call, std::string_view body);
  /// The offers an ACCEPT names, taken out of `offers` (they are used up even when invalid).
  struct TakenOffers {
    std::string agentId;  ///< the agent of the (first valid) offer
    std::string role;     ///< the role the offers were made to
    api::Resources offered;
    std::map<std::string, api::Resources> offeredByAgent;
    std::string invalid;  ///< why the offers cannot be used; empty when they can
  };
  TakenOffers takeOffers(const FrameworkEntry& framework, const v1::scheduler::Call::Accept& call);
  /// Offers not usable: their resources go back, the launches get TASK_LOST / TASK_DROPPED.
  void refuseAcceptance(const FrameworkEntry& framework, const v1::scheduler::Call::Accept& call,
                        const TakenOffers& taken);
  /// Why a LAUNCH_GROUP cannot be carried out from what is left of the offers (Mesos's task
  /// group rules, task_group_validation.cc); empty when it can.
  std::string validateTaskGroup(const Acceptance& acceptance,
                                const v1::Offer::Operation::LaunchGroup& launchGroup) const;
  /// LAUNCH_GROUP: validated as a whole (an invalid group's tasks all get TASK_ERROR with
  /// REASON_TASK_GROUP_INVALID), then its tasks are tracked as launched ones and sent to the
  /// agent in one RunTaskGroup.
  void launchGroup(const FrameworkEntry& framework, Acceptance& acceptance,
                   const v1::Offer::Operation::LaunchGroup& launchGroup);
  /// Why `task` cannot be launched from what is left of the offers; empty when it can.
  std::string validateTask(const Acceptance& acceptance, const v1::TaskInfo& task,
                           const api::Result<api::Resources>& resources) const;
  void launchTasks(const FrameworkEntry& framework, Acceptance& acceptance,
                   const v1::Offer::Operation::Launch& launch);
  /// Carries out the operations from `pending->next` on, in order; a reservation waits for its
  /// registry write and goes on from there. Gives what is left back at the end.
  void applyOperations(std::shared_ptr<PendingAccept> pending);
  /// The allocator's form of a RESERVE / UNRESERVE on what is left of the offers; none (logged)
  /// if it is invalid or not on offered resources.
  std::optional<api::ReservationOperation> reservationChange(
      const FrameworkEntry& framework, const Acceptance& acceptance,
      const v1::Offer::Operation& operation) const;
  /// Writes the agent's reservations changed by `change` to the registry, then applies them
  /// (the offers' remainder, the agent's total, the allocator) and goes on with `pending`.
  void reserve(std::shared_ptr<PendingAccept> pending, api::ReservationOperation change);
  /// Sets the agent's dynamic reservations, and its total from what it reports with them.
  void applyReservations(AgentEntry& agent, const api::Resources& reserved);
  /// Sends the agent all its applied dynamic reservations (CheckpointResources) to checkpoint;
  /// nothing while it is disconnected (it gets them when it comes back).
  void sendCheckpointedResources(const AgentEntry& agent);
  /// Gives what no operation used back to the allocator.
  void finishAcceptance(const Acceptance& acceptance);
  void decline(FrameworkEntry& framework, const v1::scheduler::Call::Decline& decline);
  void kill(FrameworkEntry& framework, const v1::scheduler::Call::Kill& kill);
  void acknowledge(FrameworkEntry& framework, const v1::scheduler::Call::Acknowledge& ack);
  void reconcile(FrameworkEntry& framework, const v1::scheduler::Call::Reconcile& reconcile);
  /// RECONCILE's answers go out kReconcileBatch at a time, the next batch once the stream has
  /// sent the last (whenStreamSent), so a large reconciliation costs one batch of memory
  /// whatever the scheduler's pace. Each continues only on the stream `streamId` it began on.
  /// Implicit: the framework's tasks after `after` (from the first when nullopt).
  void reconcileAll(const std::string& frameworkId, const std::string& streamId,
                    std::optional<TaskKey> after);
  /// Explicit: `call`'s tasks from index `from`.
  void reconcileListed(const std::string& frameworkId, const std::string& streamId,
                       std::shared_ptr<const v1::scheduler::Call::Reconcile> call, int from);
  /// The framework connected on `streamId`, if it still is; nullptr otherwise.
  FrameworkEntry* connectedOn(const std::string& frameworkId, const std::string& streamId);
  /// Runs `next` on the strand once `framework`'s event stream has sent all written so far;
  /// never if the stream closes first.
  void whenStreamSent(FrameworkEntry& framework, std::function<void(Core&)> next);
  v1::TaskStatus reconciledStatus(const TaskEntry& task) const;
  void message(FrameworkEntry& framework, const v1::scheduler::Call::Message& message);
  v1::TaskStatus masterStatus(const std::string& taskId, const std::string& agentId,
                              v1::TaskState state, v1::TaskStatus::Reason reason,
                              const std::string& text) const;
  void completeTask(const TaskKey& key);

  // --- endpoints (master_http.cc) -------------------------------------------------------
  std::string stateJson(bool summary) const;
  std::string tasksJson() const;
  std::string frameworksJson() const;
  std::string agentsJson() const;
  void operatorCall(const api::HttpRequest& request, api::HttpResponder respond);
  std::string pid() const;

  // --- POST /master/teardown (teardown.cc) ---------------------------------------------------
  api::Status addTeardownRoutes();
  /// Removes the framework the body names (`frameworkId=`, form or JSON) once
  /// TEARDOWN_FRAMEWORK allows the caller on its principal: 200, 400, 403.
  void teardown(const api::HttpRequest& request, api::HttpResponder respond);

  // --- role policy (policy.cc) ----------------------------------------------------------
  api::Status addPolicyRoutes();
  /// Runs `change` once the changes queued before it have called their `next`.
  void policyChange(std::function<void(std::function<void()> next)> change);
  void runPolicyChange();
  void putWeights(const api::HttpRequest& request, api::HttpResponder respond);
  void postQuota(const api::HttpRequest& request, api::HttpResponder respond);
  /// `principal`: who asks (UPDATE_QUOTA is authorized for it).
  void deleteQuota(std::string role, api::HttpResponder respond,
                   std::optional<std::string> principal = std::nullopt);
  // The changes once authorized.
  void applyWeights(std::map<std::string, double> update, api::HttpResponder respond);
  void applyQuota(std::pair<std::string, api::Resources> quota, api::HttpResponder respond);
  void removeQuota(std::string role, api::HttpResponder respond);
};

/// The entries of `resources` with a dynamic reservation in their stack.
api::Resources dynamicallyReserved(const api::Resources& resources);
/// `resources` with the dynamic reservations popped off the top of every stack: what the
/// resources were before they were reserved (what an agent reports).
api::Resources withoutDynamicReservations(const api::Resources& resources);

/// Seconds since the epoch, as Mesos's timestamps (the one clock helper, in the module API).
using api::nowSeconds;
/// TASK_FINISHED, TASK_FAILED, ... (Mesos's protobuf::isTerminalState).
using api::isTerminal;

}  // namespace tessera::kernel::master

#pragma once

/// The agent's implementation object, shared (through weak references) with every callback that
/// may outlive the Agent. One concern per .cc file:
///
///   agent_core.cc      start/stop, the state store, gauges
///   recovery.cc        reading the checkpoints, installing what they hold
///   master_link.cc     finding the master, the transport connection, (re)registration
///   tasks.cc           launching, watching, killing tasks; framework shutdown; reconciliation
///   status_updates.cc  the status-update manager: checkpoint, send, retry, acknowledge, forget
///   agent_http.cc      the routes, /state, /files/debug, /monitor/statistics
///   agent_gc.cc        sandbox garbage collection: scheduling, checkpointing, live checks
///   task_phase.h/.cc   a task's phases and the master connection's states, with their
///                      transitions
///   agent_util.h/.cc   small shared helpers (ids, keys, the container checkpoint's JSON)
///
/// Threading: everything below runs on `strand_` unless said otherwise; start() and stop() run
/// on the control thread, and start() does its blocking work before the strand has any.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/agent/agent.h"
#include "kernel/agent/agent_util.h"
#include "kernel/agent/fetcher.h"
#include "kernel/agent/gc.h"
#include "kernel/agent/health_checker.h"
#include "kernel/agent/task_phase.h"
#include "kernel/http/json_writer.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/logging.h"
#include "tessera/api/duration.h"
#include "tessera/api/resources.h"

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

/// Everything the agent owns.
class AgentCore : public std::enable_shared_from_this<AgentCore> {
 public:
  /// One status update of a task, checkpointed at `key`, until the master acknowledges it.
  struct Pending {
    std::string key;  ///< its checkpoint: "<task key>updates/<seq, 20 digits>"
    internal::StatusUpdate update;
    bool durable = false;  ///< its checkpoint is written: only then may it be sent
  };

  /// A task the agent runs (or ran and still has unacknowledged updates for).
  struct Task {
    /// `initial`: kStaging (a new task) or kRecovering (read from a checkpoint).
    explicit Task(TaskPhase initial);

    /// Where the task is in its life (task_phase.h); only transition() changes it.
    TaskPhase phase() const { return phase_; }
    /// Moves to `to`; crashes when task_phase.h does not allow it.
    void transition(TaskPhase to);
    /// Records a kill; a framework shutdown is never downgraded to a plain kill.
    void requestKill(TaskKill why) { kill = std::max(kill, why); }
    bool killRequested() const { return kill != TaskKill::kNone; }
    bool frameworkGone() const { return kill == TaskKill::kFrameworkShutdown; }

    internal::Task record;  ///< checkpointed at `key + "task"`; its state is the latest update's
    std::string frameworkId;
    std::string taskId;
    std::string key;             ///< "<root>tasks/<fw>/<task>/"
    std::string sandbox;         ///< the container's sandbox directory
    std::optional<size_t> slot;  ///< its containerizer, once chosen (or recovered)
    std::optional<api::ContainerCheckpoint> container;  ///< once launched, checkpointed as JSON
    /// A termination that came while kCheckpointing, handled once the checkpoint is written.
    std::optional<api::Result<api::ContainerTermination>> endedEarly;
    TaskKill kill = TaskKill::kNone;             ///< only grows, through requestKill()
    std::optional<runtime::Duration> killGrace;  ///< the kill's grace period, if it named one
    std::deque<Pending> updates;  ///< oldest first; the head is the one sent and retried
    uint64_t nextSeq = 1;         ///< sequence number of the next update's checkpoint
    std::unique_ptr<api::TimerHandle> retry;  ///< resends the head until acknowledged
    runtime::Duration backoff{};              ///< the head's next retry interval
    std::vector<std::pair<v1::TaskState, double>> statuses;  ///< for /state: state, timestamp
    /// Set when its health check failed too often and killed it: the terminal update's message.
    std::optional<std::string> healthKill;
    /// The fetcher: the fetch of its URIs while kLaunching; a kill cancels it.
    std::shared_ptr<FetchHandle> fetch;
    /// A task of a task group: its executor's id (the group's key with frameworkId); its
    /// container is nested in the group's executor container. Empty for a lone task.
    std::string group;

   private:
    TaskPhase phase_;
  };
  using TaskPtr = std::shared_ptr<Task>;
  using TaskKey = std::pair<std::string, std::string>;  ///< framework id, task id

  /// A task group's executor (Mesos's DEFAULT executor, played by the agent itself): one
  /// container holding the group's limits, in which every task runs as a nested container.
  struct Group {
    std::string frameworkId;
    std::string executorId;
    std::string containerId;
    std::string sandbox;  ///< the executor's; each task's is `<sandbox>/tasks/<task id>`
    v1::ExecutorInfo executor;
    std::vector<std::string> taskIds;
    std::shared_ptr<api::ContainerConfig> config;  ///< the executor container's
    std::optional<size_t> slot;
    /// "<root>groups/<fw>/<executor>/": its ExecutorInfo at "executor", and once launched its
    /// container's checkpoint at "container", so a restarted agent recovers the group.
    std::string key;
    /// The executor container's checkpoint, once launched (or as recovered).
    std::optional<api::ContainerCheckpoint> container;
    bool launched = false;
    bool killing = false;    ///< the default executor's policy fired: the rest are killed
    bool destroyed = false;  ///< every task ended: the executor container is destroyed
  };
  using GroupPtr = std::shared_ptr<Group>;

  /// Values the metrics registry's gauges read from any thread, until stop() removes them.
  struct Gauges {
    std::atomic<double> registered{0};
    std::atomic<double> staging{0};
    std::atomic<double> starting{0};
    std::atomic<double> running{0};
    std::atomic<double> executorsRunning{0};
  };

  AgentCore(AgentServices services, AgentOptions options);

  /// Agent::start(), on the control thread.
  api::Status start();
  /// Agent::stop(), on the control thread. Idempotent.
  void stop();
  /// The leading master changed (Agent::masterChanged): reconnect now. Thread-safe.
  void reconnectNow();
  /// The agent id once registered, else empty. Thread-safe.
  std::string id() const;

 private:
  // ---- state store (agent_core.cc) ----------------------------------------------------------
  // Writes `key` at the version we last saw; `then` runs on the strand whether it worked or
  // not (without a working store updates would never be sent at all).
  void storeSet(const std::string& key, std::string value, std::function<void()> then = {});
  void storeRemove(const std::string& key);
  // Blocking variants, for start() only (the store answers on the still idle strand).
  api::Result<std::optional<api::StateEntry>> syncGet(const std::string& key);
  api::Result<std::vector<std::string>> syncChildren(const std::string& prefix);
  api::Status syncRemove(const std::string& key, uint64_t version);
  // Count the store calls in flight: stop() waits for them (their replies name our strand).
  void storeStarted();
  void storeFinished();

  // ---- containerizers (this header) ---------------------------------------------------------
  // Calls a containerizer on its executor; `then` runs on our strand unless we stopped.
  template <typename T>
  void onContainerizer(size_t slot,
                       std::function<void(api::Containerizer&, std::function<void(T)>)> call,
                       std::function<void(AgentCore&, T)> then);
  // Blocking variant, for start() only; nullopt after kSyncTimeout.
  template <typename T>
  std::optional<T> syncContainerizer(
      size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call);

  // ---- master connection (master_link.cc) ---------------------------------------------------
  void connect();
  void onDiscovered(uint64_t generation, api::Result<uint16_t> port);
  void scheduleReconnect();
  void teardownClient();
  void onConnected(uint64_t generation);
  /// Sends RegisterAgent or ReregisterAgent (after authentication, when the agent has a
  /// credential).
  void sendRegistration();
  /// Answers the master's challenge with the authenticatee's response.
  void answerChallenge(const internal::AuthenticationChallenge& challenge);
  void onClosed(uint64_t generation, const api::Status& reason);
  void onEnvelope(uint64_t generation, const internal::Envelope& envelope);
  void onRegistered(const internal::AgentRegistered& registered);
  // CheckpointResources: writes the reservations to "<root>resources", then applies them.
  void checkpointResources(const internal::CheckpointResources& message);
  bool send(const internal::Envelope& envelope);
  // Moves the connection to `to`; crashes when task_phase.h does not allow it.
  void setLink(LinkState to);

  // ---- tasks (tasks.cc) ---------------------------------------------------------------------
  void runTask(const internal::RunTask& message);
  void chooseContainerizer(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                           size_t index);
  void launch(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
              size_t slot);
  void onLaunched(const TaskPtr& task, api::Result<api::ContainerCheckpoint> result);
  void watch(const TaskPtr& task);
  void onTerminated(const TaskPtr& task, api::Result<api::ContainerTermination> result);
  void killTask(const internal::KillTask& message);
  void destroy(const TaskPtr& task);
  void shutdownFramework(const std::string& frameworkId);
  void reconcile(const internal::ReconcileTasks& message);
  void checkpointTask(const TaskPtr& task);
  TaskPtr findTask(const std::string& frameworkId, const std::string& taskId) const;
  // Health checks (tasks.cc, health_checker.h): started when a task with a health_check runs
  // (or is recovered running), stopped when it is killed or ends.
  void startHealthCheck(const TaskPtr& task);
  void stopHealthCheck(const TaskPtr& task);
  void onHealthChanged(const TaskKey& key, bool healthy, const std::string& message);
  void onHealthFailed(const TaskKey& key, const std::string& message);
  // runTask()'s steps: the task's record, checkpointed (kStaging); its sandbox (false: the
  // task failed); what its containerizer is asked to launch.
  TaskPtr stageTask(const internal::RunTask& message);
  bool makeSandbox(const TaskPtr& task);
  std::shared_ptr<api::ContainerConfig> containerConfig(const Task& task,
                                                        const internal::RunTask& message) const;

  // ---- task groups (task_groups.cc) ---------------------------------------------------------
  // RunTaskGroup: stages every task (kLaunching, each with its sandbox under the executor's),
  // launches the executor container with the sum of the resources, then each task's nested
  // container through the normal path (fetch, containerizer, checkpoint, watch).
  void runTaskGroup(const internal::RunTaskGroup& message);
  void launchExecutor(const GroupPtr& group, size_t index);
  void onExecutorLaunched(const GroupPtr& group, api::Result<api::ContainerCheckpoint> result);
  // The executor container's checkpoint is written: the tasks go on to their nested containers.
  void onExecutorCheckpointed(const GroupPtr& group);
  // A task of a group reached a terminal update or was forgotten: the default executor's policy
  // (a failed or killed task kills the others), and the executor container's end once every
  // task has ended.
  void groupTaskEnded(const std::string& frameworkId, const std::string& executorId,
                      v1::TaskState state);
  GroupPtr findGroup(const std::string& frameworkId, const std::string& executorId) const;
  // The group is gone for good: its map entry and its checkpoints.
  void eraseGroup(const GroupPtr& group);

  // ---- the fetcher (agent_fetch.cc) ---------------------------------------------------------
  // start()'s step after describeAgent(): the cache directory and the fetcher's threads.
  api::Status startFetcher();
  // Fetches the task's URIs (kLaunching, before TASK_STARTING); false when it has none.
  // onFetched() then goes on as runTask() would have: TASK_STARTING, chooseContainerizer().
  bool fetchUris(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config);
  void onFetched(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                 const api::Status& status);

  // ---- status-update manager (status_updates.cc) --------------------------------------------
  void enqueueUpdate(const TaskPtr& task, v1::TaskState state, std::string message,
                     std::optional<v1::TaskStatus::Reason> reason,
                     v1::TaskStatus::Source source = v1::TaskStatus::SOURCE_EXECUTOR,
                     std::optional<bool> healthy = std::nullopt);
  void sendUnreliable(const std::string& frameworkId, const std::string& taskId,
                      v1::TaskState state, std::string message, v1::TaskStatus::Reason reason);
  void sendHead(const TaskPtr& task);
  void armRetry(const TaskPtr& task);
  void onAcknowledgement(const internal::StatusUpdateAcknowledgement& ack);
  void dropUpdates(const TaskPtr& task);
  void forget(const TaskPtr& task);

  // ---- gauges (agent_core.cc) ---------------------------------------------------------------
  void refreshGauges();

  // ---- recovery (recovery.cc) ---------------------------------------------------------------
  // What the previous agent on this work dir left, as read by start().
  struct Recovered {
    std::string infoValue;  // the agent id, if it had registered
    std::map<std::string, v1::FrameworkInfo> frameworks;
    std::vector<TaskPtr> tasks;
    api::Resources reservations;   // the dynamic reservations the master sent last
    std::vector<GcEntry> gc;       // sandboxes scheduled for removal (agent_gc.cc)
    std::vector<GroupPtr> groups;  // task groups' executors (task_groups.cc)
  };
  api::Status readCheckpoints(Recovered& recovered);
  // readCheckpoints()'s steps. readTask: nullptr when its record is missing or bad.
  api::Status readFrameworks(Recovered& recovered);
  api::Result<TaskPtr> readTask(const std::string& key);
  api::Status readUpdates(Task& task, const std::vector<std::string>& sequence);
  void install(Recovered recovered,
               const std::map<std::string, api::RecoveredContainer>& containers);
  void recoveredTermination(const TaskPtr& task, const api::ContainerTermination& termination);
  // Task groups (task_groups.cc): readCheckpoints()'s step, the groups under "<root>groups/"; and
  // install()'s, before the tasks: a group whose executor container still runs is the group
  // again, with its recovered tasks; the tasks of one whose executor is gone end TASK_FAILED.
  api::Status readGroups(Recovered& recovered);
  void installGroups(Recovered& recovered,
                     const std::map<std::string, api::RecoveredContainer>& containers);
  // Sets resources_ to info_'s resources with the dynamic reservations `reserved` applied (those
  // that fit), and reservations_ to those applied.
  void applyReservations(const api::Resources& reserved);

  // ---- start()'s steps, in order (agent_core.cc; control thread) ----------------------------
  api::Status checkStartArguments();  // the services and the flags; --master parsed
  api::Status describeAgent();        // the work dir, resources and attributes, into info_
  void addCounters();
  api::ContainerizerSettings containerizerSettings(size_t slot) const;
  api::Status initializeContainerizers();
  // Asks each containerizer for its checkpointed containers (setting the tasks' slots).
  api::Result<std::map<std::string, api::RecoveredContainer>> recoverContainers(
      const Recovered& recovered);
  // --recover=cleanup: destroys the live containers and removes every checkpoint read.
  void startOver(const Recovered& recovered,
                 const std::map<std::string, api::RecoveredContainer>& containers);
  void addGauges();

  // ---- HTTP (agent_http.cc) -----------------------------------------------------------------
  api::Status addRoutes();
  std::string stateJson() const;
  // A framework object of /state, and an executor object (the task's command executor; a
  // completed one has the task under completed_tasks).
  void writeFramework(http::JsonWriter& w, const std::string& id,
                      const v1::FrameworkInfo& info) const;
  void writeExecutor(http::JsonWriter& w, const Task& task, bool completed) const;
  void monitorStatistics(api::HttpResponder respond);
  // The user whose sandbox `path` (as /files' `path=`) is in: the command user of the task
  // whose executor directory it is under, else its framework's user; nullopt when it names no
  // known framework's sandbox (ACCESS_SANDBOX is then asked with no object, Mesos's ANY).
  std::optional<std::string> sandboxUser(std::string_view path) const;
  // With an authorizer: asks ACCESS_SANDBOX for the request's principal and the sandbox's
  // user, then runs `proceed` on the strand, or `refuse` (from any thread) with a 403 or a 503
  // when the agent stopped meanwhile. Without one: `proceed` at once.
  void authorizeSandbox(const api::HttpRequest& request,
                        std::function<void(api::HttpResponse)> refuse,
                        std::function<void(AgentCore&)> proceed);
  std::string debugJson() const;

  // ---- sandbox garbage collection (agent_gc.cc) ---------------------------------------------
  // start(): the collector and its metrics, before install() restores the schedule.
  void startGc();
  // Schedules a task's sandbox for removal: its container ended (kTerminated). Idempotent.
  void collectSandbox(const TaskPtr& task);
  // readCheckpoints()'s step: the schedule under "<root>gc/".
  api::Status readGc(Recovered& recovered);
  bool sandboxLive(const std::string& path) const;
  void onSandboxCollected(const GcEntry& entry, const api::Status& result);
  void writeGc(http::JsonWriter& w) const;  // /state's "gc"

  std::string pid() const;  // "slave(1)@ip:port", as Mesos names an agent
  fs::path sandboxRoot() const { return workDir_ / "slaves"; }

  // ---- set at construction / start(), read-only afterwards ----------------------------------
  AgentServices services_;
  AgentOptions options_;
  std::shared_ptr<runtime::StrandExecutor> strand_;  // shared: blocking work keeps it alive
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<Gauges> gauges_;  // shared with the metrics registry's readers
  std::string root_;                // the state-store prefix, "/.../" (options_.stateRoot)
  fs::path workDir_;
  bool started_ = false;  // control thread only

  // ---- the public id (any thread, under idMutex_) -------------------------------------------
  mutable std::mutex idMutex_;
  std::string publicId_;

  // ---- store calls in flight (any thread, under storeMutex_) --------------------------------
  std::mutex storeMutex_;
  std::condition_variable storeIdle_;
  size_t storePending_ = 0;

  // ---- strand only (or start() before the strand has work) ----------------------------------
  bool stopped_ = false;
  v1::AgentInfo info_;  // what registration sends; its id once registered
  // The agent's total: info_'s resources (as flags and probing give them) with reservations_.
  api::Resources resources_;
  // The dynamic reservations the master sent (checkpointed at "<root>resources"), reported on
  // re-registration.
  api::Resources reservations_;
  std::map<std::string, uint64_t> versions_;  // state-store key -> the version we wrote last
  // The master connection: where the master is, the transport client, and which connection
  // attempt callbacks belong to (`generation_`: callbacks of older attempts are dropped).
  std::string masterHost_;
  uint16_t masterPort_ = 0;
  net::TransportClientOptions clientOptions_;
  std::unique_ptr<net::TransportClient> client_;
  uint64_t generation_ = 0;
  int attempt_ = 0;  // failed attempts since the last registration, for the backoff
  LinkState link_ = LinkState::kDisconnected;  // only setLink() changes it
  std::unique_ptr<api::TimerHandle> reconnectTimer_;
  std::unique_ptr<api::TimerHandle> watchdog_;  // kConnectWatchdog
  std::string masterHostname_;                  // for /state
  // Frameworks with tasks here (checkpointed under "<root>frameworks/"), and the tasks.
  std::map<std::string, v1::FrameworkInfo> frameworks_;
  std::map<TaskKey, TaskPtr> tasks_;
  std::map<TaskKey, GroupPtr> groups_;  ///< by framework id, executor id
  // A group's staged tasks and their configs, while its executor container launches.
  std::map<TaskKey, std::vector<std::pair<TaskPtr, std::shared_ptr<api::ContainerConfig>>>>
      pendingGroupLaunches_;
  // Forgotten tasks' executors and frameworks, for /state's completed_* lists.
  struct CompletedExecutor {
    std::string frameworkId;
    TaskPtr task;  // as it was when forgotten
  };
  std::deque<CompletedExecutor> completed_;
  std::map<std::string, v1::FrameworkInfo> completedFrameworks_;
  double startTime_ = api::nowSeconds();
  // The fetcher: set by start(), stopped by stop(); thread-safe itself.
  std::unique_ptr<Fetcher> fetcher_;
  std::chrono::steady_clock::time_point startedAt_ = std::chrono::steady_clock::now();
  // The tasks' health checks; made by the first task that has one, stopped by stop().
  std::shared_ptr<HealthChecker> healthChecks_;

  // ---- counters (the metrics registry owns them; set by start()) ----------------------------
  api::Counter* finished_ = nullptr;
  api::Counter* failed_ = nullptr;
  api::Counter* killed_ = nullptr;
  api::Counter* lost_ = nullptr;
  api::Counter* recoveryErrors_ = nullptr;
  api::Counter* validUpdates_ = nullptr;
  api::Counter* invalidUpdates_ = nullptr;
  api::Counter* invalidFrameworkMessages_ = nullptr;
  api::Counter* validFrameworkMessages_ = nullptr;  ///< to a task group's (default) executor

  // ---- sandbox garbage collection (strand; set by start()) ----------------------------------
  std::shared_ptr<GarbageCollector> gc_;
};

// ==== containerizer calls =====================================================================

template <typename T>
void AgentCore::onContainerizer(
    size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call,
    std::function<void(AgentCore&, T)> then) {
  const ContainerizerSlot& target = services_.containerizers[slot];
  std::weak_ptr<AgentCore> weak = weak_from_this();
  api::Containerizer* containerizer = target.containerizer;
  target.executor->post([containerizer, call, weak, then] {
    call(*containerizer, [weak, then](T result) {
      auto self = weak.lock();
      if (!self) return;
      self->strand_->post([weak, then, result = std::move(result)]() mutable {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        then(*self, std::move(result));
      });
    });
  });
}

template <typename T>
std::optional<T> AgentCore::syncContainerizer(
    size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call) {
  const ContainerizerSlot& target = services_.containerizers[slot];
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  api::Containerizer* containerizer = target.containerizer;
  target.executor->post([containerizer, call, promise] {
    call(*containerizer, [promise](T result) { promise->set_value(std::move(result)); });
  });
  if (future.wait_for(detail::kSyncTimeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

}  // namespace tessera::kernel::agent

#pragma once

// The Marathon scheduling engine's implementation class (AppScheduler::Impl): private to the
// engine, included only by its .cc files. scheduler.cc has the life, offers, task updates, counts,
// backoff, what the API reads and the events; sched_deployments.cc has the deployments and the
// API's kills.

#include <Poco/JSON/Object.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/sched_placement.h"
#include "modules/framework_marathon/sched_records.h"
#include "modules/framework_marathon/scheduler.h"

namespace tessera::modules::marathon {

class AppScheduler::Impl {
 public:
  Impl(api::Context& context, Options options)
      : context_(context), options_(std::move(options)), life_(std::make_shared<int>(0)) {}

  ~Impl() { cancelTimers(); }

  // --- life ---

  void start(api::SchedulerDriver& driver, std::vector<App> apps,
             std::vector<Deployment> deployments);
  void stop();
  void subscribed();
  void finishReconciliation();
  void disconnected();

  // --- offers ---

  void offers(std::vector<v1::Offer> offers);
  void launchOn(const v1::Offer& offer);

  // The master refused the launch: the tasks never existed.
  void acceptFailed(const std::vector<std::string>& launched, const api::Status& status);

  // --- task updates ---

  void update(const v1::TaskStatus& status);
  void handleUpdate(const v1::TaskStatus& status);

  // A task this engine did not launch: a predecessor's (adopted when its app is known), or a
  // stray one (killed).
  void adoptOrKill(const v1::TaskStatus& status);
  void healthChanged(sched::TaskRecord& record, bool healthy, const std::string& message);
  void failure(const v1::AgentID& agentId);

  // --- the counts ---

  // What the app needs now, given its live tasks; see design.md for the rolling-restart rule.
  sched::Plan planFor(const sched::AppState& state) const;

  // The records of an app's tasks, by task id.
  std::vector<const sched::TaskRecord*> tasksOf(const std::string& appId) const;
  void addTask(sched::TaskRecord record);
  void account(const sched::TaskRecord& record, int sign);
  void tally(const sched::TaskRecord& record) { account(record, +1); }
  void untally(const sched::TaskRecord& record) { account(record, -1); }

  const sched::AppTally* tallyOf(const std::string& appId) const;
  void eraseTask(const std::string& taskId);

  // Applies every app's kills (never while reconciling: the engine does not know every task
  // yet) and tracks how long apps wait for offers.
  void converge(std::optional<std::string> only = std::nullopt);
  void killTask(const std::string& taskId);
  void forgetIfRemoved(const std::string& appId);

  // --- backoff ---

  void delay(sched::AppState& state);

  // Resets the backoff of apps with a task of their current version up long enough.
  void refreshBackoffs();
  bool delayed(const sched::AppState& state, Clock::time_point now) const;
  bool launchableNow(const sched::AppState& state, Clock::time_point now) const;

  // Marks an app whose plan may have changed (its tasks, definition or removal): the offer
  // interest re-plans only those, and deployments are checked only when one of theirs changed.
  void touch(const std::string& appId);
  void lock(const Deployment& deployment, int sign);

  // Re-plans the changed apps: waiting_ holds exactly the apps with tasks to launch.
  void refreshWaiting();
  bool anyWaiting();
  bool anyLaunchable();

  // Suppresses offers when nothing waits; revives when something starts waiting.
  void updateOfferInterest();
  bool othersWant() const { return options_.othersWantOffers && options_.othersWantOffers(); }

  std::optional<v1::Filters> refuse(double seconds) const;
  std::vector<const AgentFacts*> placedOf(const std::string& appId) const;

  // --- deployments ---

  api::Result<Deployment> deploy(std::vector<App> apps, std::vector<std::string> removed,
                                 std::vector<std::string> restart, bool force);
  void resetBackoff(sched::AppState& state);
  api::Result<Deployment> cancel(std::string_view deploymentId);
  void cancelDeployment(const std::string& id, bool failed);
  bool actionDone(const DeploymentAction& action) const;
  void advanceDeployments();

  // --- the API's kills ---

  api::Result<std::vector<App>> killTasks(const std::vector<std::string>& taskIds, bool scale,
                                          bool wipe);

  // --- what the API reads ---

  std::vector<Task> tasks(std::optional<std::string_view> appId) const;
  std::optional<TaskFailure> lastTaskFailure(std::string_view appId) const;
  AppCounts counts(std::string_view appId) const;
  std::vector<std::string> deploymentsOf(std::string_view appId) const;
  std::vector<QueueEntry> queue() const;
  bool resetDelay(std::string_view appId);
  std::vector<Deployment> deployments() const { return deployments_; }

  // --- events (built in sched_events.cc) ---

  Poco::JSON::Object::Ptr eventObject(std::string_view type) const;
  void emit(std::string_view type, const Poco::JSON::Object::Ptr& event);
  void emitDeploymentInfo(const Deployment& deployment);
  void emitStatusUpdate(const sched::TaskRecord& record, const v1::TaskStatus& status);
  void emitHealthChanged(const sched::TaskRecord& record, bool healthy);
  void emitFailedHealthCheck(const sched::TaskRecord& record);
  void emitUnhealthyKill(const sched::TaskRecord& record, const std::string& message);

 private:
  void cancelTimers();
  api::Context& context_;
  Options options_;
  api::SchedulerDriver* driver_ = nullptr;
  std::map<std::string, sched::AppState> apps_;
  std::map<std::string, sched::TaskRecord> tasks_;  // by task id (so an app's tasks are adjacent)
  // App id -> its tasks by id (pointers into tasks_, whose nodes never move).
  std::map<std::string, std::map<std::string, sched::TaskRecord*>> byApp_;
  std::map<std::string, sched::AppTally> tallies_;  // app id -> its tasks counted (see AppTally)
  std::map<std::string, AgentFacts> agents_;        // by agent id, from offers
  std::vector<Deployment> deployments_;
  std::map<std::string, TaskFailure, std::less<>> failures_;  // app id -> its last task failure
  std::map<std::string, int> lockedApps_;  // app id -> running deployments touching it
  bool deploymentsToCheck_ = false;        // check every deployment (one came or was restored)
  std::set<std::string> changedLocked_;    // apps in lockedApps_ changed since the last check
  std::set<std::string> changed_;          // apps to re-plan before the next offer decision
  std::set<std::string> waiting_;          // apps with tasks to launch (as of the last re-plan)
  bool reconciling_ = true;
  bool suppressed_ = false;
  bool offersWanted_ = false;
  std::unique_ptr<api::TimerHandle> reconcileTimer_;
  // Completion callbacks and timers hold a weak reference: they do nothing once it is gone.
  std::shared_ptr<int> life_;
};

}  // namespace tessera::modules::marathon

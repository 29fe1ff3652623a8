#include "modules/framework_marathon/scheduler.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "modules/framework_marathon/sched_events.h"
#include "modules/framework_marathon/sched_impl.h"
#include "modules/framework_marathon/sched_placement.h"
#include "modules/framework_marathon/sched_records.h"
#include "modules/framework_marathon/sched_task_builder.h"
#include "tessera/api/task_state.h"

namespace tessera::modules::marathon {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;
using sched::AppState;
using sched::AppTally;
using sched::GenerationTally;
using sched::isLive;
using sched::isRunning;
using sched::isStaged;
using sched::Plan;
using sched::stateName;
using sched::TaskRecord;
using sched_events::actionsJson;
using sched_events::planJson;

}  // namespace

void AppScheduler::Impl::start(api::SchedulerDriver& driver, std::vector<App> apps,
                               std::vector<Deployment> deployments) {
  driver_ = &driver;
  reconciling_ = true;
  for (auto& app : apps) {
    AppState& state = apps_[app.id];
    state.app = std::move(app);
  }
  deployments_ = std::move(deployments);
  for (const auto& deployment : deployments_) lock(deployment, +1);
  for (const auto& [id, state] : apps_) changed_.insert(id);
  deploymentsToCheck_ = true;
}

void AppScheduler::Impl::stop() {
  cancelTimers();
  driver_ = nullptr;
}

void AppScheduler::Impl::subscribed() {
  if (driver_ == nullptr) return;
  reconciling_ = true;
  offersWanted_ = false;
  // Explicitly for the tasks this engine knows (the master answers for those it lost too),
  // implicitly for every task the master knows (a new leader's only way to learn them).
  std::vector<v1::scheduler::Call::Reconcile::Task> known;
  for (const auto& [id, record] : tasks_) known.push_back(reconcileTask(id, record.task.agentId));
  if (!known.empty()) driver_->reconcile(std::move(known), nullptr);
  driver_->reconcile({}, nullptr);
  if (reconcileTimer_) reconcileTimer_->cancel();
  reconcileTimer_ = context_.executor().schedule(options_.reconcileGrace,
                                                 [this, weak = std::weak_ptr<int>(life_)] {
                                                   if (weak.expired()) return;
                                                   finishReconciliation();
                                                 });
}

void AppScheduler::Impl::finishReconciliation() {
  reconciling_ = false;
  converge();
  // Offers declined while reconciling may be filtered: ask again if anything waits.
  if (driver_ != nullptr && anyLaunchable()) {
    driver_->revive({}, nullptr);
    suppressed_ = false;
    offersWanted_ = true;
  }
  updateOfferInterest();
}

void AppScheduler::Impl::disconnected() {
  // Offers are void; answers to reconciliation will be asked again after re-subscribing.
  reconciling_ = true;
}

void AppScheduler::Impl::offers(std::vector<v1::Offer> offers) {
  refreshBackoffs();
  for (const auto& offer : offers) {
    agents_[offer.agent_id().value()] = agentFacts(offer);
    if (driver_ == nullptr) continue;
    if (reconciling_) {
      driver_->decline({offer.id()}, refuse(1.0), nullptr);
      continue;
    }
    launchOn(offer);
  }
  updateOfferInterest();
}

void AppScheduler::Impl::launchOn(const v1::Offer& offer) {
  const AgentFacts& facts = agents_[offer.agent_id().value()];
  OfferPool pool(offer);
  std::vector<v1::TaskInfo> launches;
  const Clock::time_point now = options_.now();
  // Only the apps with tasks to launch (launches below change the set: a copy).
  refreshWaiting();
  const std::vector<std::string> candidates(waiting_.begin(), waiting_.end());
  for (const auto& appId : candidates) {
    AppState& state = apps_.at(appId);
    if (!launchableNow(state, now)) continue;
    const auto roles =
        acceptedRoles(state.app, options_.defaultAcceptedResourceRoles, options_.role);
    for (int wanted = planFor(state).launch; wanted > 0; --wanted) {
      if (!state.app.constraints.empty() &&
          !meetsConstraints(state.app.constraints, facts, placedOf(appId))) {
        break;
      }
      auto match = pool.take(state.app, roles);
      if (!match) break;
      const std::string taskId = newTaskId(appId);
      launches.push_back(buildTaskInfo(state.app, taskId, offer, *match, options_.user));
      TaskRecord record;
      record.task.id = taskId;
      record.task.appId = appId;
      record.task.version = state.app.version;
      record.task.agentId = offer.agent_id().value();
      record.task.host = offer.hostname();
      record.task.ports = match->hostPorts;
      record.task.servicePorts = servicePortsOf(state.app);
      record.task.state = "TASK_STAGING";
      record.task.stagedAt = now;
      record.generation = state.generation;
      addTask(std::move(record));
    }
  }
  if (launches.empty()) {
    driver_->decline({offer.id()},
                     refuse(anyWaiting() || othersWant() ? options_.refuseSecondsBusy
                                                         : options_.refuseSecondsIdle),
                     nullptr);
    return;
  }
  std::vector<std::string> launched;
  v1::Offer::Operation operation;
  operation.set_type(v1::Offer::Operation::LAUNCH);
  for (auto& task : launches) {
    launched.push_back(task.task_id().value());
    *operation.mutable_launch()->add_task_infos() = std::move(task);
  }
  context_.logger().info("launching {} task(s) on agent '{}' ({})", launched.size(),
                         offer.agent_id().value(), offer.hostname());
  driver_->accept({offer.id()}, {std::move(operation)}, refuse(options_.refuseSecondsBusy),
                  [this, weak = std::weak_ptr<int>(life_), launched](api::Status status) {
                    if (weak.expired() || status.isOk()) return;
                    acceptFailed(launched, status);
                  });
}

// The master refused the launch: the tasks never existed.
void AppScheduler::Impl::acceptFailed(const std::vector<std::string>& launched,
                                      const api::Status& status) {
  context_.logger().warning("launching {} task(s) failed: {}", launched.size(), status.message());
  for (const auto& id : launched) {
    auto it = tasks_.find(id);
    if (it != tasks_.end() && !it->second.launchConfirmed) eraseTask(id);
  }
  converge();
  updateOfferInterest();
}

void AppScheduler::Impl::update(const v1::TaskStatus& status) {
  handleUpdate(status);
  if (driver_ != nullptr && status.has_uuid() && !status.uuid().empty()) {
    driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
  }
  refreshBackoffs();
  // Only the task's app can need something new (a stray's app is none).
  if (auto appId = appIdOfTask(status.task_id().value())) converge(*appId);
  advanceDeployments();
  updateOfferInterest();
}

void AppScheduler::Impl::handleUpdate(const v1::TaskStatus& status) {
  const std::string& taskId = status.task_id().value();
  const v1::TaskState state = status.state();
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) {
    if (api::isTerminal(state) || state == v1::TASK_UNKNOWN) return;
    adoptOrKill(status);
    return;
  }
  TaskRecord& record = it->second;
  untally(record);
  record.launchConfirmed = true;
  const std::string previous = record.task.state;
  record.task.state = stateName(state);
  record.state = state;
  if (status.has_agent_id() && !status.agent_id().value().empty()) {
    record.task.agentId = status.agent_id().value();
  }
  if (state == v1::TASK_RUNNING && !record.task.startedAt) record.task.startedAt = options_.now();
  if (status.has_healthy()) healthChanged(record, status.healthy(), status.message());
  tally(record);
  emitStatusUpdate(record, status);

  if (!api::isTerminal(state) && state != v1::TASK_UNKNOWN) return;
  const bool unhealthyKill = !record.killRequested && state == v1::TASK_KILLED &&
                             record.healthy.has_value() && !*record.healthy;
  if (unhealthyKill) emitUnhealthyKill(record, status.message());
  if (!record.killRequested) {
    auto app = apps_.find(record.task.appId);
    if (app != apps_.end() && !app->second.removing) delay(app->second);
    if (state == v1::TASK_FAILED || state == v1::TASK_ERROR || state == v1::TASK_LOST ||
        state == v1::TASK_DROPPED || state == v1::TASK_GONE || state == v1::TASK_GONE_BY_OPERATOR) {
      failures_[record.task.appId] = TaskFailure{
          record.task.appId, record.task.host, status.message(),    record.task.state,
          record.task.id,    options_.now(),   record.task.version, record.task.agentId};
    }
  }
  context_.logger().info("task '{}' is {} (was {}){}", taskId, record.task.state, previous,
                         status.message().empty() ? "" : ": " + status.message());
  const std::string appId = record.task.appId;
  eraseTask(taskId);
  forgetIfRemoved(appId);
}

// A task this engine did not launch: a predecessor's (adopted when its app is known), or a
// stray one (killed).
void AppScheduler::Impl::adoptOrKill(const v1::TaskStatus& status) {
  const std::string& taskId = status.task_id().value();
  const auto appId = appIdOfTask(taskId);
  auto app = appId ? apps_.find(*appId) : apps_.end();
  if (app == apps_.end() || app->second.removing) {
    context_.logger().info("killing task '{}': it belongs to no known app", taskId);
    if (driver_ != nullptr) {
      std::optional<v1::AgentID> agent;
      if (status.has_agent_id()) agent = status.agent_id();
      driver_->kill(status.task_id(), agent, nullptr);
    }
    return;
  }
  TaskRecord record;
  record.task.id = taskId;
  record.task.appId = *appId;
  record.task.version = app->second.app.version;
  record.task.agentId = status.agent_id().value();
  if (auto facts = agents_.find(record.task.agentId); facts != agents_.end()) {
    record.task.host = facts->second.hostname;
  }
  record.task.servicePorts = servicePortsOf(app->second.app);
  record.task.state = stateName(status.state());
  record.state = status.state();
  record.task.stagedAt = options_.now();
  if (status.state() == v1::TASK_RUNNING) record.task.startedAt = options_.now();
  record.generation = app->second.generation;
  record.launchConfirmed = true;
  if (status.has_healthy()) {
    record.healthy = status.healthy();
    HealthResult result;
    result.alive = status.healthy();
    record.task.healthCheckResults = {result};
  }
  context_.logger().info("adopted task '{}' of app '{}' ({})", taskId, *appId, record.task.state);
  addTask(std::move(record));
}

void AppScheduler::Impl::healthChanged(TaskRecord& record, bool healthy,
                                       const std::string& message) {
  const Clock::time_point now = options_.now();
  if (record.task.healthCheckResults.empty()) record.task.healthCheckResults.emplace_back();
  HealthResult& result = record.task.healthCheckResults.front();
  result.alive = healthy;
  if (healthy) {
    result.consecutiveFailures = 0;
    if (!result.firstSuccess) result.firstSuccess = now;
    result.lastSuccess = now;
  } else {
    ++result.consecutiveFailures;
    result.lastFailure = now;
    result.lastFailureCause = message;
  }
  const bool changed = record.healthy != healthy;
  record.healthy = healthy;
  if (!healthy) emitFailedHealthCheck(record);
  if (changed) emitHealthChanged(record, healthy);
}

void AppScheduler::Impl::failure(const v1::AgentID& agentId) {
  // The master reports the agent's tasks as lost or unreachable; nothing to do before that.
  context_.logger().info("agent '{}' was lost", agentId.value());
}

// What the app needs now, given its live tasks; see design.md for the rolling-restart rule.
Plan AppScheduler::Impl::planFor(const AppState& state) const {
  Plan plan;
  const std::string& appId = state.app.id;
  // The common case from the tallies alone: every live task of the current generation and
  // no more of them than wanted (nothing to kill, so nothing to order).
  {
    const AppTally* t = tallyOf(appId);
    const GenerationTally none;
    const GenerationTally* g = &none;
    bool onlyCurrent = true;
    if (t != nullptr && !t->generations.empty()) {
      auto it = t->generations.find(state.generation);
      onlyCurrent = t->generations.size() == 1 && it != t->generations.end();
      if (onlyCurrent) g = &it->second;
    }
    const int current = g->live - g->killed;
    if (state.removing && current == 0 && onlyCurrent) return plan;
    if (!state.removing && onlyCurrent && g->killed == 0 &&
        current <= std::max(0, state.app.instances)) {
      plan.launch = std::max(0, state.app.instances) - current;
      return plan;
    }
  }
  std::vector<const TaskRecord*> current, old;
  int present = 0;   // every task that still holds resources, killed ones included
  int oldDying = 0;  // old tasks killed but not ended yet
  for (const TaskRecord* task : tasksOf(appId)) {
    const TaskRecord& record = *task;
    if (!isLive(record)) continue;
    ++present;
    if (record.killRequested) {
      if (record.generation != state.generation) ++oldDying;
      continue;
    }
    (record.generation == state.generation ? current : old).push_back(&record);
  }
  if (state.removing) {
    for (const auto* record : current) plan.kill.push_back(record->task.id);
    for (const auto* record : old) plan.kill.push_back(record->task.id);
    return plan;
  }
  const int wanted = std::max(0, state.app.instances);
  const bool checked = !state.app.healthChecks.empty();
  auto byKillOrder = [&](std::vector<const TaskRecord*> list) {
    const bool oldestFirst = state.app.killSelection == "OLDEST_FIRST";
    std::stable_sort(list.begin(), list.end(), [&](const TaskRecord* a, const TaskRecord* b) {
      // Tasks not running yet go first: killing them costs nothing that serves.
      if (isRunning(*a) != isRunning(*b)) return !isRunning(*a);
      return oldestFirst ? a->task.stagedAt < b->task.stagedAt
                         : a->task.stagedAt > b->task.stagedAt;
    });
    return list;
  };
  if (old.empty() && oldDying == 0) {
    const int excess = int(current.size()) - wanted;
    auto order = byKillOrder(current);
    for (int i = 0; i < excess; ++i) plan.kill.push_back(order[size_t(i)]->task.id);
    plan.launch = std::max(0, wanted - int(current.size()));
    return plan;
  }
  // Rolling: never fewer than minHealthy ready tasks (old running ones, new running and
  // healthy ones), never more than maxTotal tasks holding resources.
  const double minimum = state.app.upgradeStrategy.minimumHealthCapacity;
  const double over = state.app.upgradeStrategy.maximumOverCapacity;
  const int minHealthy = int(std::ceil(wanted * minimum - 1e-9));
  int maxTotal = int(std::floor(wanted * (1.0 + over) + 1e-9));
  // minimumHealthCapacity 1 with maximumOverCapacity 0 could never move: one extra task
  // is allowed then, as Marathon does.
  if (maxTotal <= minHealthy && wanted > 0) maxTotal = minHealthy + 1;
  auto readyNew = [&](const TaskRecord& r) {
    return isRunning(r) && (!checked || r.healthy.value_or(false));
  };
  auto readyOld = [&](const TaskRecord& r) { return isRunning(r) && r.healthy != false; };
  int ready = 0;
  for (const auto* r : current) ready += readyNew(*r) ? 1 : 0;
  for (const auto* r : old) ready += readyOld(*r) ? 1 : 0;
  // Excess new tasks (after a scale-down during the restart).
  int currentCount = int(current.size());
  if (currentCount > wanted) {
    auto order = byKillOrder(current);
    for (int i = 0; i < currentCount - wanted; ++i) {
      const TaskRecord* r = order[size_t(i)];
      plan.kill.push_back(r->task.id);
      ready -= readyNew(*r) ? 1 : 0;
    }
    currentCount = wanted;
  }
  for (const TaskRecord* r : byKillOrder(old)) {
    const bool counts = readyOld(*r);
    if (counts && ready - 1 < minHealthy) continue;
    plan.kill.push_back(r->task.id);
    if (counts) --ready;
  }
  // Killed tasks hold their resources until they end: they count against maxTotal.
  plan.launch = std::max(0, std::min(wanted - currentCount, maxTotal - present));
  return plan;
}

// The records of an app's tasks, by task id.
std::vector<const TaskRecord*> AppScheduler::Impl::tasksOf(const std::string& appId) const {
  std::vector<const TaskRecord*> out;
  auto records = byApp_.find(appId);
  if (records == byApp_.end()) return out;
  out.reserve(records->second.size());
  for (const auto& [id, record] : records->second) out.push_back(record);
  return out;
}

void AppScheduler::Impl::addTask(TaskRecord record) {
  std::string id = record.task.id;
  std::string appId = record.task.appId;
  auto existing = tasks_.find(id);
  if (existing != tasks_.end()) untally(existing->second);
  TaskRecord& stored = tasks_[id] = std::move(record);
  byApp_[appId][id] = &stored;
  tally(stored);
}

void AppScheduler::Impl::account(const TaskRecord& record, int sign) {
  touch(record.task.appId);
  AppTally& t = tallies_[record.task.appId];
  t.records += sign;
  const bool running = isRunning(record);
  const bool runningHealthy = running && record.healthy == true;
  if (isStaged(record)) t.staged += sign;
  if (running) t.running += sign;
  if (runningHealthy) t.runningHealthy += sign;
  if (record.healthy == false) t.unhealthy += sign;
  if (isLive(record)) {
    t.live += sign;
    GenerationTally& g = t.generations[record.generation];
    g.live += sign;
    if (record.killRequested) g.killed += sign;
    if (running) g.running += sign;
    if (runningHealthy) g.runningHealthy += sign;
    if (g.live == 0) t.generations.erase(record.generation);
  }
  if (t.records == 0) tallies_.erase(record.task.appId);
}

const AppTally* AppScheduler::Impl::tallyOf(const std::string& appId) const {
  auto it = tallies_.find(appId);
  return it == tallies_.end() ? nullptr : &it->second;
}

void AppScheduler::Impl::eraseTask(const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) return;
  auto ids = byApp_.find(it->second.task.appId);
  if (ids != byApp_.end()) {
    ids->second.erase(taskId);  // before the record it points to goes
    if (ids->second.empty()) byApp_.erase(ids);
  }
  untally(it->second);
  tasks_.erase(it);
}

// Applies every app's kills (never while reconciling: the engine does not know every task
// yet) and tracks how long apps wait for offers.
void AppScheduler::Impl::converge(std::optional<std::string> only) {
  if (reconciling_) return;
  const Clock::time_point now = options_.now();
  std::vector<std::string> forget;
  for (auto& [appId, state] : apps_) {
    if (only && appId != *only) continue;
    Plan plan = planFor(state);
    for (const auto& id : plan.kill) killTask(id);
    if (plan.launch > 0) {
      if (!state.waitingSince) state.waitingSince = now;
    } else {
      state.waitingSince.reset();
    }
    if (state.removing) forget.push_back(appId);
  }
  for (const auto& id : forget) forgetIfRemoved(id);
}

void AppScheduler::Impl::killTask(const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) return;
  untally(it->second);
  it->second.killRequested = true;
  tally(it->second);
  if (driver_ == nullptr) return;
  v1::TaskID id;
  id.set_value(taskId);
  std::optional<v1::AgentID> agent;
  if (!it->second.task.agentId.empty()) {
    agent.emplace();
    agent->set_value(it->second.task.agentId);
  }
  driver_->kill(id, agent, nullptr);
}

void AppScheduler::Impl::forgetIfRemoved(const std::string& appId) {
  auto app = apps_.find(appId);
  if (app == apps_.end() || !app->second.removing) return;
  if (byApp_.count(appId)) return;
  apps_.erase(app);
  failures_.erase(appId);
  touch(appId);
  advanceDeployments();
}

void AppScheduler::Impl::delay(AppState& state) {
  const Clock::time_point now = options_.now();
  const double seconds =
      std::min(state.app.maxLaunchDelaySeconds,
               state.app.backoffSeconds * std::pow(state.app.backoffFactor, state.failures));
  ++state.failures;
  state.delayUntil = now + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(std::max(0.0, seconds)));
  if (state.delayTimer) state.delayTimer->cancel();
  const std::string appId = state.app.id;
  state.delayTimer =
      context_.executor().schedule(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::duration<double>(std::max(0.0, seconds))),
                                   [this, weak = std::weak_ptr<int>(life_), appId] {
                                     if (weak.expired()) return;
                                     // The delay is over: offers are wanted again (filters from
                                     // declines are cleared).
                                     offersWanted_ = false;
                                     updateOfferInterest();
                                   });
  context_.logger().info("app '{}': next launch in {:.3f}s (failure {})", state.app.id, seconds,
                         state.failures);
}

// Resets the backoff of apps with a task of their current version up long enough.
void AppScheduler::Impl::refreshBackoffs() {
  const Clock::time_point now = options_.now();
  for (auto& [appId, state] : apps_) {
    if (state.failures == 0) continue;
    for (const TaskRecord* task : tasksOf(appId)) {
      const TaskRecord& record = *task;
      if (record.generation != state.generation) continue;
      if (isRunning(record) && record.task.startedAt &&
          now - *record.task.startedAt >= options_.backoffResetAfter) {
        state.failures = 0;
        break;
      }
    }
  }
}

bool AppScheduler::Impl::delayed(const AppState& state, Clock::time_point now) const {
  return state.delayUntil && now < *state.delayUntil;
}

bool AppScheduler::Impl::launchableNow(const AppState& state, Clock::time_point now) const {
  return !state.removing && !delayed(state, now);
}

// Marks an app whose plan may have changed (its tasks, definition or removal): the offer
// interest re-plans only those, and deployments are checked only when one of theirs changed.
void AppScheduler::Impl::touch(const std::string& appId) {
  changed_.insert(appId);
  if (lockedApps_.count(appId)) changedLocked_.insert(appId);
}

void AppScheduler::Impl::lock(const Deployment& deployment, int sign) {
  for (const auto& id : deployment.affectedApps) {
    if ((lockedApps_[id] += sign) <= 0) lockedApps_.erase(id);
  }
}

// Re-plans the changed apps: waiting_ holds exactly the apps with tasks to launch.
void AppScheduler::Impl::refreshWaiting() {
  for (const auto& id : changed_) {
    auto app = apps_.find(id);
    if (app != apps_.end() && planFor(app->second).launch > 0) {
      waiting_.insert(id);
    } else {
      waiting_.erase(id);
    }
  }
  changed_.clear();
}

bool AppScheduler::Impl::anyWaiting() {
  refreshWaiting();
  return !waiting_.empty();
}

bool AppScheduler::Impl::anyLaunchable() {
  refreshWaiting();
  const Clock::time_point now = options_.now();
  for (const auto& id : waiting_) {
    if (launchableNow(apps_.at(id), now)) return true;
  }
  return false;
}

// Suppresses offers when nothing waits; revives when something starts waiting.
void AppScheduler::Impl::updateOfferInterest() {
  if (driver_ == nullptr || reconciling_) return;
  const bool launchable = anyLaunchable();
  if (launchable && !offersWanted_) {
    driver_->revive({}, nullptr);
    suppressed_ = false;
  }
  offersWanted_ = launchable;
  if (othersWant()) suppressed_ = false;  // the other engine revived
  if (!launchable && !anyWaiting() && !suppressed_ && !othersWant()) {
    driver_->suppress({}, nullptr);
    suppressed_ = true;
  }
}

std::optional<v1::Filters> AppScheduler::Impl::refuse(double seconds) const {
  v1::Filters filters;
  filters.set_refuse_seconds(seconds);
  return filters;
}

std::vector<const AgentFacts*> AppScheduler::Impl::placedOf(const std::string& appId) const {
  std::vector<const AgentFacts*> placed;
  for (const TaskRecord* record : tasksOf(appId)) {
    if (!isLive(*record)) continue;
    auto facts = agents_.find(record->task.agentId);
    placed.push_back(facts == agents_.end() ? nullptr : &facts->second);
  }
  return placed;
}

std::vector<Task> AppScheduler::Impl::tasks(std::optional<std::string_view> appId) const {
  std::vector<Task> out;
  if (appId) {
    for (const TaskRecord* record : tasksOf(std::string(*appId))) out.push_back(record->task);
    return out;
  }
  out.reserve(tasks_.size());
  for (const auto& [id, record] : tasks_) out.push_back(record.task);
  return out;
}

std::optional<TaskFailure> AppScheduler::Impl::lastTaskFailure(std::string_view appId) const {
  auto it = failures_.find(appId);
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

AppCounts AppScheduler::Impl::counts(std::string_view appId) const {
  AppCounts counts;
  auto app = apps_.find(std::string(appId));
  const bool checked = app != apps_.end() && !app->second.app.healthChecks.empty();
  const AppTally* t = tallyOf(std::string(appId));
  if (t == nullptr) return counts;
  counts.staged = t->staged;
  counts.running = t->running;
  if (checked) {
    counts.healthy = t->runningHealthy;
    counts.unhealthy = t->unhealthy;
  }
  return counts;
}

std::vector<std::string> AppScheduler::Impl::deploymentsOf(std::string_view appId) const {
  std::vector<std::string> ids;
  for (const auto& deployment : deployments_) {
    if (std::find(deployment.affectedApps.begin(), deployment.affectedApps.end(), appId) !=
        deployment.affectedApps.end()) {
      ids.push_back(deployment.id);
    }
  }
  return ids;
}

std::vector<QueueEntry> AppScheduler::Impl::queue() const {
  std::vector<QueueEntry> out;
  const Clock::time_point now = options_.now();
  for (const auto& [appId, state] : apps_) {
    if (state.removing) continue;
    const int count = planFor(state).launch;
    if (count <= 0 && !delayed(state, now)) continue;
    QueueEntry entry;
    entry.appId = appId;
    entry.count = std::max(0, count);
    if (delayed(state, now)) {
      entry.delaySecondsLeft =
          int(std::ceil(std::chrono::duration<double>(*state.delayUntil - now).count()));
    }
    entry.since = state.waitingSince.value_or(now);
    entry.overdue = !delayed(state, now) && now - entry.since > std::chrono::seconds(60);
    out.push_back(std::move(entry));
  }
  return out;
}

bool AppScheduler::Impl::resetDelay(std::string_view appId) {
  auto app = apps_.find(std::string(appId));
  if (app == apps_.end() || app->second.removing) return false;
  const bool queued = delayed(app->second, options_.now()) || planFor(app->second).launch > 0;
  if (!queued) return false;
  resetBackoff(app->second);
  offersWanted_ = false;
  updateOfferInterest();
  return true;
}

Object::Ptr AppScheduler::Impl::eventObject(std::string_view type) const {
  return sched_events::event(type, options_.now());
}

void AppScheduler::Impl::emit(std::string_view type, const Object::Ptr& event) {
  if (options_.events) options_.events(type, sched_events::text(event));
}

void AppScheduler::Impl::emitDeploymentInfo(const Deployment& deployment) {
  Object::Ptr event = eventObject("deployment_info");
  event->set("plan", planJson(deployment));
  const std::vector<DeploymentAction> none;
  event->set("currentStep",
             actionsJson(deployment.steps.empty() ? none : deployment.steps.front()));
  emit("deployment_info", event);
}

void AppScheduler::Impl::emitStatusUpdate(const TaskRecord& record, const v1::TaskStatus& status) {
  if (!options_.events) return;
  options_.events("status_update_event",
                  sched_events::statusUpdate(record.task, status.message(), options_.now()));
}

void AppScheduler::Impl::emitHealthChanged(const TaskRecord& record, bool healthy) {
  if (!options_.events) return;
  options_.events("health_status_changed_event",
                  sched_events::healthChanged(record.task, healthy, options_.now()));
}

void AppScheduler::Impl::emitFailedHealthCheck(const TaskRecord& record) {
  if (!options_.events) return;
  auto app = apps_.find(record.task.appId);
  // The check the agent runs (the one whose failure this is).
  const HealthCheck* spec = app != apps_.end() ? app->second.app.agentHealthCheck() : nullptr;
  options_.events("failed_health_check_event",
                  sched_events::failedHealthCheck(record.task, spec, options_.now()));
}

void AppScheduler::Impl::emitUnhealthyKill(const TaskRecord& record, const std::string& message) {
  context_.logger().warning("task '{}' of app '{}' was killed for failing its health check",
                            record.task.id, record.task.appId);
  if (!options_.events) return;
  options_.events("unhealthy_task_kill_event",
                  sched_events::unhealthyKill(record.task, message, options_.now()));
}

void AppScheduler::Impl::cancelTimers() {
  if (reconcileTimer_) reconcileTimer_->cancel();
  for (auto& [id, state] : apps_) {
    if (state.delayTimer) state.delayTimer->cancel();
  }
}

AppScheduler::AppScheduler(api::Context& context, Options options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
AppScheduler::~AppScheduler() = default;

void AppScheduler::start(api::SchedulerDriver& driver, std::vector<App> apps,
                         std::vector<Deployment> deployments) {
  impl_->start(driver, std::move(apps), std::move(deployments));
}
void AppScheduler::stop() { impl_->stop(); }
void AppScheduler::subscribed(const v1::FrameworkID&) { impl_->subscribed(); }
void AppScheduler::offers(std::vector<v1::Offer> offers) { impl_->offers(std::move(offers)); }
void AppScheduler::rescind(const v1::OfferID&) {
  // Offers are answered as they arrive; none is held.
}
void AppScheduler::update(const v1::TaskStatus& status) { impl_->update(status); }
void AppScheduler::failure(const v1::AgentID& agentId) { impl_->failure(agentId); }
void AppScheduler::disconnected() { impl_->disconnected(); }

api::Result<Deployment> AppScheduler::deploy(std::vector<App> apps,
                                             std::vector<std::string> removed,
                                             std::vector<std::string> restart, bool force) {
  return impl_->deploy(std::move(apps), std::move(removed), std::move(restart), force);
}
api::Result<Deployment> AppScheduler::cancel(std::string_view deploymentId) {
  return impl_->cancel(deploymentId);
}
std::vector<Deployment> AppScheduler::deployments() const { return impl_->deployments(); }
api::Result<std::vector<App>> AppScheduler::killTasks(const std::vector<std::string>& taskIds,
                                                      bool scale, bool wipe) {
  return impl_->killTasks(taskIds, scale, wipe);
}
std::vector<Task> AppScheduler::tasks() const { return impl_->tasks(std::nullopt); }
std::vector<Task> AppScheduler::tasks(std::string_view appId) const { return impl_->tasks(appId); }
AppCounts AppScheduler::counts(std::string_view appId) const { return impl_->counts(appId); }
std::optional<TaskFailure> AppScheduler::lastTaskFailure(std::string_view appId) const {
  return impl_->lastTaskFailure(appId);
}
std::vector<std::string> AppScheduler::deploymentsOf(std::string_view appId) const {
  return impl_->deploymentsOf(appId);
}
std::vector<QueueEntry> AppScheduler::queue() const { return impl_->queue(); }
bool AppScheduler::resetDelay(std::string_view appId) { return impl_->resetDelay(appId); }

}  // namespace tessera::modules::marathon

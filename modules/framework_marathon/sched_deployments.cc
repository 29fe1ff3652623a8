// The Marathon engine's deployments (a plan of start, scale, restart and stop steps, advanced as
// the counts reach their targets, cancelled or forced) and the API's kills. Part of
// AppScheduler::Impl (sched_impl.h); the rest is in scheduler.cc.

#include <Poco/JSON/Object.h>

#include <algorithm>
#include <map>
#include <set>

#include "modules/framework_marathon/sched_events.h"
#include "modules/framework_marathon/sched_impl.h"
#include "modules/framework_marathon/sched_records.h"
#include "modules/framework_marathon/sched_task_builder.h"

namespace tessera::modules::marathon {

namespace {

using Poco::JSON::Object;
using sched::AppState;
using sched::AppTally;
using sched::GenerationTally;
using sched_events::actionsJson;
using sched_events::planJson;

}  // namespace

api::Result<Deployment> AppScheduler::Impl::deploy(std::vector<App> apps,
                                                   std::vector<std::string> removed,
                                                   std::vector<std::string> restart, bool force) {
  std::set<std::string> affected;
  for (const auto& app : apps) affected.insert(app.id);
  for (const auto& id : removed) {
    if (!apps_.count(id)) return api::notFound("app '{}' does not exist", id);
    affected.insert(id);
  }
  for (const auto& id : restart) {
    if (!apps_.count(id) &&
        std::none_of(apps.begin(), apps.end(), [&](const App& a) { return a.id == id; })) {
      return api::notFound("app '{}' does not exist", id);
    }
    affected.insert(id);
  }
  std::set<std::string> conflicts;
  for (const auto& running : deployments_) {
    for (const auto& id : running.affectedApps) {
      if (affected.count(id)) conflicts.insert(running.id);
    }
  }
  if (!conflicts.empty() && !force) {
    std::string ids;
    for (const auto& id : conflicts) ids += (ids.empty() ? "'" : ", '") + id + "'";
    return api::failedPrecondition(
        "app is locked by one or more deployments: {}; override with force=true", ids);
  }
  for (const auto& id : conflicts) cancelDeployment(id, /*failed=*/true);

  const Clock::time_point now = options_.now();
  Deployment deployment;
  deployment.id = newTaskId("").substr(1);  // a bare UUID
  deployment.version = now;
  deployment.affectedApps.assign(affected.begin(), affected.end());
  std::vector<DeploymentAction> starts, changes, stops;
  std::set<std::string> restarting(restart.begin(), restart.end());
  for (auto& app : apps) {
    auto known = apps_.find(app.id);
    const bool isNew = known == apps_.end() || known->second.removing;
    if (known != apps_.end()) deployment.original.push_back(known->second.app);
    deployment.target.push_back(app);
    if (isNew) {
      starts.push_back({"StartApplication", app.id});
      changes.push_back({"ScaleApplication", app.id});
      AppState& state = apps_[app.id];
      const bool wasRemoving = state.removing;
      state.app = app;
      state.removing = false;
      if (wasRemoving) ++state.generation;  // the old tasks are being stopped: replace them
      resetBackoff(state);
      continue;
    }
    AppState& state = known->second;
    const bool configChanged = state.app.configDiffers(app) || restarting.count(app.id);
    restarting.erase(app.id);
    if (configChanged) {
      changes.push_back({"RestartApplication", app.id});
      ++state.generation;
      resetBackoff(state);
    } else if (state.app.instances != app.instances) {
      changes.push_back({"ScaleApplication", app.id});
    }
    state.app = std::move(app);
  }
  for (const auto& id : restarting) {
    AppState& state = apps_[id];
    deployment.original.push_back(state.app);
    deployment.target.push_back(state.app);
    changes.push_back({"RestartApplication", id});
    ++state.generation;
    resetBackoff(state);
  }
  for (const auto& id : removed) {
    AppState& state = apps_[id];
    deployment.original.push_back(state.app);
    deployment.removed.push_back(id);
    stops.push_back({"StopApplication", id});
    state.removing = true;
    if (state.delayTimer) state.delayTimer->cancel();
  }
  for (auto* step : {&starts, &changes, &stops}) {
    if (!step->empty()) deployment.steps.push_back(std::move(*step));
  }
  deployment.currentStep = deployment.steps.empty() ? 0 : 1;
  for (const auto& id : deployment.affectedApps) touch(id);
  deployments_.push_back(deployment);
  lock(deployment, +1);
  deploymentsToCheck_ = true;
  emitDeploymentInfo(deployment);
  context_.logger().info("deployment '{}' of {} app(s), {} step(s)", deployment.id,
                         deployment.affectedApps.size(), deployment.steps.size());
  converge();
  advanceDeployments();
  updateOfferInterest();
  return deployment;
}

void AppScheduler::Impl::resetBackoff(AppState& state) {
  state.failures = 0;
  state.delayUntil.reset();
  if (state.delayTimer) state.delayTimer->cancel();
}

api::Result<Deployment> AppScheduler::Impl::cancel(std::string_view deploymentId) {
  auto it = std::find_if(deployments_.begin(), deployments_.end(),
                         [&](const Deployment& d) { return d.id == deploymentId; });
  if (it == deployments_.end()) {
    return api::notFound("deployment '{}' does not exist", deploymentId);
  }
  Deployment stopped = *it;
  cancelDeployment(stopped.id, /*failed=*/true);
  // Stopped where it is: the tasks running now are the app's, whichever version they run;
  // the counts alone decide from here.
  for (const auto& appId : stopped.affectedApps) {
    auto app = apps_.find(appId);
    if (app == apps_.end() || app->second.removing) continue;
    if (auto ids = byApp_.find(appId); ids != byApp_.end()) {
      for (auto& [id, record] : ids->second) {
        untally(*record);
        record->generation = app->second.generation;
        tally(*record);
      }
    }
  }
  converge();
  updateOfferInterest();
  return stopped;
}

void AppScheduler::Impl::cancelDeployment(const std::string& id, bool failed) {
  auto it = std::find_if(deployments_.begin(), deployments_.end(),
                         [&](const Deployment& d) { return d.id == id; });
  if (it == deployments_.end()) return;
  Deployment deployment = std::move(*it);
  deployments_.erase(it);
  lock(deployment, -1);
  if (options_.deploymentEnded) options_.deploymentEnded(deployment.id);
  if (failed) {
    Object::Ptr event = eventObject("deployment_failed");
    event->set("id", deployment.id);
    event->set("plan", planJson(deployment));
    emit("deployment_failed", event);
  }
}

bool AppScheduler::Impl::actionDone(const DeploymentAction& action) const {
  if (action.action == "StartApplication") return true;
  auto app = apps_.find(action.app);
  if (action.action == "StopApplication") return app == apps_.end();
  if (app == apps_.end() || app->second.removing) return false;
  const AppState& state = app->second;
  const bool checked = !state.app.healthChecks.empty();
  const AppTally* t = tallyOf(action.app);
  if (t == nullptr || t->generations.empty()) return state.app.instances == 0;
  // Old tasks still up, or tasks still going away: not done.
  if (t->generations.size() != 1 || t->generations.begin()->first != state.generation) {
    return false;
  }
  const GenerationTally& g = t->generations.begin()->second;
  if (g.killed > 0) return false;
  const int ready = checked ? g.runningHealthy : g.running;
  return g.live == state.app.instances && ready == state.app.instances;
}

void AppScheduler::Impl::advanceDeployments() {
  // Only when an app a deployment touches changed (or a deployment came): O(1) otherwise.
  if (!deploymentsToCheck_ && changedLocked_.empty()) return;
  const bool all = deploymentsToCheck_;
  const std::set<std::string> changed = std::move(changedLocked_);
  changedLocked_.clear();
  deploymentsToCheck_ = false;
  for (size_t i = 0; i < deployments_.size();) {
    Deployment& deployment = deployments_[i];
    if (!all && std::none_of(deployment.affectedApps.begin(), deployment.affectedApps.end(),
                             [&](const std::string& id) { return changed.count(id) > 0; })) {
      ++i;
      continue;
    }
    while (deployment.currentStep >= 1 && deployment.currentStep <= int(deployment.steps.size())) {
      const auto& step = deployment.steps[size_t(deployment.currentStep - 1)];
      if (!std::all_of(step.begin(), step.end(),
                       [&](const DeploymentAction& a) { return actionDone(a); })) {
        break;
      }
      Object::Ptr event = eventObject("deployment_step_success");
      event->set("plan", planJson(deployment));
      event->set("currentStep", actionsJson(step));
      emit("deployment_step_success", event);
      ++deployment.currentStep;
    }
    if (deployment.currentStep > int(deployment.steps.size()) || deployment.steps.empty()) {
      Object::Ptr event = eventObject("deployment_success");
      event->set("id", deployment.id);
      event->set("plan", planJson(deployment));
      context_.logger().info("deployment '{}' succeeded", deployment.id);
      const std::string id = deployment.id;
      lock(deployment, -1);
      deployments_.erase(deployments_.begin() + long(i));
      if (options_.deploymentEnded) options_.deploymentEnded(id);
      emit("deployment_success", event);
      continue;
    }
    ++i;
  }
}

api::Result<std::vector<App>> AppScheduler::Impl::killTasks(const std::vector<std::string>& taskIds,
                                                            bool scale, bool wipe) {
  for (const auto& id : taskIds) {
    if (!tasks_.count(id)) return api::notFound("task '{}' does not exist", id);
  }
  std::map<std::string, int> killedPerApp;
  for (const auto& id : taskIds) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;  // named twice
    const std::string appId = it->second.task.appId;
    if (!it->second.killRequested) ++killedPerApp[appId];
    killTask(id);
    if (wipe) eraseTask(id);
  }
  std::vector<App> changed;
  if (scale) {
    const Clock::time_point now = options_.now();
    for (const auto& [appId, killed] : killedPerApp) {
      auto app = apps_.find(appId);
      if (app == apps_.end()) continue;
      App& definition = app->second.app;
      definition.instances = std::max(0, definition.instances - killed);
      definition.version = now;
      definition.lastScalingAt = now;
      touch(appId);
      changed.push_back(definition);
    }
  }
  converge();
  advanceDeployments();
  updateOfferInterest();
  return changed;
}

}  // namespace tessera::modules::marathon

#pragma once

// The scheduling engine of the Marathon module: keeps each app's `instances` tasks running at its
// current version, places them on offers (resources, host ports, constraints, accepted roles),
// replaces failed, lost and unhealthy tasks with exponential backoff, carries out deployments
// (start, scale, rolling restart respecting upgradeStrategy, stop), and reconciles with the
// master after a (re)subscription or a failover. It knows nothing of HTTP or of the app store:
// the framework glue (marathon_framework.cc) persists app versions and calls in here.
//
// Threading: every method runs on the module's executor (Context::executor()), as do the events
// it emits. It owns no thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "tessera/api/framework.h"
#include "tessera/api/module.h"
#include "tessera/api/status.h"

namespace tessera::modules::marathon {

/// A task's last health-check result (Marathon's `healthCheckResults[]`).
struct HealthResult {
  bool alive = false;
  int consecutiveFailures = 0;
  std::optional<Clock::time_point> firstSuccess;
  std::optional<Clock::time_point> lastSuccess;
  std::optional<Clock::time_point> lastFailure;
  std::string lastFailureCause;
};

/// One task of an app (Marathon's task JSON: `id`, `appId`, `host`, `ports`, `slaveId`,
/// `stagedAt`, `startedAt`, `version`, `state`, `healthCheckResults`, `servicePorts`).
/// Task ids are `<app id without the leading slash, '/' as '_'>.<uuid>` as Marathon's are, so
/// the app is known from the id alone (reconciliation after a failover relies on it).
struct Task {
  std::string id;
  std::string appId;
  Clock::time_point version;  // the app version the task runs
  std::string agentId;
  std::string host;
  std::vector<int> ports;
  std::vector<int> servicePorts;
  std::string state;  // TASK_STAGING, TASK_RUNNING, ... (Mesos's names)
  Clock::time_point stagedAt;
  std::optional<Clock::time_point> startedAt;
  std::vector<HealthResult> healthCheckResults;
};

/// An app's last failed task (Marathon's `lastTaskFailure`): a task that ended TASK_FAILED,
/// TASK_ERROR, TASK_LOST, TASK_DROPPED, TASK_GONE or TASK_GONE_BY_OPERATOR without being killed on
/// purpose.
struct TaskFailure {
  std::string appId;
  std::string host;
  std::string message;
  std::string state;
  std::string taskId;
  Clock::time_point timestamp;
  Clock::time_point version;
  std::string agentId;
};

/// `tasksStaged`, `tasksRunning`, `tasksHealthy`, `tasksUnhealthy` of an app.
struct AppCounts {
  int staged = 0;
  int running = 0;
  int healthy = 0;
  int unhealthy = 0;
};

/// One action of a deployment step: `{"action": "StartApplication", "app": "/x"}`; actions are
/// StartApplication, ScaleApplication, RestartApplication, StopApplication.
struct DeploymentAction {
  std::string action;
  std::string app;
};

/// A deployment (GET /v2/deployments): the plan's steps, where it is, the apps it touches.
/// `original` and `target` keep the app versions before and after, so a rollback (DELETE
/// /v2/deployments/{id}) can deploy `original` again.
struct Deployment {
  std::string id;  // a UUID
  Clock::time_point version;
  std::vector<std::string> affectedApps;
  std::vector<std::vector<DeploymentAction>> steps;
  int currentStep = 0;        // 1-based once started, as Marathon reports it
  std::vector<App> original;  // versions before (absent for apps it creates)
  std::vector<App> target;    // versions after (absent for apps it removes)
  std::vector<std::string> removed;
};

/// An app waiting for offers (GET /v2/queue): how many tasks it still needs, and its launch
/// delay (backoff) if any.
struct QueueEntry {
  std::string appId;
  int count = 0;
  bool overdue = false;
  int delaySecondsLeft = 0;
  Clock::time_point since;
};

/// Receives every event the engine emits as a complete Marathon event object (JSON text with
/// `eventType` and `timestamp`): status_update_event, deployment_info, deployment_success,
/// deployment_failed, deployment_step_success, health_status_changed_event,
/// failed_health_check_event, unhealthy_task_kill_event, ...
using EventSink = std::function<void(std::string_view eventType, std::string json)>;

class AppScheduler {
 public:
  struct Options {
    std::string role = "*";
    std::string user;  // the default user of tasks (an app's `user` overrides it)
    std::vector<std::string> defaultAcceptedResourceRoles;
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
    EventSink events;
    /// Called when a deployment stops running (succeeded, cancelled, or replaced by a forced
    /// one), also for one that ends inside deploy() before it returns.
    std::function<void(const std::string& deploymentId)> deploymentEnded;
    /// True while another engine sharing the framework (the pods') waits for offers: offers
    /// are then neither suppressed nor declined for long.
    std::function<bool()> othersWantOffers;
    /// After subscribed(): how long the engine waits for the master's answers to its implicit
    /// reconciliation before it launches or kills for the counts (a new leader learns the
    /// tasks of its predecessor only from those answers).
    std::chrono::milliseconds reconcileGrace{2000};
    /// A task of an app's current version that has run this long resets the app's launch
    /// backoff.
    std::chrono::seconds backoffResetAfter{30};
    /// How long declined offers are refused: when nothing waits for offers (the engine also
    /// suppresses then), and when something waits but the offer does not fit.
    double refuseSecondsIdle = 120.0;
    double refuseSecondsBusy = 5.0;
  };

  AppScheduler(api::Context& context, Options options);
  ~AppScheduler();
  AppScheduler(const AppScheduler&) = delete;
  AppScheduler& operator=(const AppScheduler&) = delete;

  // --- the framework's life (the glue forwards api::Framework's callbacks) ---

  /// The leader's start: the engine keeps `driver` (valid until stop()) and the apps read from
  /// the store (their current versions). No deployment is made for them: after subscribed() the
  /// engine reconciles and then starts or kills only what the counts need. `deployments` are the
  /// ones a predecessor left running (from the store): they are shown and locked again, and end
  /// (Options::deploymentEnded) when the counts reach their target.
  void start(api::SchedulerDriver& driver, std::vector<App> apps,
             std::vector<Deployment> deployments = {});
  void stop();
  void subscribed(const v1::FrameworkID& frameworkId);
  void offers(std::vector<v1::Offer> offers);
  void rescind(const v1::OfferID& offerId);
  void update(const v1::TaskStatus& status);
  void failure(const v1::AgentID& agentId);
  void disconnected();

  // --- what the REST API asks for ---

  /// Makes `apps` the desired versions (new, changed or scaled apps) and removes `removed` (their
  /// tasks are killed), as one deployment. `restart` names apps whose tasks must all be replaced
  /// even if their config did not change (POST /v2/apps/{id}/restart). When an affected app is
  /// in a running deployment: without `force`, an error whose message names the deployment ids
  /// (the API answers 409); with `force`, those deployments are cancelled first.
  api::Result<Deployment> deploy(std::vector<App> apps, std::vector<std::string> removed,
                                 std::vector<std::string> restart, bool force);

  /// Stops a running deployment where it is (DELETE /v2/deployments/{id}?force=true; the API
  /// deploys `original` again for a rollback). NotFound when unknown.
  api::Result<Deployment> cancel(std::string_view deploymentId);

  std::vector<Deployment> deployments() const;

  /// Kills tasks (DELETE /v2/apps/{id}/tasks, POST /v2/tasks/delete). Without `scale` they are
  /// replaced as any failed task; with `scale` each app's `instances` drops by the tasks killed
  /// and the apps so changed are returned, for the glue to store as new versions. `wipe` also
  /// forgets the tasks at once. NotFound names an unknown task id (nothing is killed then).
  api::Result<std::vector<App>> killTasks(const std::vector<std::string>& taskIds, bool scale,
                                          bool wipe);

  std::vector<Task> tasks() const;
  std::vector<Task> tasks(std::string_view appId) const;
  AppCounts counts(std::string_view appId) const;
  /// The app's last task failure since this engine started; nullopt when none.
  std::optional<TaskFailure> lastTaskFailure(std::string_view appId) const;
  /// The deployments that touch `appId` (for embed=apps.deployments and 409 answers).
  std::vector<std::string> deploymentsOf(std::string_view appId) const;

  std::vector<QueueEntry> queue() const;
  /// DELETE /v2/queue/{id}/delay: launches again without waiting. False when not queued.
  bool resetDelay(std::string_view appId);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::modules::marathon

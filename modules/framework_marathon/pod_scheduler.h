#pragma once

// The pod half of the Marathon scheduling engine: keeps `scaling.instances` instances of each pod
// running, an instance being one Mesos task group (LAUNCH_GROUP with the default executor) of the
// pod's containers on one offer. Replaces failed instances with the pod's exponential backoff,
// replaces every instance of an older config when a pod's definition changes, kills instances of
// removed pods and stray pod tasks, and adopts the tasks of a predecessor after a failover (the
// master's answers to the app engine's implicit reconciliation come here by task id).
//
// The framework glue gives it every offer first and passes the offers it returns to the
// AppScheduler; it gives it every task update first and passes those it does not claim on.
//
// Threading: every method runs on the module's executor, as the AppScheduler's do. No thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/pod.h"
#include "tessera/api/executor.h"
#include "tessera/api/framework.h"
#include "tessera/api/module.h"

namespace tessera::modules::marathon {

/// One container (task) of a pod instance, as `::status` shows it.
struct PodContainerStatus {
  std::string name;
  std::string taskId;
  std::string state = "TASK_STAGING";  // Mesos's task state names
  std::string message;
  Clock::time_point since;
  std::map<std::string, int> endpoints;  // endpoint name -> host port
  bool checked = false;                  // its container has a `healthCheck`
  std::optional<bool> healthy;           // the agent's last word on it (unset: none yet)
};

/// One instance of a pod: one task group on one agent.
struct PodInstance {
  std::string id;  // `<pod>.instance-<uuid>`
  std::string podId;
  Clock::time_point version;  // the pod version it was launched for
  int generation = 0;         // the pod's config generation it runs
  std::string agentId;
  std::string hostname;
  std::vector<PodContainerStatus> containers;
  Clock::time_point stagedAt;
  Clock::time_point statusSince;
  std::optional<Clock::time_point> runningSince;  // every container TASK_RUNNING
  bool killRequested = false;

  /// Marathon's instance status: STAGING, STABLE (every container running and, where it has a
  /// health check, reported healthy), DEGRADED (some container ended, is not running any more or
  /// is not healthy, or the instance is being killed), TERMINAL (every container ended).
  std::string status() const;
  /// True when every container runs but one with a health check is not (yet) reported healthy
  /// (Marathon: DEGRADED, "at least one container is not healthy").
  bool unhealthy() const;
  /// True while it counts toward `instances`: not killed, and no container ended or is lost.
  bool live() const;
};

class PodScheduler {
 public:
  struct Options {
    std::string role = "*";
    std::string user;  // the default user of tasks (a pod's `user` overrides it)
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
    /// After subscribed(): no launch or kill for the counts before the master has answered
    /// reconciliation (the AppScheduler asks the master for every task).
    std::chrono::milliseconds reconcileGrace{2000};
    /// An instance that ran this long before it failed resets the pod's backoff.
    std::chrono::seconds backoffResetAfter{30};
    double refuseSeconds = 5.0;  // filters on the offers it launches on
  };

  PodScheduler(api::Context& context, Options options);
  ~PodScheduler();
  PodScheduler(const PodScheduler&) = delete;
  PodScheduler& operator=(const PodScheduler&) = delete;

  /// The leader's start with the pods read from the store (no instance is launched before the
  /// reconciliation after subscribed()).
  void start(api::SchedulerDriver& driver, std::vector<Pod> pods);
  void stop();
  void subscribed();
  void disconnected();

  /// Launches what the pods need on `offers`; returns the offers it did not use (for the apps).
  std::vector<v1::Offer> offers(std::vector<v1::Offer> offers);
  /// Handles (and acknowledges) an update of a pod's task; false when the task is no pod's.
  bool update(const v1::TaskStatus& status);
  void rescind(const v1::OfferID& offerId);

  /// A new pod, a new version or a scaling of one: instances of an older config are replaced.
  void setPod(const Pod& pod);
  /// Kills every instance of the pod and forgets it.
  void removePod(const std::string& podId);
  /// Kills one instance (DELETE /v2/pods/{id}::instances/{instance}); it is replaced as a
  /// failed one would be (without backoff). False when the pod has no such instance.
  bool killInstance(const std::string& podId, const std::string& instanceId);

  /// The pod's instances, oldest first.
  std::vector<PodInstance> instances(std::string_view podId) const;
  /// True when a pod waits for offers (also while its backoff delays it): the app engine must
  /// not suppress offers then.
  bool wantsOffers() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::modules::marathon

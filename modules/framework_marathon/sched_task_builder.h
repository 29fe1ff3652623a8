#pragma once

// Builds the Mesos TaskInfo of one Marathon task: id, name, resources, command, environment
// (Marathon's $PORT0.., $HOST, MARATHON_APP_* and the app's env), labels, fetch URIs,
// container, kill policy and health check. Pure functions.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "modules/framework_marathon/sched_placement.h"
#include "tessera/v1/messages.pb.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::modules::marathon {

/// A new task id for `appId`: the id without its leading '/', '/' as '_', then '.' and a random
/// UUID (`prod_web_api.1b4e28ba-2fa1-11d2-883f-0016d3cca427`), as Marathon's.
std::string newTaskId(std::string_view appId);

/// The app id a task id belongs to (`/prod/web/api`), or nullopt when the id is not of that form.
std::optional<std::string> appIdOfTask(std::string_view taskId);

/// A double as Marathon (the JVM) prints it: `1.0`, `0.25`, `128.0`.
std::string jvmDouble(double value);

/// The environment Marathon gives a task on `hostname` with `hostPorts` (in app port order):
/// the app's env, then PORT, PORT0.., PORTS, PORT_<NAME> for named ports, PORT_<port> for
/// requested port numbers, HOST, MESOS_TASK_ID, MARATHON_APP_ID, MARATHON_APP_VERSION,
/// MARATHON_APP_DOCKER_IMAGE, MARATHON_APP_RESOURCE_{CPUS,MEM,DISK,GPUS}, MARATHON_APP_LABELS
/// and MARATHON_APP_LABEL_<KEY>. Marathon's variables win over the app's of the same name.
std::map<std::string, std::string> taskEnvironment(const App& app, std::string_view taskId,
                                                   std::string_view hostname,
                                                   const std::vector<int>& hostPorts);

/// A Mesos health check carrying the five timings shared by an app's and a pod container's
/// Marathon health check (delay, interval, timeout, consecutive failures, grace period); the
/// caller sets the type and the probe.
template <typename MarathonCheck>
v1::HealthCheck healthCheckTiming(const MarathonCheck& check) {
  v1::HealthCheck out;
  out.set_delay_seconds(check.delaySeconds);
  out.set_interval_seconds(check.intervalSeconds);
  out.set_timeout_seconds(check.timeoutSeconds);
  out.set_consecutive_failures(static_cast<uint32_t>(std::max(0, check.maxConsecutiveFailures)));
  out.set_grace_period_seconds(check.gracePeriodSeconds);
  return out;
}

/// The TaskInfo launching task `taskId` of `app` on `offer`'s agent with what `match` took.
/// `defaultUser` is used when the app names no user (empty: none is set). Only the first of
/// the app's health checks is given to Mesos (one per task).
v1::TaskInfo buildTaskInfo(const App& app, std::string_view taskId, const v1::Offer& offer,
                           const OfferMatch& match, std::string_view defaultUser);

/// The service ports of `app`'s tasks (portMappings' servicePort or portDefinitions' port).
std::vector<int> servicePortsOf(const App& app);

/// One task of an explicit reconciliation: `taskId`, and `agentId` when it is known (not empty).
v1::scheduler::Call::Reconcile::Task reconcileTask(const std::string& taskId,
                                                   const std::string& agentId);

}  // namespace tessera::modules::marathon

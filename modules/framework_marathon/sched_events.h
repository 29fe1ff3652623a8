#pragma once

// The Marathon events the scheduling engine emits (deployment_*, status_update_event,
// health_status_changed_event, failed_health_check_event, unhealthy_task_kill_event), built as
// Marathon 1.x writes them: every event has `eventType` and `timestamp`. Plain functions.

#include <Poco/JSON/Object.h>

#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "modules/framework_marathon/scheduler.h"

namespace tessera::modules::marathon::sched_events {

/// `{"eventType": type, "timestamp": now}`, for the caller to add to.
Poco::JSON::Object::Ptr event(std::string_view type, Clock::time_point now);
/// A deployment step: `{"actions": [{"action", "app"}]}`.
Poco::JSON::Object::Ptr actionsJson(const std::vector<DeploymentAction>& actions);
/// A deployment plan: id, original and target groups, steps, version.
Poco::JSON::Object::Ptr planJson(const Deployment& deployment);
/// `object` as JSON text.
std::string text(const Poco::JSON::Object::Ptr& object);

std::string statusUpdate(const Task& task, std::string_view message, Clock::time_point now);
std::string healthChanged(const Task& task, bool healthy, Clock::time_point now);
/// `spec`: the app's first health check, null when it has none.
std::string failedHealthCheck(const Task& task, const HealthCheck* spec, Clock::time_point now);
/// `message`: why (empty: "health check failed").
std::string unhealthyKill(const Task& task, std::string_view message, Clock::time_point now);

}  // namespace tessera::modules::marathon::sched_events

#include "modules/framework_marathon/sched_events.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

namespace tessera::modules::marathon::sched_events {

using Poco::JSON::Array;
using Poco::JSON::Object;

namespace {

Object::Ptr groupJson(const std::vector<App>& apps, Clock::time_point version) {
  Object::Ptr group = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  group->set("id", "/");
  Array::Ptr list = new Array;
  for (const auto& app : apps) {
    try {
      Poco::JSON::Parser parser;
      list->add(parser.parse(appToJson(app)));
    } catch (const Poco::Exception&) {
      // appToJson writes valid JSON; an app that cannot be shown is left out.
    }
  }
  group->set("apps", list);
  group->set("groups", Array::Ptr(new Array));
  group->set("version", isoTimestamp(version));
  return group;
}

}  // namespace

Object::Ptr actionsJson(const std::vector<DeploymentAction>& actions) {
  Object::Ptr step = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  Array::Ptr list = new Array;
  for (const auto& action : actions) {
    Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    item->set("action", action.action);
    item->set("app", action.app);
    list->add(item);
  }
  step->set("actions", list);
  return step;
}

Object::Ptr planJson(const Deployment& deployment) {
  Object::Ptr plan = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  plan->set("id", deployment.id);
  plan->set("original", groupJson(deployment.original, deployment.version));
  plan->set("target", groupJson(deployment.target, deployment.version));
  Array::Ptr steps = new Array;
  for (const auto& step : deployment.steps) steps->add(actionsJson(step));
  plan->set("steps", steps);
  plan->set("version", isoTimestamp(deployment.version));
  return plan;
}

std::string text(const Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

Object::Ptr event(std::string_view type, Clock::time_point now) {
  Object::Ptr event = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  event->set("eventType", std::string(type));
  event->set("timestamp", isoTimestamp(now));
  return event;
}

std::string statusUpdate(const Task& task, std::string_view message, Clock::time_point now) {
  Object::Ptr out = event("status_update_event", now);
  out->set("slaveId", task.agentId);
  out->set("taskId", task.id);
  out->set("taskStatus", task.state);
  out->set("message", std::string(message));
  out->set("appId", task.appId);
  out->set("host", task.host);
  out->set("ipAddresses", Array::Ptr(new Array));
  Array::Ptr ports = new Array;
  for (int port : task.ports) ports->add(port);
  out->set("ports", ports);
  out->set("version", isoTimestamp(task.version));
  return text(out);
}

std::string healthChanged(const Task& task, bool healthy, Clock::time_point now) {
  Object::Ptr out = event("health_status_changed_event", now);
  out->set("appId", task.appId);
  out->set("taskId", task.id);
  out->set("instanceId", task.id);
  out->set("version", isoTimestamp(task.version));
  out->set("alive", healthy);
  return text(out);
}

std::string failedHealthCheck(const Task& task, const HealthCheck* spec, Clock::time_point now) {
  Object::Ptr out = event("failed_health_check_event", now);
  out->set("appId", task.appId);
  out->set("taskId", task.id);
  out->set("instanceId", task.id);
  Object::Ptr check = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  if (spec != nullptr) {
    check->set("protocol", spec->protocol);
    if (spec->kind() == "HTTP" || spec->kind() == "HTTPS") check->set("path", spec->path);
    if (spec->portIndex) check->set("portIndex", *spec->portIndex);
    if (spec->port) check->set("port", *spec->port);
    check->set("gracePeriodSeconds", spec->gracePeriodSeconds);
    check->set("intervalSeconds", spec->intervalSeconds);
    check->set("timeoutSeconds", spec->timeoutSeconds);
    check->set("maxConsecutiveFailures", spec->maxConsecutiveFailures);
  }
  out->set("healthCheck", check);
  return text(out);
}

std::string unhealthyKill(const Task& task, std::string_view message, Clock::time_point now) {
  Object::Ptr out = event("unhealthy_task_kill_event", now);
  out->set("appId", task.appId);
  out->set("taskId", task.id);
  out->set("instanceId", task.id);
  out->set("version", isoTimestamp(task.version));
  out->set("reason", message.empty() ? std::string("health check failed") : std::string(message));
  out->set("host", task.host);
  out->set("slaveId", task.agentId);
  return text(out);
}

}  // namespace tessera::modules::marathon::sched_events

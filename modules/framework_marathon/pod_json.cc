// Pods as JSON: what GET /v2/pods/{id} answers (every default spelled out) and what the state
// store keeps (the same text, read back by podFromJson()).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

#include "modules/framework_marathon/pod.h"

namespace tessera::modules::marathon {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr ordered() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

Object::Ptr stringsObject(const std::map<std::string, std::string>& values) {
  Object::Ptr out = ordered();
  for (const auto& [key, value] : values) out->set(key, value);
  return out;
}

Object::Ptr resourcesJson(const PodResources& resources) {
  Object::Ptr out = ordered();
  out->set("cpus", resources.cpus);
  out->set("mem", resources.mem);
  out->set("disk", resources.disk);
  out->set("gpus", resources.gpus);
  return out;
}

Object::Ptr healthCheckJson(const PodHealthCheck& check) {
  Object::Ptr out = ordered();
  Object::Ptr kind = ordered();
  if (check.type == "exec") {
    Object::Ptr command = ordered();
    if (check.shell) {
      command->set("shell", *check.shell);
    } else {
      Array::Ptr argv = new Array;
      for (const auto& arg : check.argv) argv->add(arg);
      command->set("argv", argv);
    }
    kind->set("command", command);
  } else {
    kind->set("endpoint", check.endpoint);
    if (check.type == "http") {
      if (check.path) kind->set("path", *check.path);
      kind->set("scheme", check.scheme);
    }
  }
  out->set(check.type, kind);
  out->set("gracePeriodSeconds", check.gracePeriodSeconds);
  out->set("intervalSeconds", check.intervalSeconds);
  out->set("maxConsecutiveFailures", check.maxConsecutiveFailures);
  out->set("timeoutSeconds", check.timeoutSeconds);
  out->set("delaySeconds", check.delaySeconds);
  return out;
}

Object::Ptr containerJson(const PodContainer& container) {
  Object::Ptr out = ordered();
  out->set("name", container.name);
  out->set("resources", resourcesJson(container.resources));
  Object::Ptr shell = ordered();
  shell->set("shell", container.command);
  Object::Ptr command = ordered();
  command->set("command", shell);
  out->set("exec", command);
  Array::Ptr endpoints = new Array;
  for (const auto& endpoint : container.endpoints) {
    Object::Ptr item = ordered();
    item->set("name", endpoint.name);
    if (endpoint.containerPort) item->set("containerPort", *endpoint.containerPort);
    if (endpoint.hostPort) item->set("hostPort", *endpoint.hostPort);
    Array::Ptr protocols = new Array;
    for (const auto& protocol : endpoint.protocol) protocols->add(protocol);
    item->set("protocol", protocols);
    item->set("labels", stringsObject(endpoint.labels));
    endpoints->add(item);
  }
  out->set("endpoints", endpoints);
  out->set("environment", stringsObject(container.environment));
  out->set("labels", stringsObject(container.labels));
  if (container.healthCheck) out->set("healthCheck", healthCheckJson(*container.healthCheck));
  out->set("volumeMounts", Array::Ptr(new Array));
  return out;
}

}  // namespace

std::string podToJson(const Pod& pod) {
  Object::Ptr out = ordered();
  out->set("id", pod.id);
  out->set("version", isoTimestamp(pod.version));
  out->set("labels", stringsObject(pod.labels));
  out->set("environment", stringsObject(pod.environment));
  Array::Ptr containers = new Array;
  for (const auto& container : pod.containers) containers->add(containerJson(container));
  out->set("containers", containers);
  Object::Ptr scaling = ordered();
  scaling->set("kind", "fixed");
  scaling->set("instances", pod.instances);
  if (pod.maxInstances) scaling->set("maxInstances", *pod.maxInstances);
  out->set("scaling", scaling);
  Array::Ptr networks = new Array;
  Object::Ptr network = ordered();
  network->set("mode", pod.networkMode);
  networks->add(network);
  out->set("networks", networks);
  out->set("volumes", Array::Ptr(new Array));

  Object::Ptr scheduling = ordered();
  Object::Ptr backoff = ordered();
  backoff->set("backoff", pod.backoffSeconds);
  backoff->set("backoffFactor", pod.backoffFactor);
  backoff->set("maxLaunchDelay", pod.maxLaunchDelaySeconds);
  scheduling->set("backoff", backoff);
  Object::Ptr upgrade = ordered();
  upgrade->set("minimumHealthCapacity", pod.upgradeStrategy.minimumHealthCapacity);
  upgrade->set("maximumOverCapacity", pod.upgradeStrategy.maximumOverCapacity);
  scheduling->set("upgrade", upgrade);
  Object::Ptr placement = ordered();
  Array::Ptr constraints = new Array;
  for (const auto& constraint : pod.constraints) {
    Object::Ptr item = ordered();
    item->set("fieldName", constraint.field);
    item->set("operator", constraint.op);
    if (constraint.value) item->set("value", *constraint.value);
    constraints->add(item);
  }
  placement->set("constraints", constraints);
  Array::Ptr roles = new Array;
  for (const auto& role : pod.acceptedResourceRoles) roles->add(role);
  placement->set("acceptedResourceRoles", roles);
  scheduling->set("placement", placement);
  scheduling->set("killSelection", pod.killSelection);
  out->set("scheduling", scheduling);
  out->set("executorResources", resourcesJson(pod.executorResources));
  if (pod.user) out->set("user", *pod.user);
  std::ostringstream text;
  out->stringify(text);
  return text.str();
}

std::optional<Pod> podFromJson(std::string_view json) {
  auto parsed = parsePod(json, Clock::time_point{});
  if (std::holds_alternative<AppError>(parsed)) return std::nullopt;
  Pod pod = std::get<Pod>(std::move(parsed));
  try {
    auto object = Poco::JSON::Parser().parse(std::string(json)).extract<Object::Ptr>();
    auto version = parseIsoTimestamp(object->optValue<std::string>("version", ""));
    if (!version) return std::nullopt;
    pod.version = *version;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  return pod;
}

}  // namespace tessera::modules::marathon

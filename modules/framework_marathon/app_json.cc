// Apps as JSON: what the API shows and the store keeps (appToJson, appFromJson), and Marathon's
// ISO-8601 timestamps.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <sstream>

#include "modules/framework_marathon/app.h"

namespace tessera::modules::marathon {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr labelsObject(const std::map<std::string, std::string>& labels) {
  Object::Ptr out = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [key, value] : labels) out->set(key, value);
  return out;
}

Object::Ptr portMappingJson(const PortMapping& mapping) {
  Object::Ptr out = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set("containerPort", mapping.containerPort);
  out->set("hostPort", mapping.hostPort);
  out->set("servicePort", mapping.servicePort);
  out->set("protocol", mapping.protocol);
  if (!mapping.name.empty()) out->set("name", mapping.name);
  out->set("labels", labelsObject(mapping.labels));
  return out;
}

}  // namespace

std::string appToJson(const App& app) {
  Object out(Poco::JSON_PRESERVE_KEY_ORDER);
  out.set("id", app.id);
  if (app.cmd) out.set("cmd", *app.cmd);
  if (app.args) {
    Array::Ptr args = new Array;
    for (const auto& arg : *app.args) args->add(arg);
    out.set("args", args);
  }
  if (app.user) out.set("user", *app.user);
  out.set("env", labelsObject(app.env));
  out.set("instances", app.instances);
  out.set("cpus", app.cpus);
  out.set("mem", app.mem);
  out.set("disk", app.disk);
  out.set("gpus", app.gpus);
  out.set("executor", "");
  Array::Ptr constraints = new Array;
  for (const auto& constraint : app.constraints) {
    Array::Ptr item = new Array;
    item->add(constraint.field);
    item->add(constraint.op);
    if (constraint.value) item->add(*constraint.value);
    constraints->add(item);
  }
  out.set("constraints", constraints);
  Array::Ptr uris = new Array;
  Array::Ptr fetch = new Array;
  for (const auto& uri : app.fetch) {
    uris->add(uri.uri);
    Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    item->set("uri", uri.uri);
    item->set("extract", uri.extract);
    item->set("executable", uri.executable);
    item->set("cache", uri.cache);
    if (uri.destPath) item->set("destPath", *uri.destPath);
    fetch->add(item);
  }
  out.set("uris", uris);
  out.set("fetch", fetch);
  out.set("storeUrls", Array::Ptr(new Array));
  out.set("backoffSeconds", app.backoffSeconds);
  out.set("backoffFactor", app.backoffFactor);
  out.set("maxLaunchDelaySeconds", app.maxLaunchDelaySeconds);
  if (app.container) {
    const auto& c = *app.container;
    Object::Ptr container = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    container->set("type", c.type);
    Array::Ptr volumes = new Array;
    for (const auto& volume : c.volumes) {
      Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      item->set("containerPath", volume.containerPath);
      if (!volume.hostPath.empty()) item->set("hostPath", volume.hostPath);
      item->set("mode", volume.mode);
      volumes->add(item);
    }
    container->set("volumes", volumes);
    if (c.docker) {
      Object::Ptr docker = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      docker->set("image", c.docker->image);
      docker->set("network", c.docker->network);
      Array::Ptr parameters = new Array;
      for (const auto& [key, value] : c.docker->parameters) {
        Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
        item->set("key", key);
        item->set("value", value);
        parameters->add(item);
      }
      docker->set("parameters", parameters);
      docker->set("privileged", c.docker->privileged);
      docker->set("forcePullImage", c.docker->forcePullImage);
      container->set("docker", docker);
    }
    Array::Ptr mappings = new Array;
    for (const auto& mapping : c.portMappings) mappings->add(portMappingJson(mapping));
    container->set("portMappings", mappings);
    out.set("container", container);
  }
  Array::Ptr checks = new Array;
  for (const auto& check : app.healthChecks) {
    Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    item->set("protocol", check.protocol);
    if (check.kind() == "HTTP" || check.kind() == "HTTPS") item->set("path", check.path);
    if (check.portIndex) item->set("portIndex", *check.portIndex);
    if (check.port) item->set("port", *check.port);
    if (check.kind() == "COMMAND") {
      Object::Ptr command = new Object;
      command->set("value", check.command);
      item->set("command", command);
    }
    item->set("gracePeriodSeconds", check.gracePeriodSeconds);
    item->set("intervalSeconds", check.intervalSeconds);
    item->set("timeoutSeconds", check.timeoutSeconds);
    item->set("maxConsecutiveFailures", check.maxConsecutiveFailures);
    item->set("delaySeconds", check.delaySeconds);
    if (check.protocol == "HTTP" || check.protocol == "HTTPS") {
      item->set("ignoreHttp1xx", check.ignoreHttp1xx);
    }
    checks->add(item);
  }
  out.set("healthChecks", checks);
  out.set("readinessChecks", Array::Ptr(new Array));
  Array::Ptr dependencies = new Array;
  for (const auto& dependency : app.dependencies) dependencies->add(dependency);
  out.set("dependencies", dependencies);
  Object::Ptr upgrade = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  upgrade->set("minimumHealthCapacity", app.upgradeStrategy.minimumHealthCapacity);
  upgrade->set("maximumOverCapacity", app.upgradeStrategy.maximumOverCapacity);
  out.set("upgradeStrategy", upgrade);
  out.set("labels", labelsObject(app.labels));
  if (!app.acceptedResourceRoles.empty()) {
    Array::Ptr roles = new Array;
    for (const auto& role : app.acceptedResourceRoles) roles->add(role);
    out.set("acceptedResourceRoles", roles);
  }
  out.set("version", isoTimestamp(app.version));
  Object::Ptr versionInfo = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  versionInfo->set("lastScalingAt", isoTimestamp(app.lastScalingAt));
  versionInfo->set("lastConfigChangeAt", isoTimestamp(app.lastConfigChangeAt));
  out.set("versionInfo", versionInfo);
  out.set("killSelection", app.killSelection);
  if (app.unreachableStrategy.disabled) {
    out.set("unreachableStrategy", "disabled");
  } else {
    Object::Ptr unreachable = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    unreachable->set("inactiveAfterSeconds", app.unreachableStrategy.inactiveAfterSeconds);
    unreachable->set("expungeAfterSeconds", app.unreachableStrategy.expungeAfterSeconds);
    out.set("unreachableStrategy", unreachable);
  }
  if (app.taskKillGracePeriodSeconds > 0) {
    out.set("taskKillGracePeriodSeconds", app.taskKillGracePeriodSeconds);
  }
  out.set("secrets", Object::Ptr(new Object));
  Array::Ptr ports = new Array;
  Array::Ptr portDefinitions = new Array;
  for (const auto& port : app.portDefinitions) {
    ports->add(port.port);
    Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    item->set("port", port.port);
    item->set("protocol", port.protocol);
    if (!port.name.empty()) item->set("name", port.name);
    item->set("labels", labelsObject(port.labels));
    portDefinitions->add(item);
  }
  out.set("ports", ports);
  out.set("portDefinitions", portDefinitions);
  out.set("requirePorts", app.requirePorts);
  std::ostringstream text;
  out.stringify(text);
  return text.str();
}

std::string isoTimestamp(Clock::time_point time) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  if (millis < 0 && millis % 1000 != 0) --seconds;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buffer, static_cast<int>(((millis % 1000) + 1000) % 1000));
}

std::optional<Clock::time_point> parseIsoTimestamp(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(static_cast<size_t>(consumed));
  int millis = 0;
  if (rest.starts_with('.')) {
    size_t digits = 1;
    int scale = 100;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') {
      millis += (rest[digits] - '0') * scale;
      scale /= 10;
      ++digits;
    }
    rest = rest.substr(digits);
  }
  if (rest != "Z") return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t seconds = ::timegm(&tm);
  return Clock::time_point(std::chrono::seconds(seconds)) + std::chrono::milliseconds(millis);
}

std::optional<App> appFromJson(std::string_view json) {
  auto parsed = parseApp(json, Clock::time_point{});
  if (!std::holds_alternative<App>(parsed)) return std::nullopt;
  App app = std::get<App>(std::move(parsed));
  try {
    auto object = Poco::JSON::Parser().parse(std::string(json)).extract<Object::Ptr>();
    if (object->has("version")) {
      app.version =
          parseIsoTimestamp(object->getValue<std::string>("version")).value_or(app.version);
    }
    app.lastScalingAt = app.lastConfigChangeAt = app.version;
    if (auto info = object->getObject("versionInfo")) {
      if (info->has("lastScalingAt")) {
        app.lastScalingAt =
            parseIsoTimestamp(info->getValue<std::string>("lastScalingAt")).value_or(app.version);
      }
      if (info->has("lastConfigChangeAt")) {
        app.lastConfigChangeAt =
            parseIsoTimestamp(info->getValue<std::string>("lastConfigChangeAt"))
                .value_or(app.version);
      }
    }
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  // appToJson() writes portDefinitions as they are, even none: keep what was stored.
  return app;
}

}  // namespace tessera::modules::marathon

#include "modules/framework_marathon/app.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "modules/framework_marathon/json_reader.h"

namespace tessera::modules::marathon {

namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// Marathon's AppValidation messages (1.x), word for word where clients match on them.
constexpr std::string_view kIdPattern =
    "must fully match regular expression "
    "'^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|"
    "\\.\\.)$'";
constexpr std::string_view kCmdArgsContainer =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";

// Fields a client may send back from a GET that are not part of a definition: ignored.
const std::set<std::string, std::less<>> kReadOnly = {
    "tasks",           "tasksRunning", "tasksStaged",           "tasksHealthy",
    "tasksUnhealthy",  "deployments",  "versionInfo",           "version",
    "lastTaskFailure", "taskStats",    "readinessCheckResults", "counts",
    "tasksLost"};

bool isLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One id segment: dot-separated labels of [a-z0-9-], none starting or ending with '-'.
bool validSegment(std::string_view segment) {
  if (segment.empty()) return false;
  size_t start = 0;
  while (start <= segment.size()) {
    size_t dot = segment.find('.', start);
    std::string_view label =
        segment.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || !isLabelChar(label.front()) || !isLabelChar(label.back())) return false;
    for (char c : label) {
      if (!isLabelChar(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

std::string formatNumber(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  std::string text = out.str();
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

bool isObject(const Var& value) { return value.type() == typeid(Object::Ptr); }

bool present(const Object::Ptr& object, const std::string& key) {
  return object->has(key) && !object->get(key).isEmpty();
}

void readPortDefinitions(JsonReader& r, const Var& value, std::vector<PortDefinition>& out) {
  out.clear();
  auto array = r.array(value, "/portDefinitions");
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("/portDefinitions({})", i);
    auto item = r.object(array->get(i), path);
    if (!item) continue;
    PortDefinition port;
    if (present(item, "port")) {
      if (auto n = r.integer(item->get("port"), path + "/port")) port.port = *n;
    }
    if (present(item, "protocol")) {
      if (auto s = r.string(item->get("protocol"), path + "/protocol")) port.protocol = *s;
    }
    if (present(item, "name")) {
      if (auto s = r.string(item->get("name"), path + "/name")) port.name = *s;
    }
    if (present(item, "labels")) port.labels = r.stringMap(item->get("labels"), path + "/labels");
    if (port.port < 0 || port.port > 65535) {
      r.fail(path + "/port", fmt::format("got {}, expected between 0 and 65535", port.port));
    }
    out.push_back(std::move(port));
  }
}

void readPortMappings(JsonReader& r, const Var& value, const std::string& base,
                      std::vector<PortMapping>& out) {
  out.clear();
  auto array = r.array(value, base);
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("{}({})", base, i);
    auto item = r.object(array->get(i), path);
    if (!item) continue;
    PortMapping mapping;
    for (auto [key, field] : {std::pair{"containerPort", &mapping.containerPort},
                              std::pair{"hostPort", &mapping.hostPort},
                              std::pair{"servicePort", &mapping.servicePort}}) {
      if (!present(item, key)) continue;
      if (auto n = r.integer(item->get(key), path + "/" + key)) {
        if (*n < 0 || *n > 65535) {
          r.fail(path + "/" + key, fmt::format("got {}, expected between 0 and 65535", *n));
        }
        *field = *n;
      }
    }
    if (present(item, "protocol")) {
      if (auto s = r.string(item->get("protocol"), path + "/protocol")) mapping.protocol = *s;
    }
    if (present(item, "name")) {
      if (auto s = r.string(item->get("name"), path + "/name")) mapping.name = *s;
    }
    if (present(item, "labels")) {
      mapping.labels = r.stringMap(item->get("labels"), path + "/labels");
    }
    out.push_back(std::move(mapping));
  }
}

std::optional<Container> readContainer(JsonReader& r, const Var& value) {
  auto object = r.object(value, "/container");
  if (!object) return std::nullopt;
  Container container;
  if (present(object, "type")) {
    if (auto s = r.string(object->get("type"), "/container/type")) container.type = *s;
  }
  if (container.type != "DOCKER" && container.type != "MESOS") {
    r.fail("/container/type", "error.expected.validenumvalue");
  }
  if (present(object, "docker")) {
    auto docker = r.object(object->get("docker"), "/container/docker");
    if (docker) {
      DockerContainer d;
      if (present(docker, "image")) {
        if (auto s = r.string(docker->get("image"), "/container/docker/image")) d.image = *s;
      }
      if (present(docker, "network")) {
        if (auto s = r.string(docker->get("network"), "/container/docker/network")) {
          d.network = *s;
          if (*s != "HOST" && *s != "BRIDGE" && *s != "USER" && *s != "NONE") {
            r.fail("/container/docker/network", "error.expected.validenumvalue");
          }
        }
      }
      if (present(docker, "privileged")) {
        if (auto b = r.boolean(docker->get("privileged"), "/container/docker/privileged")) {
          d.privileged = *b;
        }
      }
      if (present(docker, "forcePullImage")) {
        if (auto b = r.boolean(docker->get("forcePullImage"), "/container/docker/forcePullImage")) {
          d.forcePullImage = *b;
        }
      }
      if (present(docker, "parameters")) {
        if (auto array = r.array(docker->get("parameters"), "/container/docker/parameters")) {
          for (size_t i = 0; i < array->size(); ++i) {
            const std::string path = fmt::format("/container/docker/parameters({})", i);
            auto item = r.object(array->get(i), path);
            if (!item) continue;
            auto key = r.string(item->get("key"), path + "/key");
            auto val = r.string(item->get("value"), path + "/value");
            if (key && val) d.parameters.emplace_back(*key, *val);
          }
        }
      }
      if (present(docker, "portMappings")) {
        readPortMappings(r, docker->get("portMappings"), "/container/docker/portMappings",
                         container.portMappings);
      }
      if (d.image.empty()) r.fail("/container/docker/image", "must not be empty");
      container.docker = std::move(d);
    }
  } else if (container.type == "DOCKER") {
    r.fail("/container/docker", "must not be empty");
  }
  if (present(object, "portMappings")) {
    readPortMappings(r, object->get("portMappings"), "/container/portMappings",
                     container.portMappings);
  }
  // Marathon 1.5's `networks` on the app sets the mode; read here from the container too.
  if (present(object, "volumes")) {
    if (auto array = r.array(object->get("volumes"), "/container/volumes")) {
      for (size_t i = 0; i < array->size(); ++i) {
        const std::string path = fmt::format("/container/volumes({})", i);
        auto item = r.object(array->get(i), path);
        if (!item) continue;
        Volume volume;
        if (auto s = r.string(item->get("containerPath"), path + "/containerPath")) {
          volume.containerPath = *s;
        }
        if (present(item, "hostPath")) {
          if (auto s = r.string(item->get("hostPath"), path + "/hostPath")) volume.hostPath = *s;
        }
        if (present(item, "mode")) {
          if (auto s = r.string(item->get("mode"), path + "/mode")) volume.mode = *s;
          if (volume.mode != "RW" && volume.mode != "RO") {
            r.fail(path + "/mode", "error.expected.validenumvalue");
          }
        }
        container.volumes.push_back(std::move(volume));
      }
    }
  }
  return container;
}

void readHealthChecks(JsonReader& r, const Var& value, std::vector<HealthCheck>& out) {
  out.clear();
  auto array = r.array(value, "/healthChecks");
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("/healthChecks({})", i);
    auto item = r.object(array->get(i), path);
    if (!item) continue;
    HealthCheck check;
    if (present(item, "protocol")) {
      if (auto s = r.string(item->get("protocol"), path + "/protocol")) {
        // Marathon's seven; there is no MESOS_COMMAND (COMMAND is already Mesos's).
        static const std::set<std::string, std::less<>> kProtocols = {
            "HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"};
        if (!kProtocols.count(*s)) r.fail(path + "/protocol", "error.expected.validenumvalue");
        check.protocol = *s;
      }
    }
    if (present(item, "path")) {
      if (auto s = r.string(item->get("path"), path + "/path")) check.path = *s;
    }
    if (present(item, "portIndex")) {
      check.portIndex = r.integer(item->get("portIndex"), path + "/portIndex");
    }
    if (present(item, "port")) check.port = r.integer(item->get("port"), path + "/port");
    if (present(item, "command")) {
      const Var& command = item->get("command");
      if (command.isString()) {
        check.command = command.convert<std::string>();
      } else if (auto object = r.object(command, path + "/command")) {
        if (auto s = r.string(object->get("value"), path + "/command/value")) check.command = *s;
      }
    }
    for (auto [key, field] : {std::pair{"gracePeriodSeconds", &check.gracePeriodSeconds},
                              std::pair{"intervalSeconds", &check.intervalSeconds},
                              std::pair{"timeoutSeconds", &check.timeoutSeconds},
                              std::pair{"delaySeconds", &check.delaySeconds},
                              std::pair{"maxConsecutiveFailures", &check.maxConsecutiveFailures}}) {
      if (!present(item, key)) continue;
      if (auto n = r.integer(item->get(key), path + "/" + key)) {
        if (*n < 0) r.fail(path + "/" + key, fmt::format("got {}, expected 0 or more", *n));
        *field = *n;
      }
    }
    if (present(item, "ignoreHttp1xx") && (check.protocol == "HTTP" || check.protocol == "HTTPS")) {
      if (auto b = r.boolean(item->get("ignoreHttp1xx"), path + "/ignoreHttp1xx")) {
        check.ignoreHttp1xx = *b;
      }
    }
    if (check.kind() == "COMMAND") {
      if (check.command.empty()) r.fail(path + "/command", "must not be empty");
    } else if (!check.portIndex && !check.port) {
      check.portIndex = 0;
    }
    if (check.portIndex && check.port) {
      r.fail(path, "HealthCheck must specify either a port or a portIndex, not both");
    }
    out.push_back(std::move(check));
  }
}

void readConstraints(JsonReader& r, const Var& value, std::vector<Constraint>& out) {
  static const std::set<std::string, std::less<>> kOperators = {
      "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"};
  out.clear();
  auto array = r.array(value, "/constraints");
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("/constraints({})", i);
    auto items = r.array(array->get(i), path);
    if (!items) continue;
    std::vector<std::string> parts;
    for (size_t j = 0; j < items->size(); ++j) {
      if (auto s = r.string(items->get(j), path)) parts.push_back(*s);
    }
    if (parts.size() < 2 || parts.size() > 3) {
      r.fail(path, "Each constraint must have either 2 or 3 fields");
      continue;
    }
    Constraint constraint{parts[0], parts[1], std::nullopt};
    if (parts.size() == 3) constraint.value = parts[2];
    if (!kOperators.contains(constraint.op)) {
      r.fail(path, fmt::format("Constraint operator must be one of the following: [{}]",
                               "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS"));
      continue;
    }
    const bool needsValue = constraint.op == "CLUSTER" || constraint.op == "LIKE" ||
                            constraint.op == "UNLIKE" || constraint.op == "MAX_PER" ||
                            constraint.op == "IS";
    if (needsValue && !constraint.value) {
      r.fail(path, fmt::format("Value was not specified for operator {}", constraint.op));
      continue;
    }
    if (constraint.op == "UNIQUE" && constraint.value) {
      r.fail(path, "Value was specified but is not used with operator UNIQUE");
      continue;
    }
    out.push_back(std::move(constraint));
  }
}

void readFetch(JsonReader& r, const Object::Ptr& object, std::vector<FetchUri>& out) {
  if (present(object, "fetch")) {
    out.clear();
    if (auto array = r.array(object->get("fetch"), "/fetch")) {
      for (size_t i = 0; i < array->size(); ++i) {
        const std::string path = fmt::format("/fetch({})", i);
        auto item = r.object(array->get(i), path);
        if (!item) continue;
        FetchUri uri;
        if (auto s = r.string(item->get("uri"), path + "/uri")) uri.uri = *s;
        for (auto [key, field] :
             {std::pair{"extract", &uri.extract}, std::pair{"executable", &uri.executable},
              std::pair{"cache", &uri.cache}}) {
          if (!present(item, key)) continue;
          if (auto b = r.boolean(item->get(key), path + "/" + key)) *field = *b;
        }
        if (present(item, "destPath")) uri.destPath = r.string(item->get("destPath"), path);
        out.push_back(std::move(uri));
      }
    }
  }
  if (present(object, "uris")) {
    auto uris = r.stringList(object->get("uris"), "/uris");
    if (!uris.empty() && present(object, "fetch") && !out.empty()) {
      r.fail("/", "AppDefinition must not contain both 'uris' and 'fetch'");
    }
    if (!present(object, "fetch")) out.clear();
    for (auto& uri : uris) {
      FetchUri entry;
      entry.uri = uri;
      out.push_back(std::move(entry));
    }
  }
}

// Reads every definition field present in `object` into `app` (which holds the defaults or the
// current version), then validates the whole.
void readFields(JsonReader& r, const Object::Ptr& object, App& app) {
  if (present(object, "cmd")) {
    app.cmd = r.string(object->get("cmd"), "/cmd");
  } else if (object->has("cmd")) {
    app.cmd.reset();
  }
  if (present(object, "args")) {
    app.args = r.stringList(object->get("args"), "/args");
  } else if (object->has("args")) {
    app.args.reset();
  }
  for (auto [key, field] :
       {std::pair{"cpus", &app.cpus}, std::pair{"mem", &app.mem}, std::pair{"disk", &app.disk},
        std::pair{"backoffSeconds", &app.backoffSeconds},
        std::pair{"backoffFactor", &app.backoffFactor},
        std::pair{"maxLaunchDelaySeconds", &app.maxLaunchDelaySeconds}}) {
    if (!present(object, key)) continue;
    if (auto n = r.number(object->get(key), std::string("/") + key)) *field = *n;
  }
  for (auto [key, field] :
       {std::pair{"gpus", &app.gpus}, std::pair{"instances", &app.instances},
        std::pair{"taskKillGracePeriodSeconds", &app.taskKillGracePeriodSeconds}}) {
    if (!present(object, key)) continue;
    if (auto n = r.integer(object->get(key), std::string("/") + key)) *field = *n;
  }
  if (object->has("env")) {
    app.env.clear();
    if (present(object, "env")) {
      auto env = r.object(object->get("env"), "/env");
      for (const auto& [key, value] : env ? *env : Object()) {
        if (value.isString()) {
          app.env[key] = value.convert<std::string>();
        } else {
          r.fail("/env/" + key, "Secrets are not supported: env values must be strings");
        }
      }
    }
  }
  if (object->has("labels")) {
    app.labels = present(object, "labels") ? r.stringMap(object->get("labels"), "/labels")
                                           : std::map<std::string, std::string>{};
  }
  if (present(object, "constraints"))
    readConstraints(r, object->get("constraints"), app.constraints);
  if (object->has("container")) {
    app.container =
        present(object, "container") ? readContainer(r, object->get("container")) : std::nullopt;
  }
  // Marathon 1.5's networks: [{"mode": "container/bridge"}] etc. set the Docker network.
  if (present(object, "networks") && app.container && app.container->docker) {
    if (auto array = r.array(object->get("networks"), "/networks"); array && array->size() > 0) {
      auto first = r.object(array->get(0), "/networks(0)");
      if (first && present(first, "mode")) {
        auto mode = r.string(first->get("mode"), "/networks(0)/mode");
        if (mode == "container/bridge") app.container->docker->network = "BRIDGE";
        if (mode == "container") app.container->docker->network = "USER";
        if (mode == "host") app.container->docker->network = "HOST";
      }
    }
  }
  if (present(object, "portDefinitions")) {
    readPortDefinitions(r, object->get("portDefinitions"), app.portDefinitions);
  } else if (present(object, "ports")) {
    // The older `ports: [0, 0]`.
    app.portDefinitions.clear();
    if (auto array = r.array(object->get("ports"), "/ports")) {
      for (size_t i = 0; i < array->size(); ++i) {
        PortDefinition port;
        if (auto n = r.integer(array->get(i), fmt::format("/ports({})", i))) port.port = *n;
        app.portDefinitions.push_back(std::move(port));
      }
    }
  }
  if (present(object, "requirePorts")) {
    if (auto b = r.boolean(object->get("requirePorts"), "/requirePorts")) app.requirePorts = *b;
  }
  if (present(object, "healthChecks")) {
    readHealthChecks(r, object->get("healthChecks"), app.healthChecks);
  }
  if (present(object, "upgradeStrategy")) {
    if (auto upgrade = r.object(object->get("upgradeStrategy"), "/upgradeStrategy")) {
      UpgradeStrategy strategy;
      if (present(upgrade, "minimumHealthCapacity")) {
        if (auto n = r.number(upgrade->get("minimumHealthCapacity"),
                              "/upgradeStrategy/minimumHealthCapacity")) {
          strategy.minimumHealthCapacity = *n;
        }
      }
      if (present(upgrade, "maximumOverCapacity")) {
        if (auto n = r.number(upgrade->get("maximumOverCapacity"),
                              "/upgradeStrategy/maximumOverCapacity")) {
          strategy.maximumOverCapacity = *n;
        }
      }
      app.upgradeStrategy = strategy;
    }
  }
  if (present(object, "killSelection")) {
    if (auto s = r.string(object->get("killSelection"), "/killSelection")) {
      app.killSelection = *s;
      if (*s != "YOUNGEST_FIRST" && *s != "OLDEST_FIRST") {
        r.fail("/killSelection", "error.expected.validenumvalue");
      }
    }
  }
  readFetch(r, object, app.fetch);
  if (present(object, "user")) {
    app.user = r.string(object->get("user"), "/user");
  } else if (object->has("user")) {
    app.user.reset();
  }
  if (object->has("acceptedResourceRoles")) {
    app.acceptedResourceRoles =
        present(object, "acceptedResourceRoles")
            ? r.stringList(object->get("acceptedResourceRoles"), "/acceptedResourceRoles")
            : std::vector<std::string>{};
  }
  if (present(object, "dependencies")) {
    app.dependencies.clear();
    for (auto& dependency : r.stringList(object->get("dependencies"), "/dependencies")) {
      auto id = normaliseAppId(dependency, "/");
      if (!id) {
        r.fail("/dependencies", std::string(kIdPattern));
        continue;
      }
      app.dependencies.push_back(*id);
    }
  }
  if (present(object, "unreachableStrategy")) {
    const Var& value = object->get("unreachableStrategy");
    if (value.isString() && value.convert<std::string>() == "disabled") {
      app.unreachableStrategy = UnreachableStrategy{true, 0, 0};
    } else if (auto strategy = r.object(value, "/unreachableStrategy")) {
      UnreachableStrategy s;
      if (present(strategy, "inactiveAfterSeconds")) {
        if (auto n = r.integer(strategy->get("inactiveAfterSeconds"),
                               "/unreachableStrategy/inactiveAfterSeconds")) {
          s.inactiveAfterSeconds = *n;
        }
      }
      if (present(strategy, "expungeAfterSeconds")) {
        if (auto n = r.integer(strategy->get("expungeAfterSeconds"),
                               "/unreachableStrategy/expungeAfterSeconds")) {
          s.expungeAfterSeconds = *n;
        }
      }
      app.unreachableStrategy = s;
    }
  }
}

void validate(JsonReader& r, const App& app) {
  auto atLeast = [&](std::string path, double value, double minimum) {
    if (value < minimum) {
      r.fail(path, fmt::format("got {}, expected {} or more", formatNumber(value),
                               formatNumber(minimum)));
    }
  };
  atLeast("/cpus", app.cpus, 0.0);
  atLeast("/mem", app.mem, 0.0);
  atLeast("/disk", app.disk, 0.0);
  atLeast("/backoffSeconds", app.backoffSeconds, 0.0);
  atLeast("/backoffFactor", app.backoffFactor, 1.0);
  atLeast("/maxLaunchDelaySeconds", app.maxLaunchDelaySeconds, 0.0);
  if (app.gpus < 0) r.fail("/gpus", fmt::format("got {}, expected 0 or more", app.gpus));
  if (app.instances < 0) {
    r.fail("/instances", fmt::format("got {}, expected 0 or more", app.instances));
  }
  if (app.taskKillGracePeriodSeconds < 0) {
    r.fail("/taskKillGracePeriodSeconds",
           fmt::format("got {}, expected 0 or more", app.taskKillGracePeriodSeconds));
  }
  const auto& upgrade = app.upgradeStrategy;
  if (upgrade.minimumHealthCapacity < 0.0 || upgrade.minimumHealthCapacity > 1.0) {
    r.fail("/upgradeStrategy/minimumHealthCapacity",
           fmt::format("got {}, expected between 0.0 and 1.0",
                       formatNumber(upgrade.minimumHealthCapacity)));
  }
  if (upgrade.maximumOverCapacity < 0.0 || upgrade.maximumOverCapacity > 1.0) {
    r.fail("/upgradeStrategy/maximumOverCapacity",
           fmt::format("got {}, expected between 0.0 and 1.0",
                       formatNumber(upgrade.maximumOverCapacity)));
  }
  const bool hasCmd = app.cmd.has_value() && !app.cmd->empty();
  const bool hasArgs = app.args.has_value();
  if ((hasCmd && hasArgs) || (!hasCmd && !hasArgs && !app.container)) {
    r.fail("/", std::string(kCmdArgsContainer));
  }
  // Marathon's rule: one Mesos-level check at most (TaskInfo has room for one), COMMAND checks
  // not counted (older versions allowed several).
  const auto mesosChecks =
      std::count_if(app.healthChecks.begin(), app.healthChecks.end(),
                    [](const HealthCheck& c) { return c.mesosLevel() && c.kind() != "COMMAND"; });
  if (mesosChecks > 1) r.fail("/", "AppDefinition can contain at most one Mesos health check");
  const size_t ports = app.portCount();
  for (size_t i = 0; i < app.healthChecks.size(); ++i) {
    const auto& check = app.healthChecks[i];
    if (check.portIndex &&
        (*check.portIndex < 0 || static_cast<size_t>(*check.portIndex) >= ports)) {
      r.fail(fmt::format("/healthChecks({})", i),
             "Health check port indices must address an element of the ports array or "
             "container port mappings.");
    }
  }
  {
    std::set<int> seen;
    for (size_t i = 0; i < app.portDefinitions.size(); ++i) {
      int port = app.portDefinitions[i].port;
      if (port != 0 && !seen.insert(port).second) {
        r.fail("/portDefinitions", "Ports must be unique.");
        break;
      }
    }
  }
}

std::variant<App, AppError> finish(std::vector<Violation> violations, App app) {
  if (!violations.empty()) {
    return AppError{422, "Object is not valid", std::move(violations)};
  }
  return app;
}

std::variant<Object::Ptr, AppError> parseObject(std::string_view json) {
  Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(json));
  } catch (const Poco::Exception& e) {
    return AppError{400, "Invalid JSON", {Violation{"/", {e.displayText()}}}};
  }
  if (!isObject(parsed)) {
    return AppError{422, "Object is not valid", {Violation{"/", {"error.expected.jsobject"}}}};
  }
  return parsed.extract<Object::Ptr>();
}

}  // namespace

size_t App::portCount() const {
  if (container && container->docker &&
      (container->docker->network == "BRIDGE" || container->docker->network == "USER")) {
    return container->portMappings.size();
  }
  return portDefinitions.size();
}

bool HealthCheck::mesosLevel() const {
  return protocol == "COMMAND" || protocol.starts_with("MESOS_");
}

std::string_view HealthCheck::kind() const {
  std::string_view name = protocol;
  if (name.starts_with("MESOS_")) name.remove_prefix(6);
  return name;
}

const HealthCheck* App::agentHealthCheck() const {
  for (const auto& check : healthChecks) {
    if (check.mesosLevel()) return &check;
  }
  return healthChecks.empty() ? nullptr : &healthChecks.front();
}

bool App::configDiffers(const App& other) const {
  App a = *this;
  App b = other;
  a.instances = b.instances = 0;
  a.version = b.version = {};
  a.lastScalingAt = b.lastScalingAt = {};
  a.lastConfigChangeAt = b.lastConfigChangeAt = {};
  return appToJson(a) != appToJson(b);
}

std::string AppError::toJson() const {
  Object out(Poco::JSON_PRESERVE_KEY_ORDER);
  out.set("message", message);
  if (!details.empty()) {
    Array::Ptr array = new Array;
    for (const auto& violation : details) {
      Object::Ptr item = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      item->set("path", violation.path);
      Array::Ptr errors = new Array;
      for (const auto& error : violation.errors) errors->add(error);
      item->set("errors", errors);
      array->add(item);
    }
    out.set("details", array);
  }
  std::ostringstream text;
  out.stringify(text);
  return text.str();
}

std::optional<std::string> normaliseAppId(std::string_view id, std::string_view base) {
  std::vector<std::string> segments;
  auto push = [&](std::string_view path) {
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      std::string_view segment = path.substr(
          start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      if (segment == "..") {
        if (segments.empty()) return false;
        segments.pop_back();
      } else if (!segment.empty() && segment != ".") {
        if (!validSegment(segment)) return false;
        segments.emplace_back(segment);
      }
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    return true;
  };
  if (!id.starts_with('/') && !push(base)) return std::nullopt;
  if (!push(id)) return std::nullopt;
  std::string out;
  for (const auto& segment : segments) out += "/" + segment;
  return out.empty() ? "/" : out;
}

std::variant<App, AppError> parseApp(std::string_view json, Clock::time_point now) {
  auto parsed = parseObject(json);
  if (auto* error = std::get_if<AppError>(&parsed)) return *error;
  auto object = std::get<Object::Ptr>(parsed);
  std::vector<Violation> violations;
  JsonReader r(violations);
  App app;
  app.portDefinitions = {PortDefinition{}};
  if (!present(object, "id")) {
    r.fail("/id", "error.path.missing");
  } else if (auto id = r.string(object->get("id"), "/id")) {
    auto normalised = normaliseAppId(*id);
    if (!normalised || *normalised == "/") {
      r.fail("/id", std::string(kIdPattern));
    } else {
      app.id = *normalised;
    }
  }
  readFields(r, object, app);
  // A container with BRIDGE/USER networking takes its ports from portMappings.
  if (!present(object, "portDefinitions") && !present(object, "ports") && app.container &&
      app.container->docker && app.container->docker->network != "HOST") {
    app.portDefinitions.clear();
  }
  validate(r, app);
  app.version = app.lastScalingAt = app.lastConfigChangeAt = now;
  return finish(std::move(violations), std::move(app));
}

std::variant<App, AppError> updateApp(const App& current, std::string_view json,
                                      Clock::time_point now) {
  auto parsed = parseObject(json);
  if (auto* error = std::get_if<AppError>(&parsed)) return *error;
  auto object = std::get<Object::Ptr>(parsed);
  std::vector<Violation> violations;
  JsonReader r(violations);
  App app = current;
  // The id is the path's; read-only fields are ignored.
  object->remove("id");
  for (const auto& key : kReadOnly) object->remove(key);
  readFields(r, object, app);
  validate(r, app);
  app.version = now;
  if (current.configDiffers(app)) {
    app.lastConfigChangeAt = now;
    app.lastScalingAt = now;
  } else if (current.instances != app.instances) {
    app.lastScalingAt = now;
  }
  return finish(std::move(violations), std::move(app));
}

}  // namespace tessera::modules::marathon

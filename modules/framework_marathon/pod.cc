// Reading and validating pod definitions (POST/PUT /v2/pods): Marathon's field names and
// defaults, its violation paths (`/containers(0)/resources/cpus`), and the pod task ids.
#include "modules/framework_marathon/pod.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "modules/framework_marathon/json_reader.h"
#include "modules/framework_marathon/routes_util.h"

namespace tessera::modules::marathon {

namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr std::string_view kInstanceMarker = ".instance-";

// The JSON reader with the two checks pod fields add.
class PodReader : public JsonReader {
 public:
  using JsonReader::JsonReader;

  // `key` of `object` when present and not null.
  static bool has(const Object::Ptr& object, const std::string& key) {
    return object && object->has(key) && !object->get(key).isEmpty();
  }
  void atLeast(const std::string& path, double value, double minimum) {
    if (value < minimum) fail(path, fmt::format("got {}, expected {} or more", value, minimum));
  }
};

// A container or endpoint name: Marathon's pattern for names (lower-case letters, digits, '-').
bool validName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

void readResources(PodReader& r, const Object::Ptr& object, const std::string& path,
                   PodResources& out) {
  if (!object) return;
  if (r.has(object, "cpus")) out.cpus = r.number(object->get("cpus"), path + "/cpus").value_or(0);
  if (r.has(object, "mem")) out.mem = r.number(object->get("mem"), path + "/mem").value_or(0);
  if (r.has(object, "disk")) out.disk = r.number(object->get("disk"), path + "/disk").value_or(0);
  if (r.has(object, "gpus")) out.gpus = r.integer(object->get("gpus"), path + "/gpus").value_or(0);
  r.atLeast(path + "/cpus", out.cpus, 0);
  r.atLeast(path + "/mem", out.mem, 0);
  r.atLeast(path + "/disk", out.disk, 0);
  r.atLeast(path + "/gpus", out.gpus, 0);
}

void readEndpoints(PodReader& r, const Var& value, const std::string& base,
                   std::vector<PodEndpoint>& out) {
  auto array = r.array(value, base);
  if (!array) return;
  std::set<std::string> names;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("{}({})", base, i);
    auto object = r.object(array->get(i), path);
    if (!object) continue;
    PodEndpoint endpoint;
    if (!r.has(object, "name")) {
      r.fail(path + "/name", "error.path.missing");
    } else if (auto name = r.string(object->get("name"), path + "/name")) {
      endpoint.name = *name;
      if (!validName(endpoint.name)) r.fail(path + "/name", "must be a valid endpoint name");
      if (!names.insert(endpoint.name).second) {
        r.fail(path + "/name", "endpoint names must be unique");
      }
    }
    if (r.has(object, "containerPort")) {
      endpoint.containerPort = r.integer(object->get("containerPort"), path + "/containerPort");
    }
    if (r.has(object, "hostPort")) {
      endpoint.hostPort = r.integer(object->get("hostPort"), path + "/hostPort");
      if (endpoint.hostPort && (*endpoint.hostPort < 0 || *endpoint.hostPort > 65535)) {
        r.fail(path + "/hostPort", "must be between 0 and 65535");
      }
    }
    if (r.has(object, "protocol")) {
      endpoint.protocol.clear();
      if (auto list = r.array(object->get("protocol"), path + "/protocol")) {
        for (size_t j = 0; j < list->size(); ++j) {
          if (auto p = r.string(list->get(j), fmt::format("{}/protocol({})", path, j))) {
            endpoint.protocol.push_back(*p);
          }
        }
      }
    }
    if (r.has(object, "labels"))
      endpoint.labels = r.stringMap(object->get("labels"), path + "/labels");
    out.push_back(std::move(endpoint));
  }
}

// `containers[].healthCheck`: one of http, tcp, exec, whose endpoint (http, tcp) must be one of
// the container's own.
void readHealthCheck(PodReader& r, const Object::Ptr& object, const std::string& path,
                     const PodContainer& container, PodHealthCheck& out) {
  if (!object) return;
  int kinds = 0;
  for (const char* kind : {"http", "tcp", "exec"}) {
    if (r.has(object, kind)) {
      ++kinds;
      out.type = kind;
    }
  }
  if (kinds != 1) {
    r.fail(path, "must specify a single type of check: http, tcp or exec");
    return;
  }
  const std::string at = path + "/" + out.type;
  auto check = r.object(object->get(out.type), at);
  if (!check) return;
  if (out.type == "exec") {
    auto command =
        r.has(check, "command") ? r.object(check->get("command"), at + "/command") : nullptr;
    if (!command) {
      r.fail(at + "/command", "error.path.missing");
    } else if (r.has(command, "shell")) {
      out.shell = r.string(command->get("shell"), at + "/command/shell");
      if (out.shell && out.shell->empty()) r.fail(at + "/command/shell", "must not be empty");
    } else if (r.has(command, "argv")) {
      if (auto argv = r.array(command->get("argv"), at + "/command/argv")) {
        for (size_t i = 0; i < argv->size(); ++i) {
          if (auto arg = r.string(argv->get(i), fmt::format("{}/command/argv({})", at, i))) {
            out.argv.push_back(*arg);
          }
        }
      }
      if (out.argv.empty()) r.fail(at + "/command/argv", "must not be empty");
    } else {
      r.fail(at + "/command", "must have either shell or argv");
    }
  } else {
    if (!r.has(check, "endpoint")) {
      r.fail(at + "/endpoint", "error.path.missing");
    } else if (auto endpoint = r.string(check->get("endpoint"), at + "/endpoint")) {
      out.endpoint = *endpoint;
      const bool known = std::any_of(container.endpoints.begin(), container.endpoints.end(),
                                     [&](const PodEndpoint& e) { return e.name == *endpoint; });
      if (!known) {
        r.fail(at + "/endpoint",
               fmt::format("must name an endpoint of container '{}'", container.name));
      }
    }
    if (out.type == "http") {
      if (r.has(check, "path")) out.path = r.string(check->get("path"), at + "/path");
      if (r.has(check, "scheme")) {
        if (auto scheme = r.string(check->get("scheme"), at + "/scheme")) {
          out.scheme = *scheme;
          if (out.scheme != "HTTP" && out.scheme != "HTTPS") {
            r.fail(at + "/scheme", "error.expected.validenumvalue");
          }
        }
      }
    }
  }
  for (auto [key, field] : {std::pair{"gracePeriodSeconds", &out.gracePeriodSeconds},
                            std::pair{"intervalSeconds", &out.intervalSeconds},
                            std::pair{"maxConsecutiveFailures", &out.maxConsecutiveFailures},
                            std::pair{"timeoutSeconds", &out.timeoutSeconds},
                            std::pair{"delaySeconds", &out.delaySeconds}}) {
    if (!r.has(object, key)) continue;
    if (auto n = r.integer(object->get(key), path + "/" + key)) {
      if (*n < 0) r.fail(path + "/" + key, fmt::format("got {}, expected 0 or more", *n));
      *field = *n;
    }
  }
}

void readContainers(PodReader& r, const Var& value, std::vector<PodContainer>& out) {
  auto array = r.array(value, "/containers");
  if (!array) return;
  if (array->size() == 0) r.fail("/containers", "must not be empty");
  std::set<std::string> names;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("/containers({})", i);
    auto object = r.object(array->get(i), path);
    if (!object) continue;
    PodContainer container;
    if (!r.has(object, "name")) {
      r.fail(path + "/name", "error.path.missing");
    } else if (auto name = r.string(object->get("name"), path + "/name")) {
      container.name = *name;
      if (!validName(container.name)) {
        r.fail(path + "/name",
               "must fully match regular expression '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'");
      } else if (!names.insert(container.name).second) {
        r.fail(path + "/name", "container names are not unique");
      }
    }
    if (!r.has(object, "resources")) {
      r.fail(path + "/resources", "error.path.missing");
    } else {
      readResources(r, r.object(object->get("resources"), path + "/resources"), path + "/resources",
                    container.resources);
    }
    if (r.has(object, "image")) {
      r.fail(path + "/image",
             "container images are not supported for pods here: give the container an `exec` "
             "command");
    }
    if (!r.has(object, "exec")) {
      r.fail(path + "/exec", "error.path.missing");
    } else if (auto exec = r.object(object->get("exec"), path + "/exec")) {
      auto command =
          r.has(exec, "command") ? r.object(exec->get("command"), path + "/exec/command") : nullptr;
      if (!command || !r.has(command, "shell")) {
        r.fail(path + "/exec/command/shell", "error.path.missing");
      } else if (auto shell = r.string(command->get("shell"), path + "/exec/command/shell")) {
        container.command = *shell;
        if (container.command.empty()) r.fail(path + "/exec/command/shell", "must not be empty");
      }
    }
    if (r.has(object, "environment")) {
      container.environment = r.stringMap(object->get("environment"), path + "/environment");
    }
    if (r.has(object, "labels")) {
      container.labels = r.stringMap(object->get("labels"), path + "/labels");
    }
    if (r.has(object, "endpoints")) {
      readEndpoints(r, object->get("endpoints"), path + "/endpoints", container.endpoints);
    }
    if (r.has(object, "healthCheck")) {
      PodHealthCheck check;
      readHealthCheck(r, r.object(object->get("healthCheck"), path + "/healthCheck"),
                      path + "/healthCheck", container, check);
      container.healthCheck = std::move(check);
    }
    if (r.has(object, "volumeMounts")) {
      auto mounts = r.array(object->get("volumeMounts"), path + "/volumeMounts");
      if (mounts && mounts->size() > 0) {
        r.fail(path + "/volumeMounts", "volumes are not supported for pods yet");
      }
    }
    out.push_back(std::move(container));
  }
}

void readScaling(PodReader& r, const Var& value, Pod& pod) {
  auto object = r.object(value, "/scaling");
  if (!object) return;
  if (r.has(object, "kind")) {
    auto kind = r.string(object->get("kind"), "/scaling/kind");
    if (kind && *kind != "fixed") r.fail("/scaling/kind", "must be 'fixed'");
  }
  if (r.has(object, "instances")) {
    pod.instances = r.integer(object->get("instances"), "/scaling/instances").value_or(0);
  }
  if (r.has(object, "maxInstances")) {
    pod.maxInstances = r.integer(object->get("maxInstances"), "/scaling/maxInstances");
  }
  if (pod.instances < 0) {
    r.fail("/scaling/instances", fmt::format("got {}, expected 0 or more", pod.instances));
  }
  if (pod.maxInstances && *pod.maxInstances < pod.instances) {
    r.fail("/scaling/maxInstances", "must be at least instances");
  }
}

void readConstraintObjects(PodReader& r, const Var& value, std::vector<Constraint>& out) {
  static const std::set<std::string, std::less<>> kOperators = {
      "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"};
  const std::string base = "/scheduling/placement/constraints";
  auto array = r.array(value, base);
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("{}({})", base, i);
    auto object = r.object(array->get(i), path);
    if (!object) continue;
    Constraint constraint;
    if (auto field = r.has(object, "fieldName")
                         ? r.string(object->get("fieldName"), path + "/fieldName")
                         : std::nullopt) {
      constraint.field = *field;
    } else {
      r.fail(path + "/fieldName", "error.path.missing");
    }
    if (auto op = r.has(object, "operator") ? r.string(object->get("operator"), path + "/operator")
                                            : std::nullopt) {
      constraint.op = *op;
      if (!kOperators.contains(constraint.op)) {
        r.fail(path + "/operator",
               "Constraint operator must be one of the following: [UNIQUE, "
               "CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS]");
      }
    } else {
      r.fail(path + "/operator", "error.path.missing");
    }
    if (r.has(object, "value")) constraint.value = r.string(object->get("value"), path + "/value");
    const bool needsValue = constraint.op == "CLUSTER" || constraint.op == "LIKE" ||
                            constraint.op == "UNLIKE" || constraint.op == "MAX_PER" ||
                            constraint.op == "IS";
    if (needsValue && !constraint.value) {
      r.fail(path + "/value",
             fmt::format("Value was not specified for operator {}", constraint.op));
    }
    out.push_back(std::move(constraint));
  }
}

void readScheduling(PodReader& r, const Var& value, Pod& pod) {
  auto object = r.object(value, "/scheduling");
  if (!object) return;
  if (r.has(object, "backoff")) {
    if (auto backoff = r.object(object->get("backoff"), "/scheduling/backoff")) {
      auto read = [&](const char* key, double& out) {
        if (r.has(backoff, key)) {
          out =
              r.number(backoff->get(key), fmt::format("/scheduling/backoff/{}", key)).value_or(out);
        }
      };
      read("backoff", pod.backoffSeconds);
      read("backoffFactor", pod.backoffFactor);
      read("maxLaunchDelay", pod.maxLaunchDelaySeconds);
      r.atLeast("/scheduling/backoff/backoff", pod.backoffSeconds, 0);
      r.atLeast("/scheduling/backoff/backoffFactor", pod.backoffFactor, 1);
      r.atLeast("/scheduling/backoff/maxLaunchDelay", pod.maxLaunchDelaySeconds, 0);
    }
  }
  if (r.has(object, "upgrade")) {
    if (auto upgrade = r.object(object->get("upgrade"), "/scheduling/upgrade")) {
      auto& strategy = pod.upgradeStrategy;
      for (auto [key, field] : {std::pair{"minimumHealthCapacity", &strategy.minimumHealthCapacity},
                                std::pair{"maximumOverCapacity", &strategy.maximumOverCapacity}}) {
        const std::string path = fmt::format("/scheduling/upgrade/{}", key);
        if (!r.has(upgrade, key)) continue;
        *field = r.number(upgrade->get(key), path).value_or(*field);
        if (*field < 0.0 || *field > 1.0) {
          r.fail(path, fmt::format("got {}, expected between 0.0 and 1.0", *field));
        }
      }
    }
  }
  if (r.has(object, "placement")) {
    if (auto placement = r.object(object->get("placement"), "/scheduling/placement")) {
      if (r.has(placement, "constraints")) {
        readConstraintObjects(r, placement->get("constraints"), pod.constraints);
      }
      if (r.has(placement, "acceptedResourceRoles")) {
        const std::string path = "/scheduling/placement/acceptedResourceRoles";
        if (auto roles = r.array(placement->get("acceptedResourceRoles"), path)) {
          for (size_t i = 0; i < roles->size(); ++i) {
            if (auto role = r.string(roles->get(i), path))
              pod.acceptedResourceRoles.push_back(*role);
          }
        }
      }
    }
  }
  if (r.has(object, "killSelection")) {
    if (auto kill = r.string(object->get("killSelection"), "/scheduling/killSelection")) {
      pod.killSelection = *kill;
      if (*kill != "YOUNGEST_FIRST" && *kill != "OLDEST_FIRST") {
        r.fail("/scheduling/killSelection", "must be YOUNGEST_FIRST or OLDEST_FIRST");
      }
    }
  }
}

void readNetworks(PodReader& r, const Var& value, Pod& pod) {
  auto array = r.array(value, "/networks");
  if (!array) return;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string path = fmt::format("/networks({})", i);
    auto object = r.object(array->get(i), path);
    if (!object || !r.has(object, "mode")) continue;
    if (auto mode = r.string(object->get("mode"), path + "/mode")) {
      if (*mode != "host") {
        r.fail(path + "/mode", "only host networking is supported for pods");
      }
      pod.networkMode = *mode;
    }
  }
}

}  // namespace

PodResources Pod::instanceResources() const {
  PodResources total = executorResources;
  for (const auto& container : containers) {
    total.cpus += container.resources.cpus;
    total.mem += container.resources.mem;
    total.disk += container.resources.disk;
    total.gpus += container.resources.gpus;
  }
  return total;
}

std::variant<Pod, AppError> parsePod(std::string_view json, Clock::time_point now) {
  Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(json));
  } catch (const Poco::Exception& e) {
    return AppError{400, "Invalid JSON", {Violation{"/", {e.displayText()}}}};
  }
  if (parsed.type() != typeid(Object::Ptr)) {
    return AppError{422, "Object is not valid", {Violation{"/", {"error.expected.jsobject"}}}};
  }
  auto object = parsed.extract<Object::Ptr>();
  std::vector<Violation> violations;
  PodReader r(violations);
  Pod pod;
  pod.version = now;
  if (!r.has(object, "id")) {
    r.fail("/id", "error.path.missing");
  } else if (auto id = r.string(object->get("id"), "/id")) {
    auto normalised = normaliseAppId(*id);
    if (!normalised || *normalised == "/") {
      r.fail("/id", "must be a valid path");
    } else {
      pod.id = *normalised;
    }
  }
  if (!r.has(object, "containers")) {
    r.fail("/containers", "error.path.missing");
  } else {
    readContainers(r, object->get("containers"), pod.containers);
  }
  if (r.has(object, "labels")) pod.labels = r.stringMap(object->get("labels"), "/labels");
  if (r.has(object, "environment")) {
    pod.environment = r.stringMap(object->get("environment"), "/environment");
  }
  if (r.has(object, "scaling")) readScaling(r, object->get("scaling"), pod);
  if (r.has(object, "scheduling")) readScheduling(r, object->get("scheduling"), pod);
  if (r.has(object, "networks")) readNetworks(r, object->get("networks"), pod);
  if (r.has(object, "volumes")) {
    auto volumes = r.array(object->get("volumes"), "/volumes");
    if (volumes && volumes->size() > 0)
      r.fail("/volumes", "volumes are not supported for pods yet");
  }
  if (r.has(object, "executorResources")) {
    readResources(r, r.object(object->get("executorResources"), "/executorResources"),
                  "/executorResources", pod.executorResources);
  }
  if (r.has(object, "user")) pod.user = r.string(object->get("user"), "/user");
  {
    // Host ports are the agent's: two endpoints of one instance cannot ask for the same one.
    std::set<int> ports;
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      for (size_t j = 0; j < pod.containers[i].endpoints.size(); ++j) {
        const auto& port = pod.containers[i].endpoints[j].hostPort;
        if (port && *port != 0 && !ports.insert(*port).second) {
          r.fail(fmt::format("/containers({})/endpoints({})/hostPort", i, j),
                 "host ports must be unique within a pod");
        }
      }
    }
  }
  if (!violations.empty()) return AppError{422, "Object is not valid", std::move(violations)};
  return pod;
}

std::string newInstanceId(std::string_view podId) {
  std::string name(podId.substr(podId.starts_with('/') ? 1 : 0));
  std::replace(name.begin(), name.end(), '/', '_');
  return fmt::format("{}{}{}", name, kInstanceMarker, newUuid());
}

std::optional<PodTaskName> parsePodTaskId(std::string_view taskId) {
  const size_t marker = taskId.find(kInstanceMarker);
  if (marker == std::string_view::npos || marker == 0) return std::nullopt;
  const size_t dot = taskId.rfind('.');
  if (dot <= marker + kInstanceMarker.size() || dot + 1 >= taskId.size()) return std::nullopt;
  PodTaskName name;
  name.instanceId = std::string(taskId.substr(0, dot));
  name.container = std::string(taskId.substr(dot + 1));
  std::string pod(taskId.substr(0, marker));
  std::replace(pod.begin(), pod.end(), '_', '/');
  name.podId = "/" + pod;
  return name;
}

}  // namespace tessera::modules::marathon

#pragma once

// A Marathon pod definition (Marathon 1.4's `Pod` of /v2/pods, REST field names) with Marathon's
// defaults: containers that run together as one Mesos task group (one default executor) on one
// agent, `scaling.instances` copies of the group. pod.cc reads and validates one (422 with
// `details`, the same AppError as apps); pod_json.cc writes it back and reads the stored form.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "modules/framework_marathon/app.h"

namespace tessera::modules::marathon {

/// `containers[].resources` and `executorResources`.
struct PodResources {
  double cpus = 0;
  double mem = 0;
  double disk = 0;
  int gpus = 0;
};

/// `containers[].endpoints[]`: in host networking a host port (0: any offered port).
struct PodEndpoint {
  std::string name;
  std::optional<int> containerPort;
  std::optional<int> hostPort;
  std::vector<std::string> protocol = {"tcp"};
  std::map<std::string, std::string> labels;
};

/// `containers[].healthCheck` (Marathon's pod HealthCheck): exactly one of `http` {endpoint,
/// path, scheme}, `tcp` {endpoint} or `exec` {command: {shell} or {argv}}, with the timings.
/// It becomes the container's TaskInfo.health_check (a Mesos-level check: the agent runs it);
/// http and tcp probe the endpoint's host port (host networking).
struct PodHealthCheck {
  std::string type;                  // "http", "tcp" or "exec"
  std::string endpoint;              // http, tcp: the name of one of the container's endpoints
  std::optional<std::string> path;   // http
  std::string scheme = "HTTP";       // http: HTTP or HTTPS
  std::optional<std::string> shell;  // exec: `command.shell`
  std::vector<std::string> argv;     // exec: `command.argv` (when no shell)
  int gracePeriodSeconds = 300;
  int intervalSeconds = 60;
  int maxConsecutiveFailures = 3;
  int timeoutSeconds = 20;
  int delaySeconds = 15;
};

/// `containers[]`: one task of each instance.
struct PodContainer {
  std::string name;
  PodResources resources{1.0, 128.0, 0.0, 0};  // Marathon's container defaults
  std::string command;                         // `exec.command.shell`
  std::map<std::string, std::string> environment;
  std::map<std::string, std::string> labels;
  std::vector<PodEndpoint> endpoints;
  std::optional<PodHealthCheck> healthCheck;
};

/// One version of a pod. `id` is absolute and normalised like an app id.
struct Pod {
  std::string id;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> environment;  // given to every container
  std::vector<PodContainer> containers;
  int instances = 1;  // `scaling: {"kind": "fixed", "instances": N}`
  std::optional<int> maxInstances;
  std::string networkMode = "host";  // `networks[0].mode`; only host networking is supported
  // `scheduling`
  double backoffSeconds = 1.0;
  double backoffFactor = 1.15;
  double maxLaunchDelaySeconds = 300.0;
  UpgradeStrategy upgradeStrategy;
  std::vector<Constraint> constraints;  // `placement.constraints[]`: {fieldName, operator, value}
  std::vector<std::string> acceptedResourceRoles;
  std::string killSelection = "YOUNGEST_FIRST";
  PodResources executorResources{0.1, 32.0, 10.0, 0};  // what the default executor needs
  std::optional<std::string> user;
  Clock::time_point version;

  /// What one instance takes from an offer: every container and the executor.
  PodResources instanceResources() const;
};

/// Reads a whole pod definition (POST /v2/pods, PUT /v2/pods/{id}). Read-only fields a client
/// sends back (`version`, `status`, `instances`, ...) are ignored. `now` becomes its version.
/// 400 when not a JSON object; 422 with `details` paths such as `/containers(0)/resources/cpus`.
std::variant<Pod, AppError> parsePod(std::string_view json, Clock::time_point now);

/// The pod as Marathon returns it (GET /v2/pods/{id}), every default spelled out.
std::string podToJson(const Pod& pod);

/// Reads a pod back from podToJson()'s output (the module's state store), keeping its version;
/// nullopt when it is not a valid pod.
std::optional<Pod> podFromJson(std::string_view json);

/// The id of a new instance of `podId`: `<id without the leading '/', '/' as '_'>.instance-<uuid>`
/// as Marathon's; its containers' task ids are `<instance id>.<container name>`.
std::string newInstanceId(std::string_view podId);

/// The parts of a pod task id: the instance id, the pod id and the container name; nullopt when
/// `taskId` is not of that form.
struct PodTaskName {
  std::string instanceId;
  std::string podId;
  std::string container;
};
std::optional<PodTaskName> parsePodTaskId(std::string_view taskId);

}  // namespace tessera::modules::marathon

#pragma once

// A Marathon app definition (Marathon 1.x's `AppDefinition`, REST field names), with Marathon's
// defaults. app.cc reads one from the JSON of POST/PUT /v2/apps (validating it: 422 details),
// merges a partial update into an existing one, and writes it back as Marathon does.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::modules::marathon {

using Clock = std::chrono::system_clock;

/// `portDefinitions[]`: a port the app asks for; `port` 0 = any (a service port is assigned).
struct PortDefinition {
  int port = 0;
  std::string protocol = "tcp";
  std::string name;
  std::map<std::string, std::string> labels;
};

/// `container.portMappings[]` (or `container.docker.portMappings[]`): BRIDGE networking.
struct PortMapping {
  int containerPort = 0;
  int hostPort = 0;  // 0 = any offered port
  int servicePort = 0;
  std::string protocol = "tcp";
  std::string name;
  std::map<std::string, std::string> labels;
};

/// `container.docker`.
struct DockerContainer {
  std::string image;
  std::string network = "HOST";  // HOST, BRIDGE, USER, NONE
  bool privileged = false;
  bool forcePullImage = false;
  std::vector<std::pair<std::string, std::string>> parameters;  // key, value
};

/// `container.volumes[]`.
struct Volume {
  std::string containerPath;
  std::string hostPath;
  std::string mode = "RW";
};

/// `container`: type DOCKER or MESOS.
struct Container {
  std::string type = "DOCKER";
  std::optional<DockerContainer> docker;
  std::vector<PortMapping> portMappings;
  std::vector<Volume> volumes;
};

/// `healthChecks[]`. `protocol` is kept as given (Marathon returns it so): HTTP, HTTPS and TCP are
/// Marathon-level checks of the task's host port; COMMAND, MESOS_HTTP, MESOS_HTTPS and MESOS_TCP
/// are Mesos-level checks (TaskInfo.health_check), MESOS_HTTP/MESOS_TCP of the container port
/// where the app maps one. Here the agent runs both kinds (docs/design.md).
struct HealthCheck {
  std::string protocol = "HTTP";
  std::string path = "/";
  std::optional<int> portIndex;  // defaults to 0 when neither portIndex nor port is given
  std::optional<int> port;
  std::string command;  // COMMAND: `command.value`
  int gracePeriodSeconds = 300;
  int intervalSeconds = 60;
  int timeoutSeconds = 20;
  int delaySeconds = 15;
  int maxConsecutiveFailures = 3;
  bool ignoreHttp1xx = false;  // HTTP and HTTPS only

  /// COMMAND and the MESOS_ protocols: the checks Marathon hands to Mesos.
  bool mesosLevel() const;
  /// What is probed, whichever runs it: HTTP, HTTPS, TCP or COMMAND.
  std::string_view kind() const;
};

/// `constraints[]`: `["hostname", "UNIQUE"]`, `["rack", "GROUP_BY", "3"]`, ...
struct Constraint {
  std::string field;
  std::string op;  // UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS
  std::optional<std::string> value;
};

/// `upgradeStrategy`.
struct UpgradeStrategy {
  double minimumHealthCapacity = 1.0;
  double maximumOverCapacity = 1.0;
};

/// `fetch[]` (and the older `uris[]`, read as fetch entries with extract=true).
struct FetchUri {
  std::string uri;
  bool extract = true;
  bool executable = false;
  bool cache = false;
  std::optional<std::string> destPath;
};

/// `unreachableStrategy` (Marathon's default: inactive after 0 s, expunged after 0 s); the
/// string "disabled" is kept as `disabled`.
struct UnreachableStrategy {
  bool disabled = false;
  int inactiveAfterSeconds = 0;
  int expungeAfterSeconds = 0;
};

/// One version of an app. `id` is absolute and normalised (`/prod/web/api`: lower-case segments,
/// no empty segment, no trailing slash).
struct App {
  std::string id;
  std::optional<std::string> cmd;
  std::optional<std::vector<std::string>> args;
  double cpus = 1.0;
  double mem = 128.0;
  double disk = 0.0;
  int gpus = 0;
  int instances = 1;
  std::map<std::string, std::string> env;  // only string values (secrets are not supported)
  std::map<std::string, std::string> labels;
  std::vector<Constraint> constraints;
  std::optional<Container> container;
  std::vector<PortDefinition> portDefinitions;  // default: one, port 0
  bool requirePorts = false;
  std::vector<HealthCheck> healthChecks;
  UpgradeStrategy upgradeStrategy;
  double backoffSeconds = 1.0;
  double backoffFactor = 1.15;
  double maxLaunchDelaySeconds = 300.0;          // the figure; Marathon 1.x documents 3600
  std::string killSelection = "YOUNGEST_FIRST";  // or OLDEST_FIRST
  int taskKillGracePeriodSeconds = 0;            // 0: the agent's default
  std::vector<FetchUri> fetch;
  std::optional<std::string> user;
  std::vector<std::string> acceptedResourceRoles;
  std::vector<std::string> dependencies;
  UnreachableStrategy unreachableStrategy;
  /// When this version was made; ISO-8601 UTC with milliseconds and `Z`.
  Clock::time_point version;
  /// `versionInfo`: the last change of `instances` only, and the last other change.
  Clock::time_point lastScalingAt;
  Clock::time_point lastConfigChangeAt;

  /// The host ports the app's tasks need: portMappings (BRIDGE/USER) or portDefinitions.
  size_t portCount() const;
  /// True when `other` differs from this in anything but `instances` (a restart is needed).
  bool configDiffers(const App& other) const;
  /// The one check the tasks' TaskInfo.health_check carries (Mesos has room for one): the
  /// Mesos-level one when there is one, else the first; null without checks.
  const HealthCheck* agentHealthCheck() const;
};

/// One validation failure: Marathon's `details[]` entry (`path` as `/cpus`, `/container/docker/
/// image`, `/healthChecks(0)/portIndex`).
struct Violation {
  std::string path;
  std::vector<std::string> errors;
};

/// Why a definition was refused: `status` 400 (not JSON) or 422 (`details` say what), with
/// Marathon's `message` ("Object is not valid" for 422).
struct AppError {
  int status = 422;
  std::string message;
  std::vector<Violation> details;
  /// Marathon's error body: {"message": ..., "details": [{"path", "errors"}]}.
  std::string toJson() const;
};

/// Normalises an app id: `prod//web/` and `/prod/web` are both `/prod/web`; relative ids are
/// made absolute under `base` (the group, "/" by default). Returns nullopt when a segment is
/// not a valid Marathon id segment (lower-case letters, digits, `-`, `.`; `.`/`..` handled).
std::optional<std::string> normaliseAppId(std::string_view id, std::string_view base = "/");

/// Reads a whole app definition (POST /v2/apps, PUT of a new app). Unknown and read-only fields
/// (`tasks`, `tasksRunning`, `deployments`, `versionInfo`, ...) are ignored. `now` becomes its
/// version.
std::variant<App, AppError> parseApp(std::string_view json, Clock::time_point now);

/// Applies a partial update (PUT/PATCH /v2/apps/{id}) to `current`: fields present in `json`
/// replace the current ones, the rest stay. `now` becomes the new version; versionInfo moves as
/// Marathon's does (scaling only vs config change).
std::variant<App, AppError> updateApp(const App& current, std::string_view json,
                                      Clock::time_point now);

/// The app as Marathon returns it (GET /v2/apps/{id}'s "app"), without task/count embeds; the
/// API layer adds those.
std::string appToJson(const App& app);

/// ISO-8601 UTC with milliseconds: `2026-12-07T04:24:05.123Z`.
std::string isoTimestamp(Clock::time_point time);

/// Reads an isoTimestamp() back (milliseconds optional, `Z` required); nullopt when malformed.
std::optional<Clock::time_point> parseIsoTimestamp(std::string_view text);

/// Reads an app back from appToJson()'s output (the module's state store), keeping its
/// `version` and `versionInfo`; nullopt when it is not a valid app.
std::optional<App> appFromJson(std::string_view json);

}  // namespace tessera::modules::marathon

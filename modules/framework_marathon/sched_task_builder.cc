#include "modules/framework_marathon/sched_task_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <random>

namespace tessera::modules::marathon {

namespace {

std::string upperSnake(std::string_view text) {
  std::string out;
  for (char c : text) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : '_');
  }
  return out;
}

bool bridged(const App& app) {
  return app.container && app.container->docker &&
         (app.container->docker->network == "BRIDGE" || app.container->docker->network == "USER");
}

// Marathon's TaskInfo name: the app id's segments, last first, joined by '.' (`api.web.prod`).
std::string taskName(std::string_view appId) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start < appId.size()) {
    size_t end = appId.find('/', start);
    if (end == std::string_view::npos) end = appId.size();
    if (end > start) segments.emplace_back(appId.substr(start, end - start));
    start = end + 1;
  }
  std::string name;
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    if (!name.empty()) name += '.';
    name += *it;
  }
  return name;
}

v1::ContainerInfo::DockerInfo::Network dockerNetwork(std::string_view network) {
  if (network == "BRIDGE") return v1::ContainerInfo::DockerInfo::BRIDGE;
  if (network == "USER") return v1::ContainerInfo::DockerInfo::USER;
  if (network == "NONE") return v1::ContainerInfo::DockerInfo::NONE;
  return v1::ContainerInfo::DockerInfo::HOST;
}

void addVolumes(const Container& container, v1::ContainerInfo& info) {
  for (const auto& volume : container.volumes) {
    auto* out = info.add_volumes();
    out->set_container_path(volume.containerPath);
    if (!volume.hostPath.empty()) out->set_host_path(volume.hostPath);
    out->set_mode(volume.mode == "RO" ? v1::Volume::RO : v1::Volume::RW);
  }
}

// The port a health check on the agent probes: an explicit `port`, else the app port at
// `portIndex`: for a Mesos-level check (MESOS_HTTP, MESOS_TCP) the mapping's container port where
// there is one (Marathon's effective port), for a Marathon-level one (HTTP, TCP) the host port,
// the one Marathon would probe from outside.
std::optional<int> checkPort(const App& app, const HealthCheck& check,
                             const std::vector<int>& hostPorts) {
  if (check.port && *check.port > 0) return *check.port;
  const size_t index = static_cast<size_t>(check.portIndex.value_or(0));
  if (check.mesosLevel() && bridged(app) && index < app.container->portMappings.size()) {
    int containerPort = app.container->portMappings[index].containerPort;
    if (containerPort > 0) return containerPort;
  }
  if (index < hostPorts.size()) return hostPorts[index];
  return std::nullopt;
}

v1::HealthCheck healthCheckInfo(const App& app, const HealthCheck& check,
                                const std::vector<int>& hostPorts) {
  v1::HealthCheck out = healthCheckTiming(check);
  const auto port = checkPort(app, check, hostPorts);
  if (check.kind() == "COMMAND") {
    out.set_type(v1::HealthCheck::COMMAND);
    out.mutable_command()->set_shell(true);
    out.mutable_command()->set_value(check.command);
  } else if (check.kind() == "TCP") {
    out.set_type(v1::HealthCheck::TCP);
    if (port) out.mutable_tcp()->set_port(static_cast<uint32_t>(*port));
  } else {
    out.set_type(v1::HealthCheck::HTTP);
    auto* http = out.mutable_http();
    http->set_scheme(check.kind() == "HTTPS" ? "https" : "http");
    http->set_path(check.path.empty() ? "/" : check.path);
    if (port) http->set_port(static_cast<uint32_t>(*port));
  }
  return out;
}

}  // namespace

std::string newTaskId(std::string_view appId) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t high = random();
  const uint64_t low = random();
  // A version 4 UUID.
  const uint64_t a = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t b = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  std::string prefix(appId.starts_with('/') ? appId.substr(1) : appId);
  std::replace(prefix.begin(), prefix.end(), '/', '_');
  return fmt::format("{}.{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", prefix, a >> 32, (a >> 16) & 0xffff,
                     a & 0xffff, b >> 48, b & 0xffffffffffffULL);
}

std::optional<std::string> appIdOfTask(std::string_view taskId) {
  const size_t dot = taskId.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == taskId.size()) return std::nullopt;
  std::string id = "/";
  id.append(taskId.substr(0, dot));
  std::replace(id.begin(), id.end(), '_', '/');
  return id;
}

std::string jvmDouble(double value) {
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::map<std::string, std::string> taskEnvironment(const App& app, std::string_view taskId,
                                                   std::string_view hostname,
                                                   const std::vector<int>& hostPorts) {
  std::map<std::string, std::string> env = app.env;
  std::string all;
  for (size_t i = 0; i < hostPorts.size(); ++i) {
    const std::string port = std::to_string(hostPorts[i]);
    env[fmt::format("PORT{}", i)] = port;
    if (i == 0) env["PORT"] = port;
    if (!all.empty()) all += ',';
    all += port;
  }
  if (!hostPorts.empty()) env["PORTS"] = all;
  // By name (`PORT_HTTP`) and by requested number (`PORT_10000`), as Marathon's EnvironmentHelper.
  if (bridged(app)) {
    const auto& mappings = app.container->portMappings;
    for (size_t i = 0; i < mappings.size() && i < hostPorts.size(); ++i) {
      if (!mappings[i].name.empty()) {
        env[fmt::format("PORT_{}", upperSnake(mappings[i].name))] = std::to_string(hostPorts[i]);
      }
      if (mappings[i].containerPort > 0) {
        env[fmt::format("PORT_{}", mappings[i].containerPort)] = std::to_string(hostPorts[i]);
      }
    }
  } else {
    for (size_t i = 0; i < app.portDefinitions.size() && i < hostPorts.size(); ++i) {
      const auto& definition = app.portDefinitions[i];
      if (!definition.name.empty()) {
        env[fmt::format("PORT_{}", upperSnake(definition.name))] = std::to_string(hostPorts[i]);
      }
      if (definition.port > 0) {
        env[fmt::format("PORT_{}", definition.port)] = std::to_string(hostPorts[i]);
      }
    }
  }
  env["HOST"] = std::string(hostname);
  env["MESOS_TASK_ID"] = std::string(taskId);
  env["MARATHON_APP_ID"] = app.id;
  env["MARATHON_APP_VERSION"] = isoTimestamp(app.version);
  if (app.container && app.container->docker && !app.container->docker->image.empty()) {
    env["MARATHON_APP_DOCKER_IMAGE"] = app.container->docker->image;
  }
  env["MARATHON_APP_RESOURCE_CPUS"] = jvmDouble(app.cpus);
  env["MARATHON_APP_RESOURCE_MEM"] = jvmDouble(app.mem);
  env["MARATHON_APP_RESOURCE_DISK"] = jvmDouble(app.disk);
  env["MARATHON_APP_RESOURCE_GPUS"] = std::to_string(app.gpus);
  std::string labels;
  for (const auto& [key, value] : app.labels) {
    // Marathon leaves out labels too long for an environment variable.
    if (key.size() + value.size() > 512 - 20) continue;
    if (!labels.empty()) labels += ' ';
    labels += upperSnake(key);
    env[fmt::format("MARATHON_APP_LABEL_{}", upperSnake(key))] = value;
  }
  env["MARATHON_APP_LABELS"] = labels;
  return env;
}

std::vector<int> servicePortsOf(const App& app) {
  std::vector<int> ports;
  if (bridged(app)) {
    for (const auto& mapping : app.container->portMappings) ports.push_back(mapping.servicePort);
  } else {
    for (const auto& definition : app.portDefinitions) ports.push_back(definition.port);
  }
  return ports;
}

v1::TaskInfo buildTaskInfo(const App& app, std::string_view taskId, const v1::Offer& offer,
                           const OfferMatch& match, std::string_view defaultUser) {
  v1::TaskInfo task;
  task.set_name(taskName(app.id));
  task.mutable_task_id()->set_value(std::string(taskId));
  *task.mutable_agent_id() = offer.agent_id();
  for (const auto& resource : match.resources) *task.add_resources() = resource;

  const bool docker = app.container && app.container->type == "DOCKER";
  auto* command = task.mutable_command();
  if (app.cmd) {
    command->set_shell(true);
    command->set_value(*app.cmd);
  } else {
    command->set_shell(false);
    if (app.args) {
      // Docker: the arguments go to the image's entrypoint; otherwise args[0] is the program.
      if (!docker && !app.args->empty()) command->set_value(app.args->front());
      for (const auto& arg : *app.args) command->add_arguments(arg);
    }
  }
  const std::string user = app.user.value_or(std::string(defaultUser));
  if (!user.empty()) command->set_user(user);
  for (const auto& fetch : app.fetch) {
    auto* uri = command->add_uris();
    uri->set_value(fetch.uri);
    uri->set_extract(fetch.extract);
    uri->set_executable(fetch.executable);
    uri->set_cache(fetch.cache);
    if (fetch.destPath) uri->set_output_file(*fetch.destPath);
  }
  for (const auto& [name, value] :
       taskEnvironment(app, taskId, offer.hostname(), match.hostPorts)) {
    auto* variable = command->mutable_environment()->add_variables();
    variable->set_name(name);
    variable->set_type(v1::Environment::Variable::VALUE);
    variable->set_value(value);
  }

  for (const auto& [key, value] : app.labels) {
    auto* label = task.mutable_labels()->add_labels();
    label->set_key(key);
    label->set_value(value);
  }

  if (app.container) {
    auto* container = task.mutable_container();
    addVolumes(*app.container, *container);
    if (docker) {
      container->set_type(v1::ContainerInfo::DOCKER);
      auto* info = container->mutable_docker();
      if (app.container->docker) {
        const auto& spec = *app.container->docker;
        info->set_image(spec.image);
        info->set_network(dockerNetwork(spec.network));
        info->set_privileged(spec.privileged);
        info->set_force_pull_image(spec.forcePullImage);
        for (const auto& [key, value] : spec.parameters) {
          auto* parameter = info->add_parameters();
          parameter->set_key(key);
          parameter->set_value(value);
        }
      }
      if (bridged(app)) {
        const auto& mappings = app.container->portMappings;
        for (size_t i = 0; i < mappings.size() && i < match.hostPorts.size(); ++i) {
          auto* mapping = info->add_port_mappings();
          mapping->set_host_port(static_cast<uint32_t>(match.hostPorts[i]));
          // containerPort 0: the same as the host port (Marathon's rule).
          const int containerPort =
              mappings[i].containerPort > 0 ? mappings[i].containerPort : match.hostPorts[i];
          mapping->set_container_port(static_cast<uint32_t>(containerPort));
          mapping->set_protocol(mappings[i].protocol);
        }
      }
    } else {
      container->set_type(v1::ContainerInfo::MESOS);
    }
  }

  if (app.taskKillGracePeriodSeconds > 0) {
    task.mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(
        int64_t(app.taskKillGracePeriodSeconds) * 1'000'000'000);
  }
  if (const HealthCheck* check = app.agentHealthCheck()) {
    *task.mutable_health_check() = healthCheckInfo(app, *check, match.hostPorts);
  }
  return task;
}

v1::scheduler::Call::Reconcile::Task reconcileTask(const std::string& taskId,
                                                   const std::string& agentId) {
  v1::scheduler::Call::Reconcile::Task task;
  task.mutable_task_id()->set_value(taskId);
  if (!agentId.empty()) task.mutable_agent_id()->set_value(agentId);
  return task;
}

}  // namespace tessera::modules::marathon

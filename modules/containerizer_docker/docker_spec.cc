#include "modules/containerizer_docker/docker_spec.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <charconv>
#include <sstream>

namespace tessera::modules::containerizer_docker {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string joined(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

Array::Ptr arrayOf(Object::Ptr object, const std::string& key) {
  if (!object->has(key)) object->set(key, Array::Ptr(new Array()));
  return object->getArray(key);
}

std::string rangesText(const std::vector<api::ValueRange>& ranges) {
  std::string out = "[";
  for (const auto& range : ranges) {
    if (out.size() > 1) out += ",";
    out += fmt::format("{}-{}", range.begin, range.end);
  }
  return out + "]";
}

// Applies one DockerInfo parameter (a `docker run` long option without its dashes).
api::Status applyParameter(const std::string& key, const std::string& value, Object::Ptr body,
                           Object::Ptr host, std::vector<std::string>& env) {
  if (key == "env" || key == "e") {
    if (value.find('=') == std::string::npos) {
      return api::invalidArgument("docker parameter 'env': '{}' is not NAME=VALUE", value);
    }
    env.push_back(value);
  } else if (key == "label" || key == "l") {
    auto eq = value.find('=');
    auto labels = body->getObject("Labels");
    labels->set(value.substr(0, eq), eq == std::string::npos ? "" : value.substr(eq + 1));
  } else if (key == "user" || key == "u") {
    body->set("User", value);
  } else if (key == "workdir" || key == "w") {
    body->set("WorkingDir", value);
  } else if (key == "hostname" || key == "h") {
    body->set("Hostname", value);
  } else if (key == "cap-add") {
    arrayOf(host, "CapAdd")->add(value);
  } else if (key == "cap-drop") {
    arrayOf(host, "CapDrop")->add(value);
  } else if (key == "dns") {
    arrayOf(host, "Dns")->add(value);
  } else if (key == "add-host") {
    arrayOf(host, "ExtraHosts")->add(value);
  } else if (key == "volume" || key == "v") {
    if (value.find(':') == std::string::npos) {
      return api::invalidArgument("docker parameter 'volume': '{}' is not HOST:CONTAINER[:MODE]",
                                  value);
    }
    arrayOf(host, "Binds")->add(value);
  } else if (key == "entrypoint") {
    Array::Ptr entrypoint(new Array());
    entrypoint->add(value);
    body->set("Entrypoint", entrypoint);
  } else if (key == "shm-size" || key == "memory-reservation") {
    auto size = parseDockerSize(value);
    if (!size) return size.status().withContext("docker parameter '{}'", key);
    host->set(key == "shm-size" ? "ShmSize" : "MemoryReservation", *size);
  } else if (key == "ulimit") {
    // name=soft[:hard]
    auto eq = value.find('=');
    if (eq == std::string::npos || eq == 0) {
      return api::invalidArgument("docker parameter 'ulimit': '{}' is not NAME=SOFT[:HARD]", value);
    }
    std::string limits = value.substr(eq + 1);
    auto colon = limits.find(':');
    int64_t soft = 0, hard = 0;
    auto parse = [](std::string_view text, int64_t& out) {
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
      return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
    };
    std::string softText = limits.substr(0, colon);
    std::string hardText = colon == std::string::npos ? softText : limits.substr(colon + 1);
    if (!parse(softText, soft) || !parse(hardText, hard)) {
      return api::invalidArgument("docker parameter 'ulimit': '{}' is not NAME=SOFT[:HARD]", value);
    }
    Object::Ptr ulimit(new Object());
    ulimit->set("Name", value.substr(0, eq));
    ulimit->set("Soft", soft);
    ulimit->set("Hard", hard);
    arrayOf(host, "Ulimits")->add(ulimit);
  } else {
    return api::invalidArgument("docker parameter '{}' is not supported (supported: {})", key,
                                joined(supportedParameters()));
  }
  return api::Status::ok();
}

}  // namespace

const std::vector<std::string_view>& supportedParameters() {
  static const std::vector<std::string_view> kNames = {
      "env",    "label",    "user", "workdir",  "hostname",   "cap-add", "cap-drop",
      "ulimit", "shm-size", "dns",  "add-host", "entrypoint", "volume",  "memory-reservation"};
  return kNames;
}

std::string containerName(std::string_view containerId) {
  return std::string(kNamePrefix) + std::string(containerId);
}

ImageReference splitImage(std::string_view reference) {
  ImageReference out;
  if (auto at = reference.find('@'); at != std::string_view::npos) {
    out.image = std::string(reference);
    return out;
  }
  auto slash = reference.rfind('/');
  auto colon = reference.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    out.image = std::string(reference.substr(0, colon));
    out.tag = std::string(reference.substr(colon + 1));
  } else {
    out.image = std::string(reference);
    out.tag = "latest";
  }
  return out;
}

api::Result<int64_t> parseDockerSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (digits == 0 || ec != std::errc()) {
    return api::invalidArgument("'{}' is not a size (like 64m)", text);
  }
  std::string_view unit = text.substr(digits);
  int64_t multiplier = 1;
  if (unit.empty() || unit == "b" || unit == "B") {
    multiplier = 1;
  } else if (unit == "k" || unit == "K" || unit == "kb" || unit == "KB") {
    multiplier = 1024;
  } else if (unit == "m" || unit == "M" || unit == "mb" || unit == "MB") {
    multiplier = 1024 * 1024;
  } else if (unit == "g" || unit == "G" || unit == "gb" || unit == "GB") {
    multiplier = 1024 * 1024 * 1024;
  } else {
    return api::invalidArgument("'{}' is not a size (units: b, k, m, g)", text);
  }
  return value * multiplier;
}

namespace {

// Command: shell → /bin/sh -c value (Mesos overrides the entrypoint the same way); argv → the
// arguments, or the value alone; neither → the image's own command.
void setCommand(Object::Ptr body, const v1::CommandInfo& command) {
  if (command.shell()) {
    if (!command.value().empty()) {
      Array::Ptr entrypoint(new Array());
      entrypoint->add(std::string("/bin/sh"));
      entrypoint->add(std::string("-c"));
      body->set("Entrypoint", entrypoint);
      Array::Ptr cmd(new Array());
      cmd->add(command.value());
      body->set("Cmd", cmd);
    }
  } else if (command.arguments_size() > 0 || !command.value().empty()) {
    Array::Ptr cmd(new Array());
    if (command.arguments_size() > 0) {
      for (const auto& argument : command.arguments()) cmd->add(argument);
    } else {
      cmd->add(command.value());
    }
    body->set("Cmd", cmd);
  }
}

// Environment: the agent's MESOS_* (with the sandbox as the container sees it), then the
// command's own; the parameters' come later.
std::vector<std::string> environmentOf(const api::ContainerConfig& config) {
  std::map<std::string, std::string> environment = config.environment;
  environment.erase("MESOS_DIRECTORY");
  environment["MESOS_SANDBOX"] = std::string(kContainerSandbox);
  for (const auto& variable : config.command.environment().variables()) {
    environment[variable.name()] = variable.value();
  }
  std::vector<std::string> env;
  for (const auto& [name, value] : environment) env.push_back(name + "=" + value);
  return env;
}

Object::Ptr labelsOf(const api::ContainerConfig& config, std::string_view agentWorkDir) {
  Object::Ptr labels(new Object());
  labels->set(kLabelAgentId, config.agentId);
  labels->set(kLabelFrameworkId, config.frameworkId);
  labels->set(kLabelTaskId, config.taskId);
  labels->set(kLabelContainerId, config.containerId);
  labels->set(kLabelWorkDir, std::string(agentWorkDir));
  return labels;
}

// Mounts: the sandbox, then the task's volumes.
api::Result<Array::Ptr> bindsOf(const api::ContainerConfig& config) {
  Array::Ptr binds(new Array());
  binds->add(fmt::format("{}:{}:rw", config.sandboxDirectory, kContainerSandbox));
  for (const auto& volume : config.container->volumes()) {
    if (volume.container_path().empty()) {
      return api::invalidArgument("a volume of the task has no container_path");
    }
    std::string hostPath = volume.host_path();
    if (hostPath.empty()) {
      return api::invalidArgument("volume '{}' has no host_path", volume.container_path());
    }
    // A relative host path is inside the sandbox (Mesos does the same).
    if (hostPath.front() != '/') hostPath = config.sandboxDirectory + "/" + hostPath;
    binds->add(fmt::format("{}:{}:{}", hostPath, volume.container_path(),
                           volume.mode() == v1::Volume::RO ? "ro" : "rw"));
  }
  return binds;
}

api::Status setNetworkMode(Object::Ptr host, const v1::ContainerInfo::DockerInfo& docker) {
  switch (docker.network()) {
    case v1::ContainerInfo::DockerInfo::HOST:
      host->set("NetworkMode", std::string("host"));
      return api::Status::ok();
    case v1::ContainerInfo::DockerInfo::BRIDGE:
      host->set("NetworkMode", std::string("bridge"));
      return api::Status::ok();
    case v1::ContainerInfo::DockerInfo::NONE:
      host->set("NetworkMode", std::string("none"));
      return api::Status::ok();
    default:
      return api::invalidArgument("docker network '{}' is not supported (HOST, BRIDGE, NONE)",
                                  v1::ContainerInfo::DockerInfo::Network_Name(docker.network()));
  }
}

// One port mapping's `<port>/<protocol>` keys into ExposedPorts and PortBindings.
api::Status addPortMapping(const v1::ContainerInfo::DockerInfo::PortMapping& mapping,
                           const std::vector<api::ValueRange>& ports, Object::Ptr exposed,
                           Object::Ptr bindings) {
  const uint32_t hostPort = mapping.host_port();
  bool inside = false;
  for (const auto& range : ports)
    inside = inside || (hostPort >= range.begin && hostPort <= range.end);
  if (!inside) {
    return api::invalidArgument(
        "host port {} of a port mapping is not in the task's 'ports' resources {}", hostPort,
        rangesText(ports));
  }
  if (mapping.container_port() == 0 || mapping.container_port() > 65535) {
    return api::invalidArgument("port mapping of host port {} has no valid container_port",
                                hostPort);
  }
  std::stringstream list(mapping.protocol().empty() ? "tcp" : mapping.protocol());
  std::string protocol;
  while (std::getline(list, protocol, ',')) {
    if (protocol != "tcp" && protocol != "udp") {
      return api::invalidArgument("port mapping protocol '{}' is neither tcp nor udp", protocol);
    }
    const std::string key = fmt::format("{}/{}", mapping.container_port(), protocol);
    exposed->set(key, Object::Ptr(new Object()));
    Array::Ptr hostPorts = bindings->has(key) ? bindings->getArray(key) : Array::Ptr(new Array());
    Object::Ptr binding(new Object());
    binding->set("HostPort", std::to_string(hostPort));
    hostPorts->add(binding);
    bindings->set(key, hostPorts);
  }
  return api::Status::ok();
}

api::Status setPortMappings(Object::Ptr body, Object::Ptr host,
                            const v1::ContainerInfo::DockerInfo& docker,
                            const api::Resources& resources) {
  if (docker.port_mappings_size() == 0) return api::Status::ok();
  if (docker.network() != v1::ContainerInfo::DockerInfo::BRIDGE) {
    return api::invalidArgument("port mappings need docker network BRIDGE, not {}",
                                v1::ContainerInfo::DockerInfo::Network_Name(docker.network()));
  }
  const auto ports = resources.ports();
  Object::Ptr exposed(new Object());
  Object::Ptr bindings(new Object());
  for (const auto& mapping : docker.port_mappings()) {
    api::Status added = addPortMapping(mapping, ports, exposed, bindings);
    if (!added) return added;
  }
  body->set("ExposedPorts", exposed);
  host->set("PortBindings", bindings);
  return api::Status::ok();
}

// Limits: cpu shares (Mesos: cpus × 1024, at least 2), memory with no extra swap.
void setLimits(Object::Ptr host, const api::Resources& resources) {
  if (double cpus = resources.cpus(); cpus > 0) {
    host->set("CpuShares", std::max<int64_t>(2, static_cast<int64_t>(cpus * 1024)));
  }
  if (double mem = resources.mem(); mem > 0) {
    // Docker refuses limits under 6MB.
    const int64_t bytes =
        std::max<int64_t>(6 * 1024 * 1024, static_cast<int64_t>(mem * 1024 * 1024));
    host->set("Memory", bytes);
    host->set("MemorySwap", bytes);
  }
}

}  // namespace

api::Result<std::string> containerCreateBody(const api::ContainerConfig& config,
                                             std::string_view agentWorkDir) {
  if (!config.container || config.container->type() != v1::ContainerInfo::DOCKER ||
      !config.container->has_docker()) {
    return api::invalidArgument("the task has no DOCKER ContainerInfo");
  }
  const v1::ContainerInfo& container = *config.container;
  const v1::ContainerInfo::DockerInfo& docker = container.docker();
  if (docker.image().empty()) {
    return api::invalidArgument("the task's ContainerInfo.docker has no image");
  }

  Object::Ptr body(new Object());
  Object::Ptr host(new Object());
  body->set("Image", docker.image());
  if (!container.hostname().empty()) body->set("Hostname", container.hostname());
  setCommand(body, config.command);
  std::vector<std::string> env = environmentOf(config);
  body->set("Labels", labelsOf(config, agentWorkDir));
  auto binds = bindsOf(config);
  if (!binds) return binds.status();
  host->set("Binds", *binds);
  if (api::Status network = setNetworkMode(host, docker); !network) return network;
  if (api::Status ports = setPortMappings(body, host, docker, config.resources); !ports) {
    return ports;
  }
  host->set("Privileged", docker.privileged());
  setLimits(host, config.resources);
  for (const auto& parameter : docker.parameters()) {
    auto applied = applyParameter(parameter.key(), parameter.value(), body, host, env);
    if (!applied) return applied;
  }
  Array::Ptr envArray(new Array());
  for (const auto& entry : env) envArray->add(entry);
  body->set("Env", envArray);
  body->set("HostConfig", host);

  std::ostringstream out;
  body->stringify(out);
  return out.str();
}

void LogDemuxer::feed(std::string_view data) {
  while (!data.empty()) {
    if (remaining_ == 0) {
      const size_t need = 8 - header_.size();
      const size_t take = std::min(need, data.size());
      header_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (header_.size() < 8) return;
      stream_ = static_cast<unsigned char>(header_[0]);
      remaining_ = (static_cast<size_t>(static_cast<unsigned char>(header_[4])) << 24) |
                   (static_cast<size_t>(static_cast<unsigned char>(header_[5])) << 16) |
                   (static_cast<size_t>(static_cast<unsigned char>(header_[6])) << 8) |
                   static_cast<size_t>(static_cast<unsigned char>(header_[7]));
      header_.clear();
      continue;
    }
    const size_t take = std::min(remaining_, data.size());
    sink_(stream_, data.substr(0, take));
    remaining_ -= take;
    data.remove_prefix(take);
  }
}

}  // namespace tessera::modules::containerizer_docker

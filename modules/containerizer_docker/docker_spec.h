#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/container.h"
#include "tessera/api/status.h"

namespace tessera::modules::containerizer_docker {

/// Where the sandbox is mounted inside a container (Mesos's path); MESOS_SANDBOX points here.
inline constexpr std::string_view kContainerSandbox = "/mnt/mesos/sandbox";
/// Containers are named `tessera-<containerId>`; recovery finds them by this name.
inline constexpr std::string_view kNamePrefix = "tessera-";

/// Labels put on every container (found again after an agent restart by them).
inline constexpr const char* kLabelAgentId = "org.tessera.agent_id";
inline constexpr const char* kLabelFrameworkId = "org.tessera.framework_id";
inline constexpr const char* kLabelTaskId = "org.tessera.task_id";
inline constexpr const char* kLabelContainerId = "org.tessera.container_id";
inline constexpr const char* kLabelWorkDir = "org.tessera.agent_work_dir";

/// The `docker run` options that DockerInfo.parameters may carry (Mesos passes them straight
/// to the CLI; here each is mapped onto the Engine API's create body).
const std::vector<std::string_view>& supportedParameters();

/// `name` for the container of `containerId`.
std::string containerName(std::string_view containerId);

/// The image reference split for `POST /images/create?fromImage=..&tag=..` (tag defaults to
/// latest; a digest reference keeps its digest in `image` and an empty tag).
struct ImageReference {
  std::string image;
  std::string tag;
};
ImageReference splitImage(std::string_view reference);

/// Parses a docker size ("64m", "1g", "512k", "1024"); binary units. Errors: InvalidArgument.
api::Result<int64_t> parseDockerSize(std::string_view text);

/// The body of `POST /containers/create` for `config` (a DOCKER ContainerInfo): image, command
/// (shell: `/bin/sh -c value` as the entrypoint; argv otherwise), environment (the agent's,
/// the command's, MESOS_SANDBOX=/mnt/mesos/sandbox), labels, the sandbox bind mount and the
/// volumes, network mode and port mappings (host ports must lie in the task's `ports`),
/// privileged, cpu shares (cpus × 1024) and memory (and swap) limits, and the parameters.
/// Errors: InvalidArgument with a message naming what is wrong (the task fails with it).
api::Result<std::string> containerCreateBody(const api::ContainerConfig& config,
                                             std::string_view agentWorkDir);

/// Splits Docker's multiplexed log stream (8-byte frame headers: stream 1 stdout, 2 stderr,
/// then a big-endian length) into its payloads, across arbitrary chunk boundaries.
class LogDemuxer {
 public:
  using Sink = std::function<void(int stream, std::string_view payload)>;
  explicit LogDemuxer(Sink sink) : sink_(std::move(sink)) {}
  void feed(std::string_view data);

 private:
  Sink sink_;
  std::string header_;
  int stream_ = 0;
  size_t remaining_ = 0;
};

}  // namespace tessera::modules::containerizer_docker

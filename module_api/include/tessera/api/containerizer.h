#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/container.h"
#include "tessera/api/isolator.h"
#include "tessera/api/module.h"

namespace tessera::api {

/// What the agent tells a containerizer once, before anything else.
struct ContainerizerSettings {
  std::string agentWorkDir;  ///< the agent's --work_dir
  /// The isolators named by --isolation that this containerizer should drive (proxies: calls
  /// are posted to each isolator's executor, callbacks come back on the containerizer's).
  std::vector<std::shared_ptr<Isolator>> isolators;
  /// The --isolation names that no isolator in `isolators` serves: the ones the containerizer
  /// implements itself ("namespaces/pid", "posix/cpu"). It refuses (InvalidArgument) a name it
  /// does not know rather than run containers unisolated.
  std::vector<std::string> isolation;
  /// Used by destroy() callers that have no kill policy of their own.
  std::chrono::nanoseconds defaultGracePeriod = std::chrono::seconds(3);
};

/// Runs containers on an agent (Mesos's containerizer). The agent asks the containerizers of
/// `--containerizers`, in order, and launches with the first that supports a task. Every method
/// runs on the containerizer's executor and calls its callback exactly once, on that executor.
class TESSERA_API Containerizer : public Module {
 public:
  /// Called once before recover(). Errors: InvalidArgument for an isolation it cannot do; the
  /// agent then refuses to start.
  virtual void initialize(ContainerizerSettings settings, std::function<void(Status)> done) = 0;

  /// Whether it runs `config` (the native one: no ContainerInfo or type MESOS; the Docker one:
  /// type DOCKER).
  virtual void supports(const ContainerConfig& config, std::function<void(bool)> done) = 0;

  /// Re-attaches to the checkpointed containers of this containerizer after an agent restart:
  /// those still alive are watched again (wait() works for them), those that ended meanwhile
  /// come back with their termination, and containers it finds that are in no checkpoint
  /// (orphans) are destroyed. Errors: the agent refuses to start.
  virtual void recover(const std::vector<ContainerCheckpoint>& checkpoints,
                       std::function<void(Result<std::vector<RecoveredContainer>>)> done) = 0;

  /// Starts a container. `done` gets what the agent must checkpoint before it reports the task
  /// running, or an error (the task then fails with REASON_CONTAINER_LAUNCH_FAILED and the
  /// message). A config with `parentContainerId` is a nested container: it joins the running
  /// parent's isolation (the isolators' isolate() with the parent's id; no prepare() or
  /// cleanup() of its own) and its checkpoint names the parent so recover() re-links them.
  /// Errors: AlreadyExists for a known container id, InvalidArgument for a config it cannot run
  /// (a containerizer without nested containers refuses every nested one), NotFound for an
  /// unknown or ending parent, Internal for a failed launch.
  virtual void launch(const ContainerConfig& config,
                      std::function<void(Result<ContainerCheckpoint>)> done) = 0;

  /// Calls `done` when the container has ended (at once if it has). Several waits may be
  /// pending. Errors: NotFound for an unknown container.
  virtual void wait(std::string_view containerId,
                    std::function<void(Result<ContainerTermination>)> done) = 0;

  /// Stops a container: SIGTERM to its processes, SIGKILL after `gracePeriod`, then the
  /// isolators' cleanup; `done` when nothing of it runs any more. Idempotent while it runs.
  /// A parent's nested containers are destroyed first (with the same grace period), and a
  /// parent that ends by itself takes its nested containers with it (SIGKILL).
  /// Errors: NotFound for an unknown container.
  virtual void destroy(std::string_view containerId, std::chrono::nanoseconds gracePeriod,
                       std::function<void(Status)> done) = 0;

  /// Changes a running container's resources (the isolators update their limits).
  virtual void update(std::string_view containerId, const Resources& resources,
                      std::function<void(Status)> done) = 0;

  /// The container's usage for /monitor/statistics (Mesos's field names).
  virtual void usage(std::string_view containerId,
                     std::function<void(Result<v1::ResourceStatistics>)> done) = 0;

  /// The ids of every container it runs now.
  virtual void containers(std::function<void(std::vector<std::string>)> done) = 0;
};

}  // namespace tessera::api

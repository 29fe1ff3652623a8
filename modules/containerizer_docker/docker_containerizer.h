#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "modules/containerizer_docker/engine_client.h"
#include "tessera/api/containerizer.h"

namespace tessera::modules::containerizer_docker {

/// The module's name, as checkpoints and modules.json spell it.
inline constexpr const char* kModuleName = "org_tessera_containerizer_docker";
/// The engine's socket when neither the `docker_socket` parameter nor `--docker_socket` says.
inline constexpr const char* kDefaultSocket = "/var/run/docker.sock";

/// Runs tasks with a DOCKER ContainerInfo as Docker containers through the Engine API (Mesos's
/// Docker containerizer without the CLI): image present or pulled, container
/// `tessera-<containerId>` created with labels, limits, mounts and ports, started, its logs
/// followed into the sandbox's stdout/stderr, its end waited for and inspected (exit code,
/// OOM kill), then removed. Every public method runs on the module's executor and calls its
/// callback once, there; the Engine API client runs on its own thread and posts back.
class DockerContainerizer final : public api::Containerizer {
 public:
  /// Module parameters: `docker_socket` (default /var/run/docker.sock), `docker_kill_orphans`
  /// (true|false, default true: remove containers of this agent's work dir that belong to no
  /// checkpointed task at recovery). Errors: InvalidArgument for a malformed or unknown one.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  DockerContainerizer(api::Context& context, std::string socketPath, bool killOrphans);
  ~DockerContainerizer() override;

  void stop() override;
  void initialize(api::ContainerizerSettings settings,
                  std::function<void(api::Status)> done) override;
  void supports(const api::ContainerConfig& config, std::function<void(bool)> done) override;
  void recover(
      const std::vector<api::ContainerCheckpoint>& checkpoints,
      std::function<void(api::Result<std::vector<api::RecoveredContainer>>)> done) override;
  void launch(const api::ContainerConfig& config,
              std::function<void(api::Result<api::ContainerCheckpoint>)> done) override;
  void wait(std::string_view containerId,
            std::function<void(api::Result<api::ContainerTermination>)> done) override;
  void destroy(std::string_view containerId, std::chrono::nanoseconds gracePeriod,
               std::function<void(api::Status)> done) override;
  void update(std::string_view containerId, const api::Resources& resources,
              std::function<void(api::Status)> done) override;
  void usage(std::string_view containerId,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override;
  void containers(std::function<void(std::vector<std::string>)> done) override;

  /// Whether the last exchange with the daemon got an answer (the
  /// `containerizer/docker/daemon_reachable` gauge).
  bool daemonReachable() const { return reachable_; }

  /// How many ended containers' terminations are kept for late wait() calls.
  static constexpr size_t kTerminationsKept = 1024;

 private:
  enum class Phase { kPulling, kCreating, kStarting, kRunning, kEnding };

  struct Container {
    std::string id;
    std::string name;  // tessera-<id>
    std::string sandbox;
    double memMb = 0;
    Phase phase = Phase::kPulling;
    bool created = false;
    bool destroyRequested = false;
    std::chrono::nanoseconds grace{0};
    std::function<void(api::Result<api::ContainerCheckpoint>)> launchDone;
    std::vector<std::function<void(api::Result<api::ContainerTermination>)>> waits;
    std::vector<std::function<void(api::Status)>> destroys;
    bool logsDone = true;
    bool waitDone = false;
    bool finishing = false;
    std::optional<api::ContainerTermination> termination;  // known, pending the logs' end
    std::unique_ptr<api::TimerHandle> logsTimer;
  };
  using ContainerPtr = std::shared_ptr<Container>;

  void assertOnExecutor() const;
  template <typename Fn>
  auto guarded(Fn fn);
  // Sends a request; `done` runs on the executor (dropped after stop()).
  void engine(std::string method, std::string target, std::string body,
              std::function<void(api::Result<EngineResponse>)> done,
              std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void noteReachable(const api::Result<EngineResponse>& result);
  void ping();

  void ensureImage(ContainerPtr container, std::string image, bool forcePull, std::string body);
  void pull(ContainerPtr container, std::string image, std::string body);
  void createContainer(ContainerPtr container, std::string body);
  void startContainer(ContainerPtr container);
  void abortLaunch(ContainerPtr container, api::Status error);
  void followLogs(ContainerPtr container, std::optional<std::string> since);
  void waitForExit(ContainerPtr container);
  void inspectExit(ContainerPtr container);
  void logsEnded(ContainerPtr container);
  void finish(ContainerPtr container);
  void stopContainer(ContainerPtr container);
  // Removes the container (force), then runs `then` whatever the answer.
  void remove(const std::string& name, std::function<void()> then = nullptr);
  void remember(const std::string& id, api::ContainerTermination termination);

  api::Context& context_;
  std::string socketPath_;
  bool killOrphans_ = true;
  api::ContainerizerSettings settings_;
  bool initialized_ = false;
  bool stopped_ = false;
  bool reachable_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::unique_ptr<EngineClient> client_;
  std::unique_ptr<api::TimerHandle> pingTimer_;
  std::map<std::string, ContainerPtr, std::less<>> containers_;
  std::map<std::string, api::ContainerTermination, std::less<>> terminated_;
  std::deque<std::string> terminatedOrder_;
  api::Counter& launched_;
  api::Counter& launchFailed_;
  api::Counter& destroyed_;
  api::Counter& oomKilled_;
  api::Counter& orphansRemoved_;
};

}  // namespace tessera::modules::containerizer_docker

#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "modules/containerizer_native/launch.h"
#include "modules/containerizer_native/reaper.h"
#include "tessera/api/containerizer.h"

namespace tessera::modules::containerizer_native {

/// The module's name, as checkpoints and modules.json spell it.
inline constexpr const char* kModuleName = "org_tessera_containerizer_native";

/// The --isolation name (Mesos's) that runs each container in its own PID and mount namespace.
inline constexpr std::string_view kPidNamespaceIsolation = "namespaces/pid";

/// Runs command tasks as plain processes (Mesos's "mesos" containerizer with the posix
/// launcher): each container is one process tree in its own session and process group, with
/// stdout/stderr in the sandbox, driven through the isolators of --isolation. Exits are
/// collected by one Reaper thread for the whole instance (pidfds in an epoll set), which posts
/// them to the module's executor. Every public method runs on that executor and calls its
/// callback exactly once, there.
class NativeContainerizer final : public api::Containerizer {
 public:
  /// Module parameters: `default_grace_period` (a duration, used for recovered orphans and for
  /// destroy() with a negative grace period; defaults to the agent's). Errors: InvalidArgument
  /// naming the parameter for a malformed one or one it does not know (the agent gives it no
  /// other containerizer's flags, see docs/design.md).
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  explicit NativeContainerizer(api::Context& context);
  ~NativeContainerizer() override;

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

  /// How many ended containers' terminations are kept for late wait() calls.
  static constexpr size_t kTerminationsKept = 1024;

  /// Makes initialize() see `uid` as the effective uid instead of geteuid() (to test the root
  /// check without dropping privileges). Call before initialize().
  void setEffectiveUidForTest(uid_t uid) { effectiveUidForTest_ = uid; }

 private:
  enum class Phase { kPreparing, kIsolating, kStarting, kRunning, kDestroying };

  struct Container {
    std::string id;
    api::ContainerConfig config;
    Phase phase = Phase::kPreparing;
    bool recovered = false;
    LaunchSpec spec;
    std::string runtimeDirectory;  // holds the supervisor's exit_status file
    SpawnedChild child;            // pid/pidfd (the pidfd moves to the reaper once watched)
    int signalFd = -1;             // a second pidfd, for signals that can never hit a reused pid
    uint64_t startTime = 0;
    bool exited = false;
    std::optional<int> waitStatus;
    bool destroyRequested = false;
    std::optional<api::ContainerLimitation> limitation;
    std::function<void(api::Result<api::ContainerCheckpoint>)> launchDone;
    std::optional<api::Status> launchError;  // set before the child was released
    std::vector<std::function<void(api::Result<api::ContainerTermination>)>> waits;
    std::vector<std::function<void(api::Status)>> destroys;
    std::unique_ptr<api::TimerHandle> killTimer;
    bool cleaningUp = false;
    bool execCheckPending = false;             // start() waits to learn whether exec worked
    std::optional<api::Status> finishPending;  // finish() deferred until it knows
    // Nested containers (task groups): the parent's id, or the nested ones still alive; a
    // parent's cleanup waits for them (its cgroups cannot go while they hold processes), and a
    // destroy of the parent kills its own process only once they are gone.
    std::string parent;
    std::set<std::string> nested;
    bool cleanupWaitsForNested = false;
    std::optional<std::chrono::nanoseconds> destroyAfterNested;
  };
  using ContainerPtr = std::shared_ptr<Container>;

  void assertOnExecutor() const;
  // Wraps a continuation so it is dropped if this instance has stopped meanwhile.
  template <typename Fn>
  auto guarded(Fn fn);

  void prepareNext(ContainerPtr container, size_t index);
  void spawn(ContainerPtr container);
  void isolateNext(ContainerPtr container, size_t index);
  void start(ContainerPtr container);
  void abortLaunch(ContainerPtr container, api::Status error);
  void watchExit(ContainerPtr container, int pidfd);
  void onExit(const std::string& id, std::optional<int> waitStatus);
  void onLimitation(const std::string& id, api::ContainerLimitation limitation);
  void signal(Container& container, int signal);
  void killAfterGrace(ContainerPtr container, std::chrono::nanoseconds grace);
  void cleanup(ContainerPtr container);
  void cleanupNext(ContainerPtr container, size_t index, api::Status first);
  void finish(ContainerPtr container, api::Status cleanupStatus);
  void usageNext(std::shared_ptr<v1::ResourceStatistics> stats, std::string id, size_t index,
                 std::function<void(api::Result<v1::ResourceStatistics>)> done);
  void updateNext(std::string id, api::Resources resources, size_t index,
                  std::function<void(api::Status)> done);
  void recoverIsolators(
      std::vector<api::ContainerCheckpoint> alive, size_t index,
      std::vector<api::RecoveredContainer> result,
      std::function<void(api::Result<std::vector<api::RecoveredContainer>>)> done);
  void killOrphans();
  void remember(const std::string& id, api::ContainerTermination termination);
  void removeRuntimeDirectory(const std::string& id, const std::string& directory);
  // A nested container ended: its parent may go on with its destroy or cleanup.
  void nestedGone(const std::string& parentId, const std::string& id);

  api::Context& context_;
  api::ContainerizerSettings settings_;
  std::optional<std::chrono::nanoseconds> defaultGracePeriod_;
  bool initialized_ = false;
  bool pidNamespace_ = false;  // --isolation has namespaces/pid
  std::optional<uid_t> effectiveUidForTest_;
  bool stopped_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guarded() holds weak refs
  Reaper reaper_;
  std::map<std::string, ContainerPtr, std::less<>> containers_;
  std::map<std::string, api::ContainerTermination, std::less<>> terminated_;
  std::deque<std::string> terminatedOrder_;
  api::Counter& launched_;
  api::Counter& launchFailed_;
  api::Counter& destroyed_;
  api::Counter& limited_;
};

}  // namespace tessera::modules::containerizer_native

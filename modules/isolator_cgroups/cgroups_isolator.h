#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "modules/isolator_cgroups/cgroups.h"
#include "tessera/api/isolator.h"

namespace tessera::modules::isolator_cgroups {

/// The module's name, as modules.json spells it.
inline constexpr const char* kModuleName = "org_tessera_isolator_cgroups";

/// Waits for OOM notifications with ONE thread: every watched fd (a v1 eventfd registered on
/// memory.oom_control, or a v2 inotify fd on memory.events) is in one epoll set, armed
/// one-shot. The thread only reports which token fired; the isolator's strand owns the fds,
/// reads them and re-arms, so no fd is ever touched by two threads.
class OomWatcher {
 public:
  using OnEvent = std::function<void(uint64_t token)>;
  OomWatcher() = default;
  ~OomWatcher();
  OomWatcher(const OomWatcher&) = delete;
  OomWatcher& operator=(const OomWatcher&) = delete;

  /// Starts the thread; `onEvent` runs on it. Errors: Internal naming the failing call.
  api::Status start(OnEvent onEvent);
  /// Arms `fd` (owned by the caller) once for `token`; call again after each event.
  api::Status arm(int fd, uint64_t token, bool first);
  /// Removes `fd` from the set (before the caller closes it).
  void remove(int fd);
  /// Stops and joins the thread. Idempotent.
  void stop();

 private:
  void loop();
  int epoll_ = -1;
  int wake_ = -1;
  OnEvent onEvent_;
  std::thread thread_;
};

/// Mesos's cgroups isolator (`cgroups/cpu`, `cgroups/mem`, `cgroups/pids`, `cgroups/all`) for
/// the native containerizer, on cgroup v1 or v2. Each container gets a cgroup
/// `<controller mount>/<cgroups_root>/<container id>`; isolate() moves the (not yet exec'd)
/// child into it. Every public method runs on the module's strand; cgroupfs work runs on the
/// blocking pool and its result comes back to the strand.
class CgroupsIsolator final : public api::Isolator {
 public:
  /// Parameters: `isolation` (the agent's --isolation; only its cgroups/* names are enabled;
  /// none: the module is inactive), `cgroups_root` (default "tessera"), `cgroups_enable_cfs`
  /// (true/false, default false), `cgroups_hierarchy` (default /sys/fs/cgroup), `pids_max` (a
  /// positive number, with cgroups/pids). Errors: InvalidArgument for a malformed or unknown
  /// parameter or isolation, FailedPrecondition for a controller that is not mounted or not
  /// delegated (naming the controller and the path).
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  struct Options {
    bool cpu = false;
    bool mem = false;
    bool pids = false;
    bool enableCfs = false;
    std::optional<uint64_t> pidsMax;
    std::string root = "tessera";
    std::string hierarchy = "/sys/fs/cgroup";
  };

  /// Reads `isolation` (its cgroups/* names), `cgroups_root`, `cgroups_hierarchy`,
  /// `cgroups_enable_cfs` and `pids_max`. Errors: InvalidArgument naming the parameter, also
  /// for one it does not know.
  static api::Result<Options> parseOptions(const api::Parameters& parameters);

  CgroupsIsolator(api::Context& context, Options options, std::optional<Layout> layout);
  ~CgroupsIsolator() override;

  void stop() override;
  std::vector<std::string> isolations() const override;
  void recover(const std::vector<api::ContainerCheckpoint>& alive,
               std::function<void(api::Status)> done) override;
  void prepare(const api::ContainerConfig& config, std::function<void(api::Status)> done) override;
  void isolate(std::string_view containerId, int64_t pid,
               std::function<void(api::Status)> done) override;
  void watch(std::string_view containerId,
             std::function<void(api::ContainerLimitation)> limited) override;
  void update(std::string_view containerId, const api::Resources& resources,
              std::function<void(api::Status)> done) override;
  void usage(std::string_view containerId, v1::ResourceStatistics stats,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override;
  void cleanup(std::string_view containerId, std::function<void(api::Status)> done) override;

  /// The layout found at create(); nullopt when inactive.
  const std::optional<Layout>& layout() const { return layout_; }

  /// The limits written for `cpus`/`mem` (MB), as (file path, value) pairs; public for tests.
  static std::vector<std::pair<std::string, std::string>> limitWrites(const Layout& layout,
                                                                      const Options& options,
                                                                      std::string_view container,
                                                                      double cpus, double memMb);

 private:
  struct Container {
    std::string id;
    double cpus = 0;
    double memMb = 0;
    uint64_t token = 0;
    int oomFd = -1;      // v1: eventfd; v2: inotify fd
    int controlFd = -1;  // v1: memory.oom_control, held open while the eventfd is registered
    std::function<void(api::ContainerLimitation)> limited;
    bool limitationReported = false;
  };

  void assertOnStrand() const;
  template <typename Fn>
  auto guarded(Fn fn);
  // Runs `work` on the blocking pool and `done` with its status back on the strand.
  void blocking(std::function<api::Status()> work, std::function<void(api::Status)> done);
  void startOomWatch(Container& container);
  void stopOomWatch(Container& container);
  void onOomEvent(uint64_t token);
  // Reads whether the container's memory cgroup recorded an OOM kill, or takes `fired` (a v1
  // OOM event) as one (blocking; any thread; static so that work still on the pool never
  // touches a destroyed instance).
  static std::optional<api::ContainerLimitation> checkOom(const Layout& layout,
                                                          const std::string& id, double memMb,
                                                          bool fired = false);
  void reportLimitation(Container& container, api::ContainerLimitation limitation);
  api::Status requireActive() const;

  api::Context& context_;
  Options options_;
  std::optional<Layout> layout_;
  bool stopped_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::map<std::string, std::shared_ptr<Container>, std::less<>> containers_;
  std::map<uint64_t, std::string> tokens_;
  uint64_t nextToken_ = 1;
  OomWatcher watcher_;
  bool watcherStarted_ = false;
  api::Counter& ooms_;
};

}  // namespace tessera::modules::isolator_cgroups

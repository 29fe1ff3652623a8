#pragma once

/// ACME's `acme/nofile` isolator: caps the number of files each task may open (RLIMIT_NOFILE)
/// and reports how many its tasks have open. Built out of tree against the Tessera SDK only.

#include <tessera/api/duration.h>
#include <tessera/api/isolator.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acme::nofile {

/// The module's name, as modules.json spells it.
inline constexpr const char* kModuleName = "com_acme_isolator_nofile";
/// The isolation it implements, as `--isolation` spells it.
inline constexpr std::string_view kIsolation = "acme/nofile";
/// Gauges: open files summed over the containers it isolates, and how many it isolates.
inline constexpr std::string_view kOpenFilesGauge = "acme_nofile/open_files";
inline constexpr std::string_view kContainersGauge = "acme_nofile/containers";

/// What the module's parameters say.
struct Options {
  /// RLIMIT_NOFILE (soft and hard) of every task's process: the `limit` parameter.
  uint64_t limit = 1024;
  /// How often the open files of each task are counted: the `sample_interval` parameter.
  std::chrono::nanoseconds sampleInterval = std::chrono::seconds(1);
};

/// Reads `limit` (a positive integer, default 1024), `sample_interval` (a duration, default
/// 1secs) and `isolation` (the agent's --isolation, passed to every isolator; not used). Errors:
/// InvalidArgument naming the parameter (`parameter 'limit': 'abc' is not a valid integer`), also
/// for a key it does not know.
[[nodiscard]] tessera::api::Result<Options> parseOptions(
    const tessera::api::Parameters& parameters);

/// Sets RLIMIT_NOFILE of `pid` to `limit` (soft and hard). Errors: FailedPrecondition naming
/// the pid and the reason (EPERM: above the hard limit without CAP_SYS_RESOURCE, or above
/// fs.nr_open; ESRCH: no such process). Any thread.
[[nodiscard]] tessera::api::Status setOpenFileLimit(int64_t pid, uint64_t limit);

/// Counts the open file descriptors of `pid` and of every descendant of it, from /proc
/// (`proc` is the procfs mount; tests may point it elsewhere). 0 when `pid` is gone.
/// Blocking (a directory scan): run it on the blocking pool.
uint64_t countOpenFiles(int64_t pid, const std::string& proc = "/proc");

/// The start time of `pid` in clock ticks after boot (field 22 of /proc/<pid>/stat), or
/// nullopt when it is gone. Any thread.
std::optional<uint64_t> processStartTime(int64_t pid, const std::string& proc = "/proc");

/// The isolator. Every method runs on its executor (the module's strand); counting open files
/// runs on the blocking pool and comes back to the strand. It enforces nothing the kernel
/// kills for (a task at its limit gets EMFILE), so watch() never reports a limitation.
class NofileIsolator final : public tessera::api::Isolator {
 public:
  /// The factory the descriptor exports. Errors: those of parseOptions().
  static tessera::api::Result<std::unique_ptr<tessera::api::Module>> create(
      const tessera::api::Parameters& parameters, tessera::api::Context& context);

  /// `executor`, `metrics` and `logger` must outlive the instance (the Context's do). Registers
  /// the gauges kOpenFilesGauge and kContainersGauge.
  NofileIsolator(Options options, tessera::api::Executor& executor, tessera::api::Metrics& metrics,
                 tessera::api::Logger& logger);
  ~NofileIsolator() override;

  void stop() override;
  std::vector<std::string> isolations() const override;
  void recover(const std::vector<tessera::api::ContainerCheckpoint>& alive,
               std::function<void(tessera::api::Status)> done) override;
  void prepare(const tessera::api::ContainerConfig& config,
               std::function<void(tessera::api::Status)> done) override;
  void isolate(std::string_view containerId, int64_t pid,
               std::function<void(tessera::api::Status)> done) override;
  void watch(std::string_view containerId,
             std::function<void(tessera::api::ContainerLimitation)> limited) override;
  void update(std::string_view containerId, const tessera::api::Resources& resources,
              std::function<void(tessera::api::Status)> done) override;
  void usage(
      std::string_view containerId, tessera::v1::ResourceStatistics stats,
      std::function<void(tessera::api::Result<tessera::v1::ResourceStatistics>)> done) override;
  void cleanup(std::string_view containerId,
               std::function<void(tessera::api::Status)> done) override;

  /// What the gauges report: open files over all containers at the last sample, and the
  /// number of containers known. On the strand.
  uint64_t openFiles() const;
  size_t containers() const { return containers_.size(); }

 private:
  struct Container {
    int64_t pid = 0;  // 0 until isolate()
    uint64_t openFiles = 0;
  };

  void assertOnStrand() const;
  // Starts the sampling timer if it is not running and some container has a process.
  void startSampling();
  // Counts every container's open files on the blocking pool, then schedules the next round.
  void sample();

  Options options_;
  tessera::api::Executor& executor_;
  tessera::api::Metrics& metrics_;
  tessera::api::Logger& logger_;
  std::map<std::string, Container, std::less<>> containers_;
  std::unique_ptr<tessera::api::TimerHandle> timer_;
  bool sampling_ = false;
  bool stopped_ = false;
  // Callbacks from the pool or a timer hold a weak reference: after stop() they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace acme::nofile

#pragma once

/// Sandbox garbage collection, as Mesos's agent does it: a terminal container's run directory is
/// scheduled for removal `--gc_delay` after it ended; every `--disk_watch_interval` the usage of
/// the work dir's filesystem is read and whatever is older than
/// `gc_delay * max(0, 1 - gc_disk_headroom - usage)` is removed at once. A path that holds a live
/// sandbox is never removed (the owner is asked before every removal).
///
/// Threading: every method runs on the strand given at construction; removals and the disk
/// usage reads run on the runtime's blocking pool and report back to that strand.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel/runtime/duration.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/executor.h"
#include "tessera/api/metrics.h"
#include "tessera/api/status.h"

namespace tessera::kernel::agent {

/// The flags of the garbage collector, with Mesos's names and defaults.
struct GcOptions {
  /// --gc_delay: how long after its container ended a sandbox is removed (with an empty disk).
  runtime::Duration delay = std::chrono::hours(24 * 7);
  /// --gc_disk_headroom: the fraction of the disk to keep free, in [0, 1].
  double diskHeadroom = 0.1;
  /// --disk_watch_interval: how often the disk usage is read.
  runtime::Duration diskWatchInterval = std::chrono::minutes(1);
};

/// Mesos's "max allowed age" of a sandbox at disk usage `usage` (a fraction in [0, 1]):
/// `delay * max(0, 1 - headroom - usage)`.
runtime::Duration maxAllowedAge(runtime::Duration delay, double headroom, double usage);

/// The fraction, in [0, 1], of the filesystem holding `path` that is in use (statvfs: blocks
/// not free over all blocks). Blocking. Errors: Unavailable naming the path and the cause.
api::Result<double> diskUsage(const std::string& path);

/// One path scheduled for removal. Times are wall-clock seconds since the epoch, so that a
/// checkpointed schedule means the same to the next agent process.
struct GcEntry {
  std::string path;
  double scheduledAt = 0;  ///< when its container ended: the age is counted from here
  double removeAt = 0;     ///< scheduledAt + gc_delay
};

/// The checkpoint of an entry (JSON: path, scheduled_at, remove_at) and back. Errors:
/// InvalidArgument when it does not parse.
std::string gcEntryJson(const GcEntry& entry);
api::Result<GcEntry> parseGcEntryJson(const std::string& text);

class GarbageCollector : public std::enable_shared_from_this<GarbageCollector> {
 public:
  /// What the owner answers and is told. All called on the strand.
  struct Hooks {
    /// Whether `path` is, or contains, a live sandbox: such a path is dropped from the schedule,
    /// never removed. Required.
    std::function<bool(const std::string& path)> live;
    /// `entry` left the schedule: ok (the path is gone), FailedPrecondition (it held a live
    /// sandbox, so it was kept) or the removal's error. Optional.
    std::function<void(const GcEntry& entry, const api::Status& result)> removed;
    /// The disk usage, read on a blocking thread; diskUsage(usagePath) when unset. Tests inject
    /// their own.
    std::function<api::Result<double>()> usage;
    /// Now, as wall-clock seconds; api::nowSeconds() when unset.
    std::function<double()> now;
  };

  /// `succeeded`/`failed` count removals (the registry's gc/path_removals_* counters); they and
  /// `strand` must outlive the collector. `usagePath`: where the disk usage is read.
  GarbageCollector(runtime::StrandExecutor& strand, GcOptions options, std::string usagePath,
                   Hooks hooks, api::Counter& succeeded, api::Counter& failed);

  /// Starts the disk watch (first check after one interval). Strand.
  void start();
  /// Cancels the timers; removals in flight finish but report nothing. Idempotent. Strand.
  void stop();

  /// Schedules `path` for removal at `endedAt + gc_delay` and returns its entry; a path already
  /// scheduled keeps its earlier entry. Strand.
  GcEntry schedule(const std::string& path, double endedAt);
  /// Schedules a checkpointed entry as it was (a restarted agent). Strand.
  void restore(const GcEntry& entry);
  /// Drops `path` from the schedule; false when it was not scheduled (or is being removed).
  /// Strand.
  bool unschedule(const std::string& path);
  /// Removes now every path at least `maxAge` old. Strand.
  void prune(runtime::Duration maxAge);
  /// Reads the disk usage (on a blocking thread) and prunes by it. Strand.
  void checkDiskUsage();

  /// The schedule, soonest first (paths being removed included). Strand.
  std::vector<GcEntry> scheduled() const;
  /// Paths scheduled or being removed. Thread-safe (the pending gauge reads it).
  double pending() const { return pending_->load(); }
  /// Shared with the gauge, which may outlive the collector.
  std::shared_ptr<std::atomic<double>> pendingGauge() const { return pending_; }

 private:
  double now() const;
  void arm();                            // the timer for the soonest entry not being removed
  void onTimer();                        // removes what is due
  void remove(const std::string& path);  // unless live: on the blocking pool
  void onRemoved(const std::string& path, const api::Status& result);
  void refresh() { pending_->store(static_cast<double>(entries_.size())); }

  runtime::StrandExecutor& strand_;
  const GcOptions options_;
  const std::string usagePath_;
  Hooks hooks_;
  api::Counter& succeeded_;
  api::Counter& failed_;
  std::shared_ptr<std::atomic<double>> pending_ = std::make_shared<std::atomic<double>>(0);
  bool stopped_ = false;
  std::map<std::string, GcEntry> entries_;  // by path
  std::set<std::string> removing_;          // paths handed to the blocking pool
  std::unique_ptr<api::TimerHandle> timer_;
  std::optional<double> timerAt_;  // when timer_ fires
  std::unique_ptr<api::TimerHandle> diskTimer_;
  bool checking_ = false;  // a disk usage read is in flight
  bool backoff_ = false;   // the blocking pool refused a removal: wait before the next try
};

}  // namespace tessera::kernel::agent

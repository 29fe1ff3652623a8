#pragma once

// The dependency graph of Chronos's dependent jobs (`parents`): which jobs wait for which, when
// a child is ready to run, and Chronos's two renderings of it (`GET /scheduler/graph/dot`,
// `GET /scheduler/graph/csv`). Plain data, no clock and no locks: the scheduler owns one and
// calls it from its strand, passing the times of the events it reports.
//
// Readiness, as Chronos means it: a child runs once every one of its parents has succeeded since
// the child last started. A parent that succeeds twice before the child starts makes it ready
// once, not twice.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::modules::chronos {

/// How a job's last run ended, as `graph/csv` writes it: `success`, `failure`, `fresh` (never
/// ran, or no run ended yet).
enum class LastStatus { kFresh, kSuccess, kFailure };
/// What a job is doing now, as `graph/csv` writes it: `idle`, `queued`, `running`.
enum class JobState { kIdle, kQueued, kRunning };

std::string_view lastStatusName(LastStatus status);
std::string_view jobStateName(JobState state);

/// Chronos's rule for a job's last status from its `lastSuccess` / `lastError` times: fresh when
/// neither, else the later of the two (a tie counts as failure, as Chronos does).
LastStatus lastStatusOf(std::optional<std::chrono::sys_seconds> lastSuccess,
                        std::optional<std::chrono::sys_seconds> lastError);

class JobGraph {
 public:
  using TimePoint = std::chrono::sys_seconds;
  /// The last status and current state of a job, for toCsv().
  using StatusFn = std::function<std::pair<LastStatus, JobState>(const std::string& name)>;

  /// Adds a job with no parents. AlreadyExists if a job of that name is in the graph;
  /// InvalidArgument if the name is empty.
  api::Status addJob(std::string_view name);

  /// Removes a job and every link to and from it. Returns its children (sorted), which keep
  /// their other parents; a child left with none is the caller's to deal with (Chronos deletes
  /// or disables it), and one that waited only for this job is now ready (check ready()).
  /// NotFound if unknown.
  api::Result<std::vector<std::string>> removeJob(std::string_view name);

  bool contains(std::string_view name) const;

  /// Replaces `child`'s parents (an empty list makes it a job without parents). Errors, which
  /// change nothing: NotFound naming the child if it is unknown; InvalidArgument naming the
  /// first unknown parent, or naming the cycle (`'a' -> 'b' -> 'a'`) a parent would close,
  /// including a job listed as its own parent. Duplicates are ignored. Whether each parent has
  /// succeeded since the child's last start is kept for parents the child already had; a new
  /// parent counts as not yet succeeded. Dropping the one parent a child still waited for can
  /// make it ready: check ready(child) afterwards.
  api::Status setParents(std::string_view child, const std::vector<std::string>& parents);

  /// Sorted; empty for an unknown job.
  std::vector<std::string> parents(std::string_view name) const;
  std::vector<std::string> children(std::string_view name) const;
  /// Every job, sorted.
  std::vector<std::string> jobs() const;
  size_t size() const { return nodes_.size(); }

  /// Records that `parent` succeeded at `at`. Returns the children (sorted) that became ready
  /// through it: every parent of theirs has now succeeded since their last start, and they were
  /// not ready before this call (so a child already waiting to start is not returned twice).
  /// Empty for an unknown parent. A returned child the caller does not start now (it is still
  /// running, or disabled) stays ready and is NOT returned again by later successes: check
  /// ready(child) when its run ends or it is enabled, or it waits for its next start forever.
  std::vector<std::string> parentSucceeded(std::string_view parent, TimePoint at);

  /// Records that `child` started a run at `at`: from now on each parent must succeed again
  /// before it is ready. Unknown names are ignored.
  void childStarted(std::string_view child, TimePoint at);

  /// True when `child` has parents and every one of them has succeeded since its last start.
  bool ready(std::string_view child) const;

  /// Seeds a job's times from stored state (after a failover), without reporting readiness:
  /// a link counts as succeeded when the parent's last success is later than the child's last
  /// start (or the child never started). Call it for every job after adding the jobs and
  /// their parents. Unknown names are ignored.
  void restore(std::string_view name, std::optional<TimePoint> lastSuccess,
               std::optional<TimePoint> lastStart);

  /// `GET /scheduler/graph/dot`: Graphviz as Chronos's JGraphT exporter writes it: `digraph G {`,
  /// one `  <n> [ label="<name>" ];` per job (n counting from 1, jobs sorted), one
  /// `  <n> -> <m>;` per link (parent -> child), `}`.
  std::string toDot() const;

  /// `GET /scheduler/graph/csv`: `node,<name>,<lastStatus>,<state>` per job, then
  /// `link,<parent>,<child>` per link, each line ending in `\n`, sorted by name.
  std::string toCsv(const StatusFn& status) const;

 private:
  struct Node {
    std::set<std::string, std::less<>> parents;
    std::set<std::string, std::less<>> children;
    /// Parents that have succeeded since this job's last start.
    std::set<std::string, std::less<>> succeededParents;
    std::optional<TimePoint> lastSuccess;
    std::optional<TimePoint> lastStart;
  };
  bool readyNode(const Node& node) const;
  std::map<std::string, Node, std::less<>> nodes_;
};

}  // namespace tessera::modules::chronos

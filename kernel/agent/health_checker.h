#pragma once

/// The agent's health checks (TaskInfo.health_check, Mesos's HealthCheck): run near each task
/// by the agent itself, the way Mesos's command and default executors run them.
///
/// - HTTP: `GET http://127.0.0.1:<port><path>` as asynchronous I/O on the runtime's
///   io_context; only the status line is read; healthy on 200-399 (or on one of `statuses` when
///   given). HTTPS (scheme "https"): the same over TLS (asio + OpenSSL), the server's
///   certificate not verified (as Mesos and Marathon).
/// - TCP: a connection to 127.0.0.1:<port> established within the timeout.
/// - COMMAND: `sh -c <value>` inside the task's container: the check's process joins the
///   cgroups of the container's main process and, where they differ from the agent's, its
///   mount, pid, network, UTS and IPC namespaces (what `nsenter` plus a cgroup move would do);
///   for a Docker task it is `docker exec <container> sh -c <value>`. Exit status 0 is healthy.
///   At most `maxCommandChecks` check processes run at once (the others wait their turn); one
///   past its timeout is killed with its process group and counts as a failure.
///
/// Each task's checks start after delay_seconds and run every interval_seconds (counted from
/// the end of the previous check). A failure within grace_period_seconds of the start, before
/// the first success, is ignored. `changed` is called on every change of health (the first
/// result included); `failed` once, when consecutive_failures failures in a row past the grace
/// period are reached (0: never), after which that task is not checked any more.
///
/// Threading: every method is called on the agent's strand and every callback runs there.
/// Fork and exec of a COMMAND check run on the runtime's blocking pool; the wait for it is
/// an asynchronous wait on its pidfd.

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "kernel/runtime/runtime.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::agent {

/// Where a task's COMMAND check must run.
struct HealthCheckTarget {
  /// The container's main process in the agent's pid namespace (0: unknown) and its start
  /// time (field 22 of /proc/<pid>/stat), so a reused pid is never joined.
  int64_t pid = 0;
  uint64_t startTime = 0;
  /// Set for a Docker task: the check runs through `docker exec <dockerName>`.
  std::string dockerName;
  std::string sandbox;  ///< the check's working directory (and $MESOS_SANDBOX)
};

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  using Key = std::pair<std::string, std::string>;  ///< framework id, task id

  struct Callbacks {
    /// The task's health changed (or is known for the first time).
    std::function<void(const Key& key, bool healthy, const std::string& message)> changed;
    /// The task failed consecutive_failures checks in a row: kill it.
    std::function<void(const Key& key, const std::string& message)> failed;
  };

  /// `strand`: the agent's; the checker and its callbacks live on it.
  HealthChecker(runtime::Runtime& runtime, std::shared_ptr<runtime::StrandExecutor> strand,
                Callbacks callbacks, size_t maxCommandChecks = 16);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Starts checking task `key` as `check` says (replacing an earlier start). `lastHealthy`:
  /// the health last reported for it (after an agent restart), so an unchanged result is not
  /// reported again and a task once healthy is past its grace period.
  void start(const Key& key, const v1::HealthCheck& check, HealthCheckTarget target,
             std::optional<bool> lastHealthy = std::nullopt);
  /// Stops checking task `key` (a running check is abandoned, its process killed). Idempotent.
  void stop(const Key& key);
  /// Stops every check; no callback runs afterwards.
  void stopAll();

  /// How many tasks are checked; how many checks completed (for tests and benchmarks).
  size_t checked() const { return checks_.size(); }
  uint64_t completedChecks() const { return completed_; }

  struct Check;
  struct Tls;

 private:
  using CheckPtr = std::shared_ptr<Check>;

  void schedule(const CheckPtr& check, double seconds);
  void run(const CheckPtr& check);
  void runHttp(const CheckPtr& check);
  void runTcp(const CheckPtr& check);
  void dropConnections(Check& check);
  void runCommand(const CheckPtr& check);
  void spawnCommand(const CheckPtr& check);
  void onSpawned(const CheckPtr& check, pid_t pid, int pidfd, std::string error);
  void onExited(const CheckPtr& check, int waitStatus);
  void commandDone(const CheckPtr& check);
  // The end of one check: counts it, reports a change, schedules the next or gives up.
  void result(const CheckPtr& check, uint64_t attempt, bool healthy, std::string message);

  runtime::Runtime& runtime_;
  std::shared_ptr<runtime::StrandExecutor> strand_;
  Callbacks callbacks_;
  const size_t maxCommandChecks_;
  std::unique_ptr<Tls> tls_;  // made by the first HTTPS check
  std::map<Key, CheckPtr> checks_;
  size_t commandsRunning_ = 0;
  std::deque<std::weak_ptr<Check>> commandQueue_;  // waiting for a command slot
  uint64_t completed_ = 0;
  bool stopped_ = false;
};

}  // namespace tessera::kernel::agent

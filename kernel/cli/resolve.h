#pragma once

/// Leader detection for the client roles: `tessera resolve` (alias `mesos-resolve`) and the
/// `--master=zk://...` of agents, `tessera framework` and `tessera execute`.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/election/election.h"
#include "kernel/runtime/runtime.h"

namespace tessera::kernel::cli {

/// Follows the leading master under a `zk://` (or `file://`) URL.
class LeaderFollower {
 public:
  /// Parses `master` and starts detecting. `flag` names the flag in errors ("--master").
  /// Errors: InvalidArgument naming the flag. `runtime` must outlive the follower.
  static api::Result<std::unique_ptr<LeaderFollower>> start(
      runtime::Runtime& runtime, std::string_view master, std::string_view flag,
      std::chrono::milliseconds sessionTimeout = std::chrono::seconds(10));
  /// stop()s.
  ~LeaderFollower();
  void stop();
  /// "ip:port" of the leader's HTTP port, if one is known. Thread-safe, never blocks.
  std::optional<std::string> leader() const;
  /// Waits up to `timeout` for a leader. Not from the runtime's threads.
  std::optional<std::string> awaitLeader(std::chrono::milliseconds timeout) const;
  /// Called (on the follower's strand) whenever the leader changes to a new one.
  void onChange(std::function<void(const std::string& address)> fn);
  /// A resolver for AgentOptions / DriverOptions.
  std::function<std::optional<std::string>()> resolver() const;

 private:
  LeaderFollower() = default;
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::shared_ptr<election::LeaderDetector> detector_;
  mutable std::mutex mutex_;
  std::function<void(const std::string&)> onChange_;
  bool stopped_ = false;
};

/// `tessera resolve [--master=]zk://.../path [--timeout=5secs]`: prints the leader's ip:port.
int runResolve(const std::vector<std::string>& args);

}  // namespace tessera::kernel::cli

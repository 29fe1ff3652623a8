#pragma once

/// Leader election and detection on ZooKeeper, Mesos-compatible: each contender holds an
/// ephemeral sequential znode `<path>/json.info_<10-digit seq>` whose data is its MasterInfo
/// as JSON (Mesos's JSON, so Mesos-aware tools find our leader and we find theirs); the lowest
/// sequence leads. A contender watches only its predecessor (no herd on a change); a detector
/// watches the children of `<path>`.
///
/// Threading: each object lives on the executor it is given; its callbacks run there. Each
/// has its own ZooKeeper session (kernel/zookeeper/ZkClient): a contender's session is its
/// candidacy. start() on that executor or any thread; stop() from a control thread (or the
/// executor), before the last reference goes.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/zookeeper/client.h"
#include "kernel/zookeeper/url.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::election {

/// The prefix of the election znodes, as Mesos names them.
inline constexpr std::string_view kLabelPrefix = "json.info_";

/// A master as its election znode describes it.
struct MasterInfo {
  std::string id;
  std::string ip;        ///< dotted IPv4
  uint16_t port = 5050;  ///< HTTP port
  std::string hostname;
  std::string version;
  std::string pid;  ///< "master@ip:port"
  /// "ip:port" (hostname:port when there is no ip).
  std::string address() const;
};

/// Mesos's MasterInfo JSON: id, pid, ip as a uint32 in network byte order (as Mesos writes
/// it), port, hostname, version, address{ip, hostname, port}.
std::string masterInfoJson(const MasterInfo& info);
/// Parses it (Mesos's own too). Errors: InvalidArgument naming what is missing.
api::Result<MasterInfo> parseMasterInfoJson(std::string_view json);

/// The election znodes among `children`, sorted by sequence number.
std::vector<std::string> electionNodes(const std::vector<std::string>& children);

/// Stands for election with `info` until stopped or its session is lost.
class LeaderContender : public std::enable_shared_from_this<LeaderContender> {
 public:
  struct Callbacks {
    /// This contender leads now.
    std::function<void()> elected;
    /// It led and no longer can (session expired or disconnected past the session timeout,
    /// or its znode was removed): step down at once. Called at most once.
    std::function<void(const std::string& reason)> lost;
    /// Connected to ZooKeeper or not (for /health).
    std::function<void(bool connected)> connection;
  };
  static std::shared_ptr<LeaderContender> create(zookeeper::ZkUrl url,
                                                 std::chrono::milliseconds sessionTimeout,
                                                 MasterInfo info, api::Executor& executor,
                                                 Callbacks callbacks);
  void start();
  /// Withdraws (the znode goes with the session).
  void stop();
  bool leading() const { return leading_; }
  /// The znode name this contender holds ("" before it has one). On the executor.
  const std::string& znode() const { return node_; }

 private:
  LeaderContender(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout, MasterInfo info,
                  api::Executor& executor, Callbacks callbacks);
  void onSession(zookeeper::ZkSessionEvent event);
  void contend();
  void check();
  void lose(const std::string& reason);

  zookeeper::ZkUrl url_;
  std::chrono::milliseconds sessionTimeout_;
  MasterInfo info_;
  api::Executor& executor_;
  Callbacks callbacks_;
  std::shared_ptr<zookeeper::ZkClient> client_;
  std::string node_;
  bool creating_ = false;
  bool leading_ = false;
  bool lost_ = false;
  std::unique_ptr<api::TimerHandle> disconnectTimer_;
};

/// Follows who leads under a path.
class LeaderDetector : public std::enable_shared_from_this<LeaderDetector> {
 public:
  /// Called on the executor whenever the leader changes (nullopt: none right now).
  using Listener = std::function<void(const std::optional<MasterInfo>& leader)>;
  static std::shared_ptr<LeaderDetector> create(zookeeper::ZkUrl url,
                                                std::chrono::milliseconds sessionTimeout,
                                                api::Executor& executor, Listener listener);
  void start();
  void stop();
  /// The leader last seen. Thread-safe.
  std::optional<MasterInfo> leader() const;
  /// Waits up to `timeout` for a leader (not from the executor). Thread-safe.
  std::optional<MasterInfo> awaitLeader(std::chrono::milliseconds timeout) const;

 private:
  LeaderDetector(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout,
                 api::Executor& executor, Listener listener);
  void refresh();
  void update(std::optional<MasterInfo> leader, const std::string& node);

  zookeeper::ZkUrl url_;
  std::chrono::milliseconds sessionTimeout_;
  api::Executor& executor_;
  Listener listener_;
  std::shared_ptr<zookeeper::ZkClient> client_;
  std::string leaderNode_;  // executor only
  bool known_ = false;      // executor only: a first answer was given to the listener

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::optional<MasterInfo> leader_;
};

}  // namespace tessera::kernel::election

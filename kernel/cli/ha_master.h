#pragma once

/// `tessera master --zk=zk://.../path`: a master that contends for leadership in ZooKeeper and
/// runs the Master component only while it leads, with its registry in ZooKeeper (or, with
/// --registry=in_memory, in the leader's memory, lost on failover, as Mesos allows). A follower
/// answers API calls with 307 to the leader, `/master/redirect` with a redirect, and
/// `/master/transport` with 503; `/state` on every master says who leads. A leader that loses
/// its ZooKeeper session exits at once (status 1) for its supervisor to restart it, rather than
/// risk two leaders.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kernel/cli/daemon.h"
#include "kernel/cli/roles.h"
#include "kernel/election/election.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/flags.h"
#include "kernel/state/zookeeper_store.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

/// The HA flags, with Mesos's names and defaults.
struct HaFlags {
  std::string zk;      ///< --zk
  int64_t quorum = 0;  ///< --quorum (sanity-checked); 0: not given
  runtime::Duration zkSessionTimeout = std::chrono::seconds(10);  ///< --zk_session_timeout
};

void addHaFlags(runtime::FlagSet& flags, HaFlags& ha);

/// Checks the HA flags; the parsed --zk URL. Errors: InvalidArgument naming the flag.
api::Result<zookeeper::ZkUrl> validateHaFlags(const HaFlags& ha);

class HaMaster {
 public:
  /// Opens the ZooKeeper store, installs the follower endpoints and starts contending. Called
  /// inside the daemon's setup; the daemon stops it first on stop().
  static api::Result<std::unique_ptr<HaMaster>> start(Daemon& daemon, const CommonFlags& common,
                                                      const MasterFlags& flags,
                                                      zookeeper::ZkUrl url,
                                                      std::chrono::milliseconds sessionTimeout);
  /// Starts contending (and detecting the leader) once the HTTP port is bound: `httpPort` is
  /// what the election znode advertises.
  api::Status contend(uint16_t httpPort);
  ~HaMaster();
  /// Withdraws from the election and stops the master if it leads. Idempotent.
  void stop();

 private:
  HaMaster(Daemon& daemon, const CommonFlags& common, const MasterFlags& flags,
           zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout);
  api::Status installFollowerRoutes();
  // The follower's exact routes (the master adds its own); the catch-all stays until then.
  void removeFollowerRoutes();
  void controlLoop();
  void watchConnection(std::chrono::seconds waited);
  std::string stateJson() const;

  Daemon& daemon_;
  CommonFlags common_;
  MasterFlags flags_;
  zookeeper::ZkUrl url_;
  std::chrono::milliseconds sessionTimeout_;
  election::MasterInfo self_;
  std::unique_ptr<runtime::StrandExecutor> executor_;  // follower routes, election callbacks
  std::unique_ptr<state::ZooKeeperStore> store_;       // null with --registry=in_memory
  std::shared_ptr<election::LeaderContender> contender_;
  std::shared_ptr<election::LeaderDetector> detector_;
  std::unique_ptr<MasterRole> master_;            // control thread only
  std::unique_ptr<api::TimerHandle> watchTimer_;  // executor_ only

  std::thread control_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool elected_ = false;
  bool stopping_ = false;
  bool leading_ = false;  // the master component runs
  bool zkConnected_ = false;
  std::optional<election::MasterInfo> leader_;
  std::chrono::system_clock::time_point startTime_ = std::chrono::system_clock::now();
};

}  // namespace tessera::kernel::cli

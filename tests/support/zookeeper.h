#pragma once

/// A real ZooKeeper for tests: Debian's `zookeeper` package (Java), started directly with
/// `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain`
/// on free loopback ports, each server with its own data dir, standalone or as an ensemble.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tessera/api/status.h"
#include "tests/support/ci.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {

/// Why ZooKeeper cannot run here ("" when it can): java or the zookeeper jar is missing.
std::string zooKeeperMissingReason();

/// In a test body: skips with the reason when ZooKeeper is missing, but fails when CI=true
/// (CI must run these tests).
#define TESSERA_REQUIRE_ZOOKEEPER()                                             \
  do {                                                                          \
    const std::string zkMissing = ::tessera::testing::zooKeeperMissingReason(); \
    if (!zkMissing.empty()) {                                                   \
      TESSERA_SKIP_UNLESS_CI(zkMissing);                                        \
    }                                                                           \
  } while (0)

/// One to N ZooKeeper servers on loopback. The destructor SIGKILLs every server and removes
/// their directories.
class ZooKeeperEnsemble {
 public:
  /// Starts `servers` servers (1: standalone) and waits until each answers `ruok` and, for an
  /// ensemble, until one of them leads. Errors: Unavailable when java/zookeeper is missing or a
  /// server does not come up within `timeout` (with the tail of its output).
  static api::Result<std::unique_ptr<ZooKeeperEnsemble>> start(
      int servers = 1, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~ZooKeeperEnsemble();

  /// "127.0.0.1:p1,127.0.0.1:p2,..." of the servers (all of them, running or not).
  std::string connectString() const;
  /// "zk://<connectString()><path>".
  std::string url(const std::string& path) const { return "zk://" + connectString() + path; }
  int size() const { return static_cast<int>(servers_.size()); }
  uint16_t clientPort(int server) const { return servers_[server].clientPort; }

  /// SIGKILLs server `server` (a crash or a partition from everyone's point of view).
  void kill(int server);
  /// Starts server `server` again on the same ports and data; waits until it answers `ruok`.
  api::Status restart(int server, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  bool running(int server) const;

  /// Sends a four-letter word to server `server`; its answer. Errors: Unavailable.
  api::Result<std::string> fourLetterWord(int server, const std::string& word) const;

 private:
  struct Server {
    uint16_t clientPort = 0;
    uint16_t peerPort = 0;
    uint16_t electionPort = 0;
    std::string dir;
    std::unique_ptr<Subprocess> process;
  };
  ZooKeeperEnsemble() = default;
  api::Status launch(int server);
  api::Status awaitReady(int server, std::chrono::steady_clock::time_point deadline);

  TempDir root_;
  std::vector<Server> servers_;
};

/// One single-server ensemble shared by every test of the binary that asks (started on first
/// use, gone at exit); each test uses its own path. Aborts when the server cannot start: call
/// it after TESSERA_REQUIRE_ZOOKEEPER().
ZooKeeperEnsemble& sharedZooKeeper();

}  // namespace tessera::testing

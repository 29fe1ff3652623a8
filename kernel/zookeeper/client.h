#pragma once

/// An asynchronous ZooKeeper client on libzookeeper-mt for components that live on a strand
/// (election, leader detection). Every completion and watch is moved from ZooKeeper's own
/// threads onto the owner's executor, tagged with the session generation it was made in; when
/// it arrives after the session it belongs to has been replaced (expired, stopped) it is
/// dropped there, so the owner never sees an event from an old session (Mesos's
/// zookeeper/watcher.hpp does the same with the session id).

#include <zookeeper/zookeeper.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernel/zookeeper/url.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::zookeeper {

/// ZooKeeper's error code as a Status code: ZNONODE NotFound, ZNODEEXISTS AlreadyExists,
/// ZBADVERSION Aborted, ZNOAUTH PermissionDenied (naming `znode`, the one whose ACL refused: the
/// parent for a create or a delete, the znode itself otherwise), connection and session errors
/// Unavailable, the rest Internal.
api::Status zkStatus(int rc, std::string_view what, std::string_view znode = {});

/// The parent of an absolute znode path ("/" for "/a").
std::string parentZnode(std::string_view path);

/// The ACL for new znodes: open, or with credentials creator-all plus world-read (as Mesos).
const ACL_vector* aclFor(bool authenticated);

/// Sets libzookeeper's own log level once per process from TESSERA_ZK_LOG (error, warn, info,
/// debug; off by default: it logs every failed connection attempt otherwise).
void quietZooKeeperLogs();

/// What a znode's stat says that we use.
struct ZkStat {
  int32_t version = 0;
  int64_t ephemeralOwner = 0;
  int32_t numChildren = 0;
};

/// Session changes, delivered on the owner's executor.
enum class ZkSessionEvent {
  kConnected,     ///< connected (again) with a live session; `sessionId()` says which
  kDisconnected,  ///< the connection dropped; the session may still be alive
  kExpired,       ///< the session is gone (its ephemeral znodes too); a new one is started
};

class ZkClient : public std::enable_shared_from_this<ZkClient> {
 public:
  struct Options {
    ZkUrl url;
    std::chrono::milliseconds sessionTimeout{10000};
  };
  using SessionListener = std::function<void(ZkSessionEvent)>;
  /// A watch firing: the event type (ZOO_CREATED_EVENT, ZOO_DELETED_EVENT, ZOO_CHANGED_EVENT,
  /// ZOO_CHILD_EVENT) and the path.
  using Watcher = std::function<void(int type, const std::string& path)>;

  /// `executor` is where every callback runs; it must outlive the client.
  static std::shared_ptr<ZkClient> create(Options options, api::Executor& executor,
                                          SessionListener listener);
  ~ZkClient();
  ZkClient(const ZkClient&) = delete;
  ZkClient& operator=(const ZkClient&) = delete;

  /// Opens the session (in the background: an unreachable ensemble is retried by the client
  /// library; a connect string it cannot use is retried with backoff). Call once, from the
  /// owner's executor.
  void start();
  /// Closes the session (its ephemeral znodes go at once). No callback runs after it returns.
  /// Blocks; not from ZooKeeper's threads. Idempotent. Must be called before the last
  /// reference goes.
  void stop();

  // Operations, called on the owner's executor; `done` runs there with ZooKeeper's rc (ZOK on
  // success). Callbacks of a session that has since been replaced are dropped.
  using CreateDone = std::function<void(int rc, const std::string& createdPath)>;
  using GetDone = std::function<void(int rc, const std::string& data, const ZkStat& stat)>;
  using ChildrenDone = std::function<void(int rc, std::vector<std::string> children)>;
  using StatDone = std::function<void(int rc, const ZkStat& stat)>;
  using VoidDone = std::function<void(int rc)>;

  void create(const std::string& path, const std::string& data, int flags, CreateDone done);
  /// Creates `path` and its missing ancestors as empty persistent znodes; ZNODEEXISTS is ZOK.
  /// Only missing znodes are created: ZooKeeper checks the parent's ACL before it answers
  /// ZNODEEXISTS, so creating an existing znode under a parent we may not write would fail.
  void createPath(const std::string& path, VoidDone done);
  void get(const std::string& path, Watcher watcher, GetDone done);
  void getChildren(const std::string& path, Watcher watcher, ChildrenDone done);
  void exists(const std::string& path, Watcher watcher, StatDone done);
  void remove(const std::string& path, int32_t version, VoidDone done);

  /// For the C completion trampolines only.
  void completeFromC(uint64_t token, int rc, void* payload) { complete(token, rc, payload); }

  bool connected() const { return connected_; }
  int64_t sessionId() const { return sessionId_; }
  /// Bumped whenever the session is replaced.
  uint64_t generation() const { return generation_; }
  const ZkUrl& url() const { return options_.url; }

 private:
  ZkClient(Options options, api::Executor& executor, SessionListener listener);
  void open();
  void closeHandle();
  static void onWatch(zhandle_t* zh, int type, int state, const char* path, void* context);
  void onSession(int state);
  // Registers a completion; returns the token passed as the C completion's data.
  uint64_t addPending(std::function<void(int rc, void* payload)> handler);
  void complete(uint64_t token, int rc, void* payload);
  uint64_t addWatch(Watcher watcher);
  void postIfCurrent(uint64_t generation, std::function<void()> fn);

  Options options_;
  api::Executor& executor_;
  SessionListener listener_;

  // Touched on the owner's executor only.
  zhandle_t* handle_ = nullptr;
  uint64_t generation_ = 0;
  bool connected_ = false;
  int64_t sessionId_ = 0;
  bool stopped_ = false;
  int openAttempts_ = 0;
  std::unique_ptr<api::TimerHandle> retry_;

  // Shared with ZooKeeper's threads.
  std::mutex mutex_;
  uint64_t nextToken_ = 1;
  uint64_t currentGeneration_ = 0;  ///< generation_ as the ZooKeeper threads see it
  std::map<uint64_t, std::pair<uint64_t, std::function<void(int, void*)>>> pending_;
  std::map<uint64_t, std::pair<uint64_t, Watcher>> watches_;
};

}  // namespace tessera::kernel::zookeeper

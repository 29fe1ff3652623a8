#pragma once

#include <zookeeper/zookeeper.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kernel/zookeeper/url.h"
#include "tessera/api/state_store.h"

namespace tessera::kernel::state {

/// A StateStore in ZooKeeper, for masters started with --zk. Key `/a/b` is the znode
/// `<url path>/state/a/b`; ancestors that were never set themselves are empty marker znodes.
/// A value znode holds a small header (magic, store version, inline or chunked) and the value;
/// the store's version lives in that header (not the znode's own version, which markers and
/// removals also move) and compare-and-set is a znode-version-checked write after a read,
/// retried when the znode changed in between. Values over kChunkBytes go to sequential chunk
/// znodes under `<url path>/chunks`, written before the header that names them and removed
/// after it no longer does, so no znode comes near ZooKeeper's 1 MB limit.
///
/// Every operation runs in call order on one thread of the store's own with ZooKeeper's
/// synchronous API over the store's own session; a call waits up to the session timeout for a
/// connection and then fails with Unavailable.
class ZooKeeperStore final : public api::StateStore {
 public:
  /// The largest value kept inline in a key's znode; larger ones are chunked.
  static constexpr size_t kChunkBytes = 512 * 1024;
  /// Calls queued beyond this fail with ResourceExhausted.
  static constexpr size_t kMaxQueued = 100000;
  /// Threads for a batch of consecutive reads, and the most reads in one batch.
  static constexpr size_t kReaders = 16;
  static constexpr size_t kMaxReadBatch = 256;

  /// Starts the session in the background (an unreachable ensemble is not an error here: calls
  /// fail with Unavailable until it is reachable). Errors: InvalidArgument for servers the
  /// client library refuses.
  static api::Result<std::unique_ptr<ZooKeeperStore>> open(
      zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout);
  /// Answers what is still queued with Unavailable, then closes the session.
  ~ZooKeeperStore() override;

  void get(std::string_view key, api::Executor& replyOn,
           Callback<std::optional<api::StateEntry>> done) override;
  void set(std::string_view key, std::string value, uint64_t expectedVersion,
           api::Executor& replyOn, Callback<uint64_t> done) override;
  void remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
              StatusCallback done) override;
  void children(std::string_view prefix, api::Executor& replyOn,
                Callback<std::vector<std::string>> done) override;

  /// True while the store's session is connected.
  bool connected() const;

 private:
  struct Node;
  ZooKeeperStore(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout);
  // Queues `op` (run on the worker thread, with `true` unless the store is closing).
  bool enqueue(std::function<void(bool run)> op);
  // Queues a read. Consecutive reads in the queue run side by side on up to kReaders threads
  // (reads commute; ZooKeeper pipelines one session's requests), after the worker has checked
  // the session once for the batch: `session` is that check (or "closing").
  bool enqueueRead(std::function<void(const api::Status& session)> read);
  void loop();
  api::Status connect();  // worker thread: waits for a live session
  static void onSession(zhandle_t* zh, int type, int state, const char* path, void* context);

  std::string znode(std::string_view key) const;
  // `buffer` holds a whole znode: buffer_ on the worker, a reader's own in a read batch.
  int readNode(const std::string& path, Node& node, std::vector<char>& buffer);
  api::Result<std::optional<api::StateEntry>> doGet(const std::string& key,
                                                    std::vector<char>& buffer);
  void runReads(std::vector<std::function<void(const api::Status&)>> reads, bool run);
  api::Result<uint64_t> doSet(const std::string& key, const std::string& value, uint64_t expected);
  api::Status doRemove(const std::string& key, uint64_t expected);
  api::Result<std::vector<std::string>> doChildren(const std::string& prefix);
  // Creates the missing ancestors of `path` as empty markers, leaving existing ones alone; ZOK,
  // or the rc of the create that failed, with the znode it tried in `failedAt`.
  int createAncestors(const std::string& path, std::string& failedAt);
  api::Result<std::vector<std::string>> writeChunks(const std::string& key,
                                                    const std::string& value);
  void removeChunks(const std::vector<std::string>& names);
  void pruneMarkers(std::string path);

  const zookeeper::ZkUrl url_;
  const std::chrono::milliseconds sessionTimeout_;
  const std::string root_;    // <path>/state
  const std::string chunks_;  // <path>/chunks
  std::vector<char> buffer_;  // worker thread only

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  struct Queued {
    std::function<void(bool)> op;                  // a write (or anything ordered)
    std::function<void(const api::Status&)> read;  // or a read
  };
  std::deque<Queued> queue_;
  bool closing_ = false;
  int sessionState_ = 0;
  zhandle_t* handle_ = nullptr;  // worker thread (and the destructor after the join)
  std::thread worker_;
};

}  // namespace tessera::kernel::state

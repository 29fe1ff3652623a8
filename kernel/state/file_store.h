#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tessera/api/state_store.h"

namespace tessera::kernel::state {

/// A crash-safe StateStore in a directory, for a single master's registry under --work_dir.
///
/// Layout: one file per key, named by the key percent-escaped (every byte outside
/// [A-Za-z0-9_-] as %XX, so "/registry/a-1" is "%2Fregistry%2Fa-1"); names holding a '.' are
/// never entries. Each file is a 32-byte header — magic "TSS1", 4 zero bytes, then version,
/// value length and FNV-1a-64 checksum of the value, each a little-endian uint64 — and the value.
///
/// Writes: the new file is written as "<name>.tmp", fsync'd, renamed over "<name>", and the
/// directory fsync'd before the reply, so an acknowledged set survives a crash or power loss
/// and a reader after a crash sees either the old or the new file, whole. A remove unlinks and
/// fsyncs the directory. A "LOCK" file (flock) keeps a second process out.
///
/// Group commit: sets queued one behind another (a burst of agents registering, a module writing
/// many records) are written together as one group: every "<name>.tmp" is written, one
/// syncfs(2) makes them all durable, each is renamed over its "<name>", and one fsync of the
/// directory makes the renames durable. Each caller is still answered only once its own set is
/// durable, with its own result (its own compare-and-set; one that fails leaves the others
/// alone). A group is a run of consecutive queued sets on distinct keys (a get, remove or
/// children call, or a second set of the same key, ends it), at most kMaxGroup long; a set
/// alone in the queue is written as before (fsync of its file, then of the directory). The cost
/// of a group is two syncs however many sets it holds, instead of two per set; syncfs also
/// flushes whatever else is dirty on the store's file system.
///
/// Threading: all file I/O runs on one dedicated thread owned by the store (it blocks, and is
/// documented to: it is not a runtime thread), in call order, so compare-and-set needs no lock
/// beyond the queue's. An index of key -> version lives in memory for children() and the
/// version checks. Keys whose escaped name exceeds kMaxNameBytes fail with InvalidArgument.
class FileStore final : public api::StateStore {
 public:
  /// Longest escaped key (a file name) this store accepts.
  static constexpr size_t kMaxNameBytes = 240;
  /// Calls queued beyond this fail with ResourceExhausted.
  static constexpr size_t kMaxQueued = 10000;
  /// Most sets written as one group.
  static constexpr size_t kMaxGroup = 4096;

  /// Opens (creating if needed) the store in `dir` and recovers it: leftover "*.tmp" files are
  /// removed; a file that is torn or fails its checksum is renamed to "<name>.corrupt", logged
  /// as an error, and its key reads as absent (rename-over means there is no older copy).
  /// Errors: Unavailable when the directory cannot be created or read; FailedPrecondition when
  /// another process holds it.
  static api::Result<std::unique_ptr<FileStore>> open(const std::filesystem::path& dir);

  /// Answers every queued call, then joins the I/O thread and releases the lock.
  ~FileStore() override;
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  void get(std::string_view key, api::Executor& replyOn,
           Callback<std::optional<api::StateEntry>> done) override;
  void set(std::string_view key, std::string value, uint64_t expectedVersion,
           api::Executor& replyOn, Callback<uint64_t> done) override;
  void remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
              StatusCallback done) override;
  void children(std::string_view prefix, api::Executor& replyOn,
                Callback<std::vector<std::string>> done) override;

  /// The file name a key is stored under ("%2Fa%2Fb" for "/a/b").
  static std::string escapeKey(std::string_view key);

  /// How many times sets were made durable so far: one per set written alone, one per group
  /// (what the group commit saves shows as syncs() below the number of sets). Thread-safe.
  uint64_t syncs() const { return syncs_.load(); }

 private:
  /// A queued call: a set (kept apart so that consecutive ones can be written as a group), or
  /// any other call as `work`.
  struct SetCall {
    std::string key;
    std::string value;
    uint64_t expectedVersion = 0;
    api::Executor* replyOn = nullptr;
    Callback<uint64_t> done;
  };
  struct Queued {
    std::function<void()> work;    ///< a get, remove or children call; empty for a set
    std::unique_ptr<SetCall> set;  ///< a set
  };

  FileStore(std::filesystem::path dir, int dirFd, int lockFd);

  /// Queues `item` for the I/O thread; false (nothing queued) when the queue is full.
  bool enqueue(Queued item);
  void loop();
  /// Writes `group` (sets on distinct keys, in call order) and answers each.
  void writeGroup(std::vector<std::unique_ptr<SetCall>>& group);
  api::Status recover();

  api::Result<std::optional<api::StateEntry>> doGet(const std::string& key);
  api::Result<uint64_t> doSet(const std::string& key, const std::string& value,
                              uint64_t expectedVersion);
  api::Status doRemove(const std::string& key, uint64_t expectedVersion);
  std::vector<std::string> doChildren(const std::string& prefix);

  const std::filesystem::path dir_;
  const int dirFd_;
  const int lockFd_;

  // Touched only by the I/O thread (and by open() before it starts).
  std::map<std::string, uint64_t, std::less<>> index_;

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Queued> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> syncs_{0};
};

}  // namespace tessera::kernel::state

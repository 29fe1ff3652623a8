#pragma once

/// The fetcher's per-agent cache (Mesos's --fetcher_cache_dir / --fetcher_cache_size): one file
/// per URI, kept least-recently-used first out once their total size passes the capacity, and
/// one download per URI however many fetches want it at once (the others wait for that one and
/// share its result, success or error).
///
/// Not persisted: a new cache removes whatever an earlier agent left in its directory (as
/// Mesos's fetcher does at agent start).
///
/// Cached files are read-only (0444) from the end of their download on, because the fetcher
/// may hard-link them into sandboxes (fetcher.h). Before a hit is served the file is checked
/// against what was downloaded (size, modification time, still read-only); a file that was
/// changed, removed or made writable is dropped and downloaded again.
///
/// An archive's entry may also keep the archive's extracted tree (tree()), built at its first
/// extraction into `<file>.tree-<n>.partial` and renamed to `<file>.tree-<n>` once complete and
/// sealed: its regular files made read-only (write bits and set-id bits cleared) and each
/// node recorded (type, and for a file its size, mtime and mode). A tree is served only from
/// that record and only after every node was checked against it; one found changed is removed
/// and built again under a new name. A tree counts toward the capacity and goes with its
/// archive. A half-built tree is never served: a failed build removes it, and a killed agent's
/// leftovers are removed with the rest of the directory by the next initialize().
///
/// Threading: thread-safe (one mutex); acquire() blocks its caller while it downloads or waits
/// for another caller's download, so it runs on the fetcher's threads only.

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::kernel::agent {

class FetcherCache;
struct CacheEntry;  // fetcher_cache.cc

/// One node of a cached extracted tree, as sealed.
struct TreeNode {
  enum class Type { kDirectory, kFile, kSymlink };
  std::filesystem::path path;  ///< relative to the tree's root, lexically normal
  Type type = Type::kFile;
  unsigned mode = 0;  ///< permission bits (a file's are read-only)
  uint64_t size = 0;  ///< a file's
  int64_t mtimeSec = 0;
  int64_t mtimeNsec = 0;
  std::string target;  ///< a symlink's
};

/// A cached archive's extracted tree: `root` holds it; `nodes` in depth-first order (every
/// directory before what it holds).
struct CachedTree {
  std::filesystem::path root;
  std::vector<TreeNode> nodes;
  uint64_t bytes = 0;  ///< the files' sizes, each inode once
  uint64_t files = 0;  ///< regular-file nodes
  /// Every file is readable by everyone: a sandbox may share it (a task not run as the agent's
  /// user reads a shared file through its "other" bits; a private file is extracted instead).
  bool shareable = true;
};

/// A cached file held for use: it is not evicted while a lease on it lives. Move-only.
class CacheLease {
 public:
  CacheLease() = default;
  CacheLease(CacheLease&& other) noexcept;
  CacheLease& operator=(CacheLease&& other) noexcept;
  CacheLease(const CacheLease&) = delete;
  CacheLease& operator=(const CacheLease&) = delete;
  ~CacheLease();

  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }
  /// True when the file was already cached (or another fetch downloaded it meanwhile).
  bool hit() const { return hit_; }

 private:
  friend class FetcherCache;
  void release();

  FetcherCache* cache_ = nullptr;
  std::shared_ptr<CacheEntry> entry_;
  std::filesystem::path path_;
  uint64_t size_ = 0;
  bool hit_ = false;
};

class FetcherCache {
 public:
  /// Writes the whole file to `fd`, counting its bytes into `bytes`.
  using Download = std::function<api::Status(int fd, uint64_t& bytes)>;

  /// `directory` holds the files; `capacity` bounds their total size in bytes.
  FetcherCache(std::filesystem::path directory, uint64_t capacity);

  /// Creates the directory (0700) and empties it. Errors: Internal naming the directory.
  api::Status initialize();

  /// The cached file of `key` (the URI), downloading it with `download` when it is not cached
  /// and nobody downloads it yet, else waiting for that download. `name` (the URI's file name)
  /// ends the cached file's name, so its extension survives. `cancelled` is polled while
  /// waiting (wakeWaiters() makes waiters look at it). A file larger than the capacity is
  /// served to its callers and then dropped. Errors: the download's, or Cancelled.
  api::Result<CacheLease> acquire(const std::string& key, const std::string& name,
                                  const Download& download, const std::function<bool()>& cancelled);

  /// Fills an empty directory with an archive's extracted contents.
  using Extract = std::function<api::Status(const std::filesystem::path& directory)>;

  /// The extracted tree of the archive `lease` holds, building it with `extract` when there is
  /// none (or the one there was found changed) and nobody builds it yet, else waiting for that
  /// build; `built` says whether this call built it. The tree lives as long as the lease's
  /// entry. A failed build's error goes to its waiters too (the next call builds again).
  /// Errors: the extraction's, Internal (sealing), Unavailable (the entry left the cache
  /// meanwhile), or Cancelled.
  api::Result<std::shared_ptr<const CachedTree>> tree(const CacheLease& lease,
                                                      const Extract& extract,
                                                      const std::function<bool()>& cancelled,
                                                      bool& built);

  /// Wakes the callers waiting in acquire(), so they look at their `cancelled` again.
  void wakeWaiters();

  /// The cached files' total size and count, and the downloads made so far. Thread-safe.
  uint64_t totalBytes() const;
  size_t entries() const;
  uint64_t downloads() const;
  /// Callers of acquire() waiting for another's download now. Thread-safe.
  size_t waiting() const;
  /// Cached files found changed, removed or writable at a hit, and dropped. Thread-safe.
  uint64_t discarded() const;
  /// Extracted trees built so far, and those found changed and dropped. Thread-safe.
  uint64_t treeBuilds() const;
  uint64_t treesDiscarded() const;

 private:
  friend class CacheLease;

  void release(CacheEntry& entry);
  // Removes unleased ready entries, least recently used first, until within capacity.
  void evictLocked();
  CacheLease leaseLocked(const std::shared_ptr<CacheEntry>& entry, bool hit);
  // Whether a ready entry's file is still what was downloaded (size, mtime, read-only).
  static bool intact(const CacheEntry& entry);
  // Forgets `entry` (under `key`): its file goes now, or when its last lease is released.
  void discardLocked(const std::string& key, const std::shared_ptr<CacheEntry>& entry);
  // Whether a sealed tree still matches its record.
  static bool intact(const CachedTree& tree);
  // Walks a freshly extracted tree: seals its files read-only and records every node.
  static api::Result<CachedTree> seal(const std::filesystem::path& root);
  // Removes an entry's file and tree from the disk.
  static void removeFiles(const CacheEntry& entry);

  const std::filesystem::path directory_;
  const uint64_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<CacheEntry>> entries_;
  uint64_t total_ = 0;
  uint64_t useClock_ = 0;
  uint64_t nextFile_ = 0;
  uint64_t downloads_ = 0;
  size_t waiting_ = 0;
  uint64_t discarded_ = 0;
  uint64_t treeBuilds_ = 0;
  uint64_t treesDiscarded_ = 0;
};

}  // namespace tessera::kernel::agent

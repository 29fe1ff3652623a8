// The fetcher's cache: an in-memory index over one directory, guarded by one mutex. Downloads
// and waits happen with the mutex released; only the index changes under it.

#include "kernel/agent/fetcher_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

enum class CacheState { kDownloading, kReady, kFailed };
enum class TreeState { kNone, kBuilding, kReady };

// One URI's cached file. Shared by the index and the leases on it, so a lease can be released
// after its entry left the index (discarded as changed).
struct CacheEntry {
  CacheState state = CacheState::kDownloading;
  fs::path path;
  uint64_t size = 0;
  timespec mtime{};      // of the finished download
  uint64_t lastUse = 0;  // a tick of useClock_
  size_t leases = 0;
  bool discarded = false;  // out of the index; the file goes with the last lease
  api::Status error;       // kFailed
  // The extracted tree (an archive's), counted in the cache's total while ready and kept.
  TreeState treeState = TreeState::kNone;
  std::shared_ptr<const CachedTree> tree;  // kReady
  uint64_t treeBytes = 0;                  // counted in total_
  uint64_t treeFailures = 0;               // builds that failed, the last one's error below
  api::Status treeError;
};

CacheLease::CacheLease(CacheLease&& other) noexcept { *this = std::move(other); }

CacheLease& CacheLease::operator=(CacheLease&& other) noexcept {
  if (this != &other) {
    release();
    cache_ = std::exchange(other.cache_, nullptr);
    entry_ = std::move(other.entry_);
    path_ = std::move(other.path_);
    size_ = other.size_;
    hit_ = other.hit_;
  }
  return *this;
}

CacheLease::~CacheLease() { release(); }

void CacheLease::release() {
  if (cache_ != nullptr) std::exchange(cache_, nullptr)->release(*entry_);
  entry_.reset();
}

FetcherCache::FetcherCache(fs::path directory, uint64_t capacity)
    : directory_(std::move(directory)), capacity_(capacity) {}

api::Status FetcherCache::initialize() {
  std::error_code error;
  fs::create_directories(directory_, error);
  if (!error) fs::permissions(directory_, fs::perms::owner_all, error);
  if (!error) {
    for (const auto& child : fs::directory_iterator(directory_, error)) {
      fs::remove_all(child.path(), error);
      if (error) break;
    }
  }
  if (error) {
    return api::internalError("cannot prepare the fetcher cache '{}': {}", directory_.string(),
                              error.message());
  }
  return api::Status::ok();
}

api::Result<CacheLease> FetcherCache::acquire(const std::string& key, const std::string& name,
                                              const Download& download,
                                              const std::function<bool()>& cancelled) {
  std::unique_lock lock(mutex_);
  for (auto it = entries_.find(key); it != entries_.end(); it = entries_.find(key)) {
    std::shared_ptr<CacheEntry> entry = it->second;  // outlives its erasure on failure
    ++waiting_;
    changed_.wait(lock, [&] { return entry->state != CacheState::kDownloading || cancelled(); });
    --waiting_;
    if (entry->state == CacheState::kReady) {
      if (intact(*entry)) return leaseLocked(entry, true);
      // Changed since its download (a task wrote through a link it had made writable, say):
      // never served again; this caller downloads it afresh.
      discardLocked(key, entry);
      continue;
    }
    if (cancelled()) return api::makeStatus(api::StatusCode::kCancelled, "the fetch was cancelled");
    // The downloader's own cancellation (its task was killed) is not ours: try again, maybe
    // as the downloader this time.
    if (entry->error.code() != api::StatusCode::kCancelled) return entry->error;
  }
  auto entry = std::make_shared<CacheEntry>();
  entry->path = directory_ / fmt::format("{}-{}", nextFile_++, name);
  entries_[key] = entry;
  ++downloads_;
  lock.unlock();

  uint64_t bytes = 0;
  api::Status status;
  int fd = ::open(entry->path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    status = api::internalError("cannot create the cache file '{}': {}", entry->path.string(),
                                std::strerror(errno));
  } else {
    status = download(fd, bytes);
    // Read-only from now on: sandboxes may share this inode by hard link.
    struct stat info {};
    if (status && (::fchmod(fd, 0444) != 0 || ::fstat(fd, &info) != 0)) {
      status = api::internalError("sealing the cache file: {}", std::strerror(errno));
    }
    entry->mtime = info.st_mtim;
    if (::close(fd) != 0 && status) {
      status = api::internalError("writing the cache file: {}", std::strerror(errno));
    }
  }

  lock.lock();
  if (!status) {
    entry->state = CacheState::kFailed;
    entry->error = status;
    entries_.erase(key);
    std::error_code ignored;
    fs::remove(entry->path, ignored);
    changed_.notify_all();
    return status;
  }
  entry->state = CacheState::kReady;
  entry->size = bytes;
  total_ += bytes;
  CacheLease lease = leaseLocked(entry, false);
  evictLocked();
  changed_.notify_all();
  return lease;
}

bool FetcherCache::intact(const CacheEntry& entry) {
  struct stat info {};
  if (::lstat(entry.path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  return static_cast<uint64_t>(info.st_size) == entry.size && (info.st_mode & 0222) == 0 &&
         info.st_mtim.tv_sec == entry.mtime.tv_sec && info.st_mtim.tv_nsec == entry.mtime.tv_nsec;
}

void FetcherCache::discardLocked(const std::string& key, const std::shared_ptr<CacheEntry>& entry) {
  if (auto it = entries_.find(key); it != entries_.end() && it->second == entry) entries_.erase(it);
  if (entry->discarded) return;
  entry->discarded = true;
  total_ -= entry->size + entry->treeBytes;
  entry->treeBytes = 0;
  ++discarded_;
  if (entry->leases == 0) removeFiles(*entry);
}

void FetcherCache::removeFiles(const CacheEntry& entry) {
  std::error_code ignored;
  fs::remove(entry.path, ignored);
  if (entry.tree) fs::remove_all(entry.tree->root, ignored);
}

CacheLease FetcherCache::leaseLocked(const std::shared_ptr<CacheEntry>& entry, bool hit) {
  ++entry->leases;
  entry->lastUse = ++useClock_;
  CacheLease lease;
  lease.cache_ = this;
  lease.entry_ = entry;
  lease.path_ = entry->path;
  lease.size_ = entry->size;
  lease.hit_ = hit;
  return lease;
}

void FetcherCache::release(CacheEntry& entry) {
  std::lock_guard lock(mutex_);
  if (entry.leases > 0) --entry.leases;
  if (entry.discarded && entry.leases == 0) removeFiles(entry);
  evictLocked();
}

void FetcherCache::evictLocked() {
  while (total_ > capacity_) {
    auto victim = entries_.end();
    uint64_t oldest = std::numeric_limits<uint64_t>::max();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      const CacheEntry& entry = *it->second;
      if (entry.state == CacheState::kReady && entry.leases == 0 && entry.lastUse < oldest) {
        oldest = entry.lastUse;
        victim = it;
      }
    }
    if (victim == entries_.end()) return;  // everything left is in use
    removeFiles(*victim->second);
    total_ -= victim->second->size + victim->second->treeBytes;
    entries_.erase(victim);
  }
}

void FetcherCache::wakeWaiters() {
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

uint64_t FetcherCache::totalBytes() const {
  std::lock_guard lock(mutex_);
  return total_;
}

size_t FetcherCache::entries() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

uint64_t FetcherCache::downloads() const {
  std::lock_guard lock(mutex_);
  return downloads_;
}

}  // namespace tessera::kernel::agent

namespace tessera::kernel::agent {

size_t FetcherCache::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

uint64_t FetcherCache::discarded() const {
  std::lock_guard lock(mutex_);
  return discarded_;
}

uint64_t FetcherCache::treeBuilds() const {
  std::lock_guard lock(mutex_);
  return treeBuilds_;
}

uint64_t FetcherCache::treesDiscarded() const {
  std::lock_guard lock(mutex_);
  return treesDiscarded_;
}

api::Result<std::shared_ptr<const CachedTree>> FetcherCache::tree(
    const CacheLease& lease, const Extract& extract, const std::function<bool()>& cancelled,
    bool& built) {
  built = false;
  if (lease.cache_ != this || !lease.entry_) return api::internalError("not a lease of this cache");
  const std::shared_ptr<CacheEntry> entry = lease.entry_;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (entry->discarded) return api::unavailable("the cached archive left the cache");
    if (entry->treeState == TreeState::kBuilding) {
      const uint64_t failures = entry->treeFailures;
      ++waiting_;
      changed_.wait(lock, [&] { return entry->treeState != TreeState::kBuilding || cancelled(); });
      --waiting_;
      if (entry->treeState == TreeState::kBuilding) {
        return api::makeStatus(api::StatusCode::kCancelled, "the fetch was cancelled");
      }
      // The build waited for failed: its error is ours too (as a download's is), unless it
      // was only cancelled.
      if (entry->treeState == TreeState::kNone && entry->treeFailures > failures &&
          entry->treeError.code() != api::StatusCode::kCancelled) {
        return entry->treeError;
      }
      continue;
    }
    if (entry->treeState == TreeState::kReady) {
      if (intact(*entry->tree)) {
        entry->lastUse = ++useClock_;
        return entry->tree;
      }
      // Changed since it was sealed: never served again; built afresh under a new name (a
      // fetch still linking from the old one fails its links and extracts instead).
      ++treesDiscarded_;
      total_ -= entry->treeBytes;
      entry->treeBytes = 0;
      entry->treeState = TreeState::kNone;
      std::error_code ignored;
      fs::remove_all(std::exchange(entry->tree, nullptr)->root, ignored);
      continue;
    }
    break;
  }
  entry->treeState = TreeState::kBuilding;
  ++treeBuilds_;
  const fs::path root = entry->path.string() + fmt::format(".tree-{}", nextFile_++);
  lock.unlock();

  // Built aside and renamed into place when complete: a name without ".partial" is always a
  // whole, sealed tree.
  const fs::path partial = root.string() + ".partial";
  std::error_code error;
  fs::remove_all(partial, error);
  api::Result<CachedTree> sealed = api::internalError("not built");
  if (!fs::create_directory(partial, error) || error) {
    sealed = api::internalError("cannot create '{}': {}", partial.string(), error.message());
  } else if (fs::path canonical = fs::canonical(partial, error); error) {
    sealed = api::internalError("cannot resolve '{}': {}", partial.string(), error.message());
  } else if (auto extracted = extract(canonical); !extracted) {
    sealed = extracted;
  } else {
    sealed = seal(partial);
    if (sealed && ::rename(partial.c_str(), root.c_str()) != 0) {
      sealed = api::internalError("cannot rename the tree into place: {}", std::strerror(errno));
    }
  }
  if (!sealed) {
    fs::remove_all(partial, error);
  } else {
    sealed->root = root;
  }

  lock.lock();
  if (!sealed) {
    entry->treeState = TreeState::kNone;
    entry->treeError = sealed.status();
    ++entry->treeFailures;
    changed_.notify_all();
    return sealed.status();
  }
  entry->tree = std::make_shared<const CachedTree>(std::move(sealed).value());
  entry->treeState = TreeState::kReady;
  if (!entry->discarded) {
    entry->treeBytes = entry->tree->bytes;
    total_ += entry->treeBytes;
  }
  entry->lastUse = ++useClock_;
  built = true;
  auto result = entry->tree;
  evictLocked();  // not this entry: the caller's lease holds it
  changed_.notify_all();
  return result;
}

api::Result<CachedTree> FetcherCache::seal(const fs::path& root) {
  CachedTree tree;
  std::set<std::pair<dev_t, ino_t>> inodes;
  std::error_code error;
  // Depth first, a directory before its contents; symlinks are not followed.
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    TreeNode node;
    node.path = it->path().lexically_relative(root).lexically_normal();
    const std::string path = it->path().string();
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
      return api::internalError("sealing '{}': {}", node.path.string(), std::strerror(errno));
    }
    if (S_ISDIR(info.st_mode)) {
      // The agent must be able to walk and remove it, whatever the archive said.
      node.type = TreeNode::Type::kDirectory;
      node.mode = (info.st_mode & 0777) | 0700;
      if (::chmod(path.c_str(), node.mode) != 0) {
        return api::internalError("sealing '{}': {}", node.path.string(), std::strerror(errno));
      }
    } else if (S_ISREG(info.st_mode)) {
      // Read-only: sandboxes share this inode by hard link.
      node.type = TreeNode::Type::kFile;
      node.mode = info.st_mode & 0555;
      if (::chmod(path.c_str(), node.mode) != 0 || ::lstat(path.c_str(), &info) != 0) {
        return api::internalError("sealing '{}': {}", node.path.string(), std::strerror(errno));
      }
      node.size = static_cast<uint64_t>(info.st_size);
      node.mtimeSec = info.st_mtim.tv_sec;
      node.mtimeNsec = info.st_mtim.tv_nsec;
      if (inodes.emplace(info.st_dev, info.st_ino).second) tree.bytes += node.size;
      ++tree.files;
      if ((node.mode & 0444) != 0444) tree.shareable = false;
    } else if (S_ISLNK(info.st_mode)) {
      node.type = TreeNode::Type::kSymlink;
      node.target = fs::read_symlink(it->path(), error).string();
      if (error) break;
    } else {
      return api::internalError("'{}' is neither a file, a directory nor a symlink",
                                node.path.string());
    }
    tree.nodes.push_back(std::move(node));
  }
  if (error) return api::internalError("sealing the tree: {}", error.message());
  return tree;
}

bool FetcherCache::intact(const CachedTree& tree) {
  // Relative to a descriptor of the root: one lookup per node, not one per path component.
  const int root = ::open(tree.root.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return false;
  bool same = true;
  std::string target;
  for (const TreeNode& node : tree.nodes) {
    struct stat info {};
    if (::fstatat(root, node.path.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
      same = false;
    } else if (node.type == TreeNode::Type::kDirectory) {
      same = S_ISDIR(info.st_mode);
    } else if (node.type == TreeNode::Type::kFile) {
      same = S_ISREG(info.st_mode) && (info.st_mode & 07777) == node.mode &&
             static_cast<uint64_t>(info.st_size) == node.size &&
             info.st_mtim.tv_sec == node.mtimeSec && info.st_mtim.tv_nsec == node.mtimeNsec;
    } else {
      target.resize(node.target.size() + 1);
      const ssize_t n = ::readlinkat(root, node.path.c_str(), target.data(), target.size());
      same = S_ISLNK(info.st_mode) && n == static_cast<ssize_t>(node.target.size()) &&
             target.compare(0, node.target.size(), node.target) == 0;
    }
    if (!same) break;
  }
  ::close(root);
  return same;
}

}  // namespace tessera::kernel::agent

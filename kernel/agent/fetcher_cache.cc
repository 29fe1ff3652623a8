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

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

enum class CacheState { kDownloading, kReady, kFailed };

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
  total_ -= entry->size;
  ++discarded_;
  if (entry->leases == 0) {
    std::error_code ignored;
    fs::remove(entry->path, ignored);
  }
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
  if (entry.discarded && entry.leases == 0) {
    std::error_code ignored;
    fs::remove(entry.path, ignored);
  }
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
    std::error_code ignored;
    fs::remove(victim->second->path, ignored);
    total_ -= victim->second->size;
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

}  // namespace tessera::kernel::agent

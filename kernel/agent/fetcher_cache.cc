// The fetcher's cache: an in-memory index over one directory, guarded by one mutex. Downloads
// and waits happen with the mutex released; only the index changes under it.

#include "kernel/agent/fetcher_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

CacheLease::CacheLease(CacheLease&& other) noexcept { *this = std::move(other); }

CacheLease& CacheLease::operator=(CacheLease&& other) noexcept {
  if (this != &other) {
    release();
    cache_ = std::exchange(other.cache_, nullptr);
    key_ = std::move(other.key_);
    path_ = std::move(other.path_);
    size_ = other.size_;
    hit_ = other.hit_;
  }
  return *this;
}

CacheLease::~CacheLease() { release(); }

void CacheLease::release() {
  if (cache_ != nullptr) std::exchange(cache_, nullptr)->release(key_);
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
    std::shared_ptr<Entry> entry = it->second;  // outlives its erasure on failure
    ++waiting_;
    changed_.wait(lock, [&] { return entry->state != State::kDownloading || cancelled(); });
    --waiting_;
    if (entry->state == State::kReady) return leaseLocked(key, *entry, true);
    if (cancelled()) return api::makeStatus(api::StatusCode::kCancelled, "the fetch was cancelled");
    // The downloader's own cancellation (its task was killed) is not ours: try again, maybe
    // as the downloader this time.
    if (entry->error.code() != api::StatusCode::kCancelled) return entry->error;
  }
  auto entry = std::make_shared<Entry>();
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
    if (::close(fd) != 0 && status) {
      status = api::internalError("writing the cache file: {}", std::strerror(errno));
    }
  }

  lock.lock();
  if (!status) {
    entry->state = State::kFailed;
    entry->error = status;
    entries_.erase(key);
    std::error_code ignored;
    fs::remove(entry->path, ignored);
    changed_.notify_all();
    return status;
  }
  entry->state = State::kReady;
  entry->size = bytes;
  total_ += bytes;
  CacheLease lease = leaseLocked(key, *entry, false);
  evictLocked();
  changed_.notify_all();
  return lease;
}

CacheLease FetcherCache::leaseLocked(const std::string& key, Entry& entry, bool hit) {
  ++entry.leases;
  entry.lastUse = ++useClock_;
  CacheLease lease;
  lease.cache_ = this;
  lease.key_ = key;
  lease.path_ = entry.path;
  lease.size_ = entry.size;
  lease.hit_ = hit;
  return lease;
}

void FetcherCache::release(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second->leases > 0) --it->second->leases;
  evictLocked();
}

void FetcherCache::evictLocked() {
  while (total_ > capacity_) {
    auto victim = entries_.end();
    uint64_t oldest = std::numeric_limits<uint64_t>::max();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      const Entry& entry = *it->second;
      if (entry.state == State::kReady && entry.leases == 0 && entry.lastUse < oldest) {
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

}  // namespace tessera::kernel::agent

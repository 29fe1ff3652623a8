#include "kernel/state/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <system_error>

#include "kernel/runtime/logging.h"
#include "kernel/state/keys.h"

namespace tessera::kernel::state {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[4] = {'T', 'S', 'S', '1'};
constexpr size_t kHeaderBytes = 32;
constexpr std::string_view kTempSuffix = ".tmp";
constexpr std::string_view kCorruptSuffix = ".corrupt";
constexpr std::string_view kLockName = "LOCK";

std::string errnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

uint64_t fnv1a(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

void putU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t getU64(std::string_view in, size_t at) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(in[at + i]);
  return value;
}

std::string encode(const std::string& value, uint64_t version) {
  std::string out;
  out.reserve(kHeaderBytes + value.size());
  out.append(kMagic, sizeof(kMagic));
  out.append(4, '\0');
  putU64(out, version);
  putU64(out, value.size());
  putU64(out, fnv1a(value));
  out.append(value);
  return out;
}

/// Parses a whole entry file. Errors (DataLoss-like, reported as Internal) say what is wrong.
api::Result<api::StateEntry> decode(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes) {
    return api::internalError("torn: {} bytes, shorter than the header", bytes.size());
  }
  if (bytes.compare(0, sizeof(kMagic), std::string_view(kMagic, sizeof(kMagic))) != 0) {
    return api::internalError("bad magic");
  }
  uint64_t version = getU64(bytes, 8);
  uint64_t length = getU64(bytes, 16);
  uint64_t checksum = getU64(bytes, 24);
  if (bytes.size() - kHeaderBytes != length) {
    return api::internalError("torn: header says {} value bytes, file has {}", length,
                              bytes.size() - kHeaderBytes);
  }
  std::string_view value = bytes.substr(kHeaderBytes);
  if (fnv1a(value) != checksum) return api::internalError("value checksum mismatch");
  if (version == 0) return api::internalError("version 0");
  return api::StateEntry{std::string(value), version};
}

/// Reads the whole file `name` in `dirFd`.
api::Result<std::string> readAll(int dirFd, const std::string& name) {
  int fd = ::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return api::unavailable("opening '{}': {}", name, errnoText(errno));
  std::string out;
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return api::unavailable("reading '{}': {}", name, errnoText(error));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool isSafeByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::optional<std::string> unescapeName(std::string_view name) {
  std::string key;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      if (!isSafeByte(name[i])) return std::nullopt;
      key.push_back(name[i]);
      continue;
    }
    if (i + 2 >= name.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int high = hex(name[i + 1]);
    int low = hex(name[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    key.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return key;
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string withSuffix(std::string_view name, std::string_view suffix) {
  std::string out(name);
  out.append(suffix);
  return out;
}

}  // namespace

std::string FileStore::escapeKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size() + 16);
  for (char c : key) {
    if (isSafeByte(c)) {
      out.push_back(c);
    } else {
      auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

api::Result<std::unique_ptr<FileStore>> FileStore::open(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return api::unavailable("creating state directory '{}': {}", dir.string(), error.message());
  }
  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) {
    return api::unavailable("opening state directory '{}': {}", dir.string(), errnoText(errno));
  }
  int lockFd = ::openat(dirFd, std::string(kLockName).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lockFd < 0) {
    int e = errno;
    ::close(dirFd);
    return api::unavailable("opening lock of state directory '{}': {}", dir.string(), errnoText(e));
  }
  if (::flock(lockFd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(lockFd);
    ::close(dirFd);
    if (e == EWOULDBLOCK) {
      return api::failedPrecondition("state directory '{}' is in use by another store",
                                     dir.string());
    }
    return api::unavailable("locking state directory '{}': {}", dir.string(), errnoText(e));
  }
  std::unique_ptr<FileStore> store(new FileStore(dir, dirFd, lockFd));
  if (auto status = store->recover(); !status) return status;
  store->thread_ = std::thread([raw = store.get()] { raw->loop(); });
  return store;
}

FileStore::FileStore(fs::path dir, int dirFd, int lockFd)
    : dir_(std::move(dir)), dirFd_(dirFd), lockFd_(lockFd) {}

FileStore::~FileStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::close(lockFd_);  // releases the flock
  ::close(dirFd_);
}

api::Status FileStore::recover() {
  auto log = runtime::logger("state");
  std::error_code error;
  fs::directory_iterator it(dir_, error);
  if (error)
    return api::unavailable("reading state directory '{}': {}", dir_.string(), error.message());
  bool changed = false;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    std::string name = it->path().filename().string();
    if (name == kLockName || endsWith(name, kCorruptSuffix)) continue;
    if (endsWith(name, kTempSuffix)) {
      // A write that never reached its rename: the previous file (if any) is the entry.
      log->warn("state directory '{}': removing unfinished write '{}'", dir_.string(), name);
      if (::unlinkat(dirFd_, name.c_str(), 0) != 0) {
        return api::unavailable("removing '{}' in '{}': {}", name, dir_.string(), errnoText(errno));
      }
      changed = true;
      continue;
    }
    auto key = unescapeName(name);
    if (!key || !validateKey(*key)) {
      log->warn("state directory '{}': ignoring unknown file '{}'", dir_.string(), name);
      continue;
    }
    auto bytes = readAll(dirFd_, name);
    if (!bytes) return bytes.status().withContext("recovering '{}'", dir_.string());
    auto entry = decode(*bytes);
    if (!entry) {
      // Rename-over leaves no older copy, so the key is absent; keep the bytes for an operator.
      log->error(
          "state directory '{}': entry for key '{}' is unreadable ({}); moving it to '{}' "
          "and treating the key as absent",
          dir_.string(), *key, entry.status().message(), withSuffix(name, kCorruptSuffix));
      if (::renameat(dirFd_, name.c_str(), dirFd_, withSuffix(name, kCorruptSuffix).c_str()) != 0) {
        return api::unavailable("moving aside '{}' in '{}': {}", name, dir_.string(),
                                errnoText(errno));
      }
      changed = true;
      continue;
    }
    index_[*key] = entry->version;
  }
  if (error)
    return api::unavailable("reading state directory '{}': {}", dir_.string(), error.message());
  if (changed && ::fsync(dirFd_) != 0) {
    return api::unavailable("syncing state directory '{}': {}", dir_.string(), errnoText(errno));
  }
  return api::Status::ok();
}

bool FileStore::enqueue(Queued item) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= kMaxQueued) return false;
    queue_.push_back(std::move(item));
  }
  ready_.notify_one();
  return true;
}

void FileStore::loop() {
  while (true) {
    std::function<void()> work;
    std::vector<std::unique_ptr<SetCall>> group;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has been answered
      if (!queue_.front().set) {
        work = std::move(queue_.front().work);
        queue_.pop_front();
      } else {
        // The run of sets at the front, on distinct keys (a second set of a key must see the
        // first's version, so it starts the next group).
        std::set<std::string_view> keys;
        while (!queue_.empty() && queue_.front().set && group.size() < kMaxGroup &&
               keys.insert(queue_.front().set->key).second) {
          group.push_back(std::move(queue_.front().set));
          queue_.pop_front();
        }
      }
    }
    if (work) {
      work();
    } else if (group.size() == 1) {
      SetCall& call = *group.front();
      ++syncs_;
      postReply<api::Result<uint64_t>>(*call.replyOn, std::move(call.done),
                                       doSet(call.key, call.value, call.expectedVersion));
    } else {
      writeGroup(group);
    }
  }
}

void FileStore::writeGroup(std::vector<std::unique_ptr<SetCall>>& group) {
  struct Written {
    size_t index;
    std::string name;
    std::string temp;
    uint64_t version;
  };
  std::vector<std::optional<api::Result<uint64_t>>> results(group.size());
  std::vector<Written> written;
  written.reserve(group.size());
  // 1. Every temporary file, written and closed but not synced.
  for (size_t i = 0; i < group.size(); ++i) {
    const SetCall& call = *group[i];
    auto it = index_.find(call.key);
    uint64_t current = it == index_.end() ? 0 : it->second;
    if (current != call.expectedVersion) {
      results[i] = versionMismatch(call.key, call.expectedVersion, current);
      continue;
    }
    Written file{i, escapeKey(call.key), "", current + 1};
    file.temp = withSuffix(file.name, kTempSuffix);
    int fd = ::openat(dirFd_, file.temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      results[i] = api::unavailable("writing state key '{}': {}", call.key, errnoText(errno));
      continue;
    }
    bool ok = writeAll(fd, encode(call.value, file.version));
    int error = errno;
    if (::close(fd) != 0 && ok) {
      ok = false;
      error = errno;
    }
    if (!ok) {
      ::unlinkat(dirFd_, file.temp.c_str(), 0);
      results[i] = api::unavailable("writing state key '{}': {}", call.key, errnoText(error));
      continue;
    }
    written.push_back(std::move(file));
  }
  // 2. One sync makes all of them durable before any is renamed into place.
  if (!written.empty()) {
    ++syncs_;
    if (::syncfs(dirFd_) != 0) {
      int error = errno;
      for (const Written& file : written) {
        ::unlinkat(dirFd_, file.temp.c_str(), 0);
        results[file.index] = api::unavailable("writing state key '{}': syncing: {}",
                                               group[file.index]->key, errnoText(error));
      }
      written.clear();
    }
  }
  // 3. The renames, in call order, then one fsync of the directory for all of them.
  std::vector<const Written*> renamed;
  for (const Written& file : written) {
    const std::string& key = group[file.index]->key;
    if (::renameat(dirFd_, file.temp.c_str(), dirFd_, file.name.c_str()) != 0) {
      int error = errno;
      ::unlinkat(dirFd_, file.temp.c_str(), 0);
      results[file.index] = api::unavailable("writing state key '{}': {}", key, errnoText(error));
      continue;
    }
    index_[key] = file.version;
    renamed.push_back(&file);
  }
  if (!renamed.empty()) {
    bool synced = ::fsync(dirFd_) == 0;
    int error = errno;
    for (const Written* file : renamed) {
      if (synced) {
        results[file->index] = file->version;
      } else {
        results[file->index] = api::internalError(
            "syncing the directory after writing state key '{}' (version {} may not survive a "
            "crash): {}",
            group[file->index]->key, file->version, errnoText(error));
      }
    }
  }
  for (size_t i = 0; i < group.size(); ++i) {
    postReply<api::Result<uint64_t>>(*group[i]->replyOn, std::move(group[i]->done),
                                     std::move(*results[i]));
  }
}

namespace {

api::Status checkKey(std::string_view key, bool allowRoot = false) {
  if (auto status = validateKey(key, allowRoot); !status) return status;
  if (!allowRoot || key != "/") {
    if (size_t length = FileStore::escapeKey(key).size(); length > FileStore::kMaxNameBytes) {
      return api::invalidArgument(
          "state key '{}' is too long for the file store ({} bytes escaped, "
          "over {})",
          key.substr(0, 64), length, FileStore::kMaxNameBytes);
    }
  }
  return api::Status::ok();
}

api::Status queueFull() {
  return api::resourceExhausted("the file store has {} calls queued", FileStore::kMaxQueued);
}

}  // namespace

void FileStore::get(std::string_view key, api::Executor& replyOn,
                    Callback<std::optional<api::StateEntry>> done) {
  using R = api::Result<std::optional<api::StateEntry>>;
  if (auto status = checkKey(key); !status) return postReply<R>(replyOn, std::move(done), status);
  auto work = [this, key = std::string(key), &replyOn, done]() mutable {
    postReply<R>(replyOn, std::move(done), doGet(key));
  };
  if (!enqueue(Queued{std::move(work), nullptr}))
    postReply<R>(replyOn, std::move(done), queueFull());
}

void FileStore::set(std::string_view key, std::string value, uint64_t expectedVersion,
                    api::Executor& replyOn, Callback<uint64_t> done) {
  using R = api::Result<uint64_t>;
  if (auto status = checkKey(key); !status) return postReply<R>(replyOn, std::move(done), status);
  if (value.size() > api::kMaxStateValueBytes) {
    return postReply<R>(replyOn, std::move(done),
                        api::resourceExhausted("value for state key '{}' is {} bytes, over the {} "
                                               "limit",
                                               key, value.size(), api::kMaxStateValueBytes));
  }
  auto call = std::make_unique<SetCall>();
  call->key = std::string(key);
  call->value = std::move(value);
  call->expectedVersion = expectedVersion;
  call->replyOn = &replyOn;
  call->done = done;
  if (!enqueue(Queued{{}, std::move(call)})) postReply<R>(replyOn, std::move(done), queueFull());
}

void FileStore::remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
                       StatusCallback done) {
  api::Status status = checkKey(key);
  if (status && expectedVersion == 0) {
    status = api::invalidArgument("removing state key '{}' needs a version >= 1", key);
  }
  if (!status) return postReply<api::Status>(replyOn, std::move(done), status);
  auto work = [this, key = std::string(key), expectedVersion, &replyOn, done]() mutable {
    postReply<api::Status>(replyOn, std::move(done), doRemove(key, expectedVersion));
  };
  if (!enqueue(Queued{std::move(work), nullptr}))
    postReply<api::Status>(replyOn, std::move(done), queueFull());
}

void FileStore::children(std::string_view prefix, api::Executor& replyOn,
                         Callback<std::vector<std::string>> done) {
  using R = api::Result<std::vector<std::string>>;
  if (auto status = checkKey(prefix, /*allowRoot=*/true); !status) {
    return postReply<R>(replyOn, std::move(done), status);
  }
  auto work = [this, prefix = std::string(prefix), &replyOn, done]() mutable {
    postReply<R>(replyOn, std::move(done), R(doChildren(prefix)));
  };
  if (!enqueue(Queued{std::move(work), nullptr}))
    postReply<R>(replyOn, std::move(done), queueFull());
}

api::Result<std::optional<api::StateEntry>> FileStore::doGet(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return std::optional<api::StateEntry>();
  auto bytes = readAll(dirFd_, escapeKey(key));
  if (!bytes) return bytes.status().withContext("reading state key '{}'", key);
  auto entry = decode(*bytes);
  if (!entry) {
    return api::internalError("state key '{}' is unreadable on disk: {}", key,
                              entry.status().message());
  }
  return std::optional<api::StateEntry>(std::move(*entry));
}

api::Result<uint64_t> FileStore::doSet(const std::string& key, const std::string& value,
                                       uint64_t expectedVersion) {
  auto it = index_.find(key);
  uint64_t current = it == index_.end() ? 0 : it->second;
  if (current != expectedVersion) return versionMismatch(key, expectedVersion, current);
  const uint64_t next = current + 1;
  const std::string name = escapeKey(key);
  const std::string temp = withSuffix(name, kTempSuffix);
  const std::string bytes = encode(value, next);

  int fd = ::openat(dirFd_, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return api::unavailable("writing state key '{}': {}", key, errnoText(errno));
  if (!writeAll(fd, bytes) || ::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    ::unlinkat(dirFd_, temp.c_str(), 0);
    return api::unavailable("writing state key '{}': {}", key, errnoText(error));
  }
  if (::close(fd) != 0 || ::renameat(dirFd_, temp.c_str(), dirFd_, name.c_str()) != 0) {
    int error = errno;
    ::unlinkat(dirFd_, temp.c_str(), 0);
    return api::unavailable("writing state key '{}': {}", key, errnoText(error));
  }
  // The new file is in place; only its directory entry's durability is in doubt from here.
  index_[key] = next;
  if (::fsync(dirFd_) != 0) {
    return api::internalError(
        "syncing the directory after writing state key '{}' (version {} "
        "may not survive a crash): {}",
        key, next, errnoText(errno));
  }
  return next;
}

api::Status FileStore::doRemove(const std::string& key, uint64_t expectedVersion) {
  auto it = index_.find(key);
  if (it == index_.end()) return api::notFound("state key '{}' does not exist", key);
  if (it->second != expectedVersion) return versionMismatch(key, expectedVersion, it->second);
  if (::unlinkat(dirFd_, escapeKey(key).c_str(), 0) != 0) {
    return api::unavailable("removing state key '{}': {}", key, errnoText(errno));
  }
  index_.erase(it);
  if (::fsync(dirFd_) != 0) {
    return api::internalError("syncing the directory after removing state key '{}': {}", key,
                              errnoText(errno));
  }
  return api::Status::ok();
}

std::vector<std::string> FileStore::doChildren(const std::string& prefix) {
  std::string below(prefix);
  if (below != "/") below.push_back('/');
  std::vector<std::string> names;
  for (auto it = index_.lower_bound(below);
       it != index_.end() && it->first.compare(0, below.size(), below) == 0; ++it) {
    names.emplace_back(childUnder(prefix, it->first));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace tessera::kernel::state

#include "kernel/state/zookeeper_store.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernel/runtime/logging.h"
#include "kernel/state/keys.h"
#include "kernel/zookeeper/client.h"

namespace tessera::kernel::state {

namespace {

constexpr char kMagic[4] = {'T', 'S', 'v', '1'};
constexpr size_t kHeaderBytes = 4 + 1 + 8;
constexpr int kMaxRetries = 100;

std::string header(char kind, uint64_t version) {
  std::string out(kMagic, 4);
  out.push_back(kind);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((version >> shift) & 0xff));
  }
  return out;
}

}  // namespace

// One znode as read: whether it exists, its decoded header and znode stat.
struct ZooKeeperStore::Node {
  bool exists = false;
  bool marker = false;  // exists, holds no entry
  char kind = 0;        // 'i' inline, 'c' chunked
  uint64_t version = 0;
  std::string payload;  // the value, or the chunk names ('\n'-separated)
  int32_t zversion = 0;
  int32_t numChildren = 0;

  uint64_t storeVersion() const { return exists && !marker ? version : 0; }
  std::vector<std::string> chunkNames() const {
    std::vector<std::string> names;
    if (kind != 'c') return names;
    size_t start = 0;
    while (start < payload.size()) {
      auto end = payload.find('\n', start);
      if (end == std::string::npos) end = payload.size();
      names.push_back(payload.substr(start, end - start));
      start = end + 1;
    }
    return names;
  }
};

api::Result<std::unique_ptr<ZooKeeperStore>> ZooKeeperStore::open(
    zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout) {
  zookeeper::quietZooKeeperLogs();
  auto store = std::unique_ptr<ZooKeeperStore>(new ZooKeeperStore(std::move(url), sessionTimeout));
  {
    std::lock_guard lock(store->mutex_);
    store->handle_ =
        zookeeper_init(store->url_.servers.c_str(), &ZooKeeperStore::onSession,
                       static_cast<int>(sessionTimeout.count()), nullptr, store.get(), 0);
  }
  if (store->handle_ == nullptr) {
    return api::invalidArgument("cannot use ZooKeeper servers '{}': {}", store->url_.servers,
                                std::strerror(errno));
  }
  if (store->url_.credentials) {
    const auto& credentials = *store->url_.credentials;
    zoo_add_auth(store->handle_, "digest", credentials.data(), static_cast<int>(credentials.size()),
                 nullptr, nullptr);
  }
  store->worker_ = std::thread([raw = store.get()] { raw->loop(); });
  return store;
}

ZooKeeperStore::ZooKeeperStore(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout)
    : url_(std::move(url)),
      sessionTimeout_(sessionTimeout),
      root_(url_.path + "/state"),
      chunks_(url_.path + "/chunks"),
      buffer_(kChunkBytes + 4096) {}

ZooKeeperStore::~ZooKeeperStore() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (handle_ != nullptr) zookeeper_close(handle_);
}

void ZooKeeperStore::onSession(zhandle_t*, int type, int state, const char*, void* context) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* self = static_cast<ZooKeeperStore*>(context);
  {
    std::lock_guard lock(self->mutex_);
    self->sessionState_ = state;
  }
  self->changed_.notify_all();
}

bool ZooKeeperStore::connected() const {
  std::lock_guard lock(mutex_);
  return sessionState_ == ZOO_CONNECTED_STATE;
}

api::Status ZooKeeperStore::connect() {
  std::unique_lock lock(mutex_);
  if (sessionState_ == ZOO_EXPIRED_SESSION_STATE || sessionState_ == ZOO_AUTH_FAILED_STATE) {
    runtime::logger("zookeeper")->warn("the state store's ZooKeeper session ended; starting anew");
    zhandle_t* old = handle_;
    handle_ = nullptr;
    sessionState_ = 0;
    lock.unlock();
    zookeeper_close(old);
    zhandle_t* fresh = zookeeper_init(url_.servers.c_str(), &ZooKeeperStore::onSession,
                                      static_cast<int>(sessionTimeout_.count()), nullptr, this, 0);
    if (fresh != nullptr && url_.credentials) {
      zoo_add_auth(fresh, "digest", url_.credentials->data(),
                   static_cast<int>(url_.credentials->size()), nullptr, nullptr);
    }
    lock.lock();
    handle_ = fresh;
    if (handle_ == nullptr) return api::unavailable("cannot restart a ZooKeeper session");
  }
  const bool live = changed_.wait_for(
      lock, sessionTimeout_, [this] { return closing_ || sessionState_ == ZOO_CONNECTED_STATE; });
  if (closing_) return api::unavailable("the ZooKeeper state store is closing");
  if (!live) {
    return api::unavailable("no ZooKeeper session with '{}' within {} ms", url_.servers,
                            sessionTimeout_.count());
  }
  return api::Status::ok();
}

bool ZooKeeperStore::enqueue(std::function<void(bool)> op) {
  {
    std::lock_guard lock(mutex_);
    if (closing_ || queue_.size() >= kMaxQueued) return false;
    queue_.push_back(Queued{std::move(op), nullptr});
  }
  changed_.notify_all();
  return true;
}

bool ZooKeeperStore::enqueueRead(std::function<void(const api::Status&)> read) {
  {
    std::lock_guard lock(mutex_);
    if (closing_ || queue_.size() >= kMaxQueued) return false;
    queue_.push_back(Queued{nullptr, std::move(read)});
  }
  changed_.notify_all();
  return true;
}

void ZooKeeperStore::loop() {
  while (true) {
    std::function<void(bool)> op;
    std::vector<std::function<void(const api::Status&)>> reads;
    bool run = true;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      while (!queue_.empty() && queue_.front().read && reads.size() < kMaxReadBatch) {
        reads.push_back(std::move(queue_.front().read));
        queue_.pop_front();
      }
      if (reads.empty()) {
        op = std::move(queue_.front().op);
        queue_.pop_front();
      }
      run = !closing_;
    }
    if (!reads.empty()) {
      runReads(std::move(reads), run);
    } else {
      op(run);
    }
  }
}

void ZooKeeperStore::runReads(std::vector<std::function<void(const api::Status&)>> reads,
                              bool run) {
  // The session is checked (and restarted if it ended) here, once: handle_ does not change
  // while the readers run, since only this thread changes it.
  const api::Status session =
      run ? connect() : api::unavailable("the ZooKeeper state store is closing");
  if (!session || reads.size() == 1) {
    for (auto& read : reads) read(session);
    return;
  }
  std::atomic<size_t> next{0};
  auto reader = [&] {
    for (size_t i = next++; i < reads.size(); i = next++) reads[i](session);
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(kReaders, reads.size()); ++t) threads.emplace_back(reader);
  reader();
  for (auto& thread : threads) thread.join();
}

std::string ZooKeeperStore::znode(std::string_view key) const {
  return key == "/" ? root_ : root_ + std::string(key);
}

int ZooKeeperStore::readNode(const std::string& path, Node& node, std::vector<char>& buffer) {
  node = Node{};
  int length = static_cast<int>(buffer.size());
  ::Stat stat{};
  int rc = zoo_get(handle_, path.c_str(), 0, buffer.data(), &length, &stat);
  if (rc == ZNONODE) return ZOK;
  if (rc != ZOK) return rc;
  node.exists = true;
  node.zversion = stat.version;
  node.numChildren = stat.numChildren;
  if (length <= 0) {
    node.marker = true;
    return ZOK;
  }
  if (static_cast<size_t>(length) < kHeaderBytes || std::memcmp(buffer.data(), kMagic, 4) != 0) {
    return ZMARSHALLINGERROR;
  }
  node.kind = buffer[4];
  for (int i = 0; i < 8; ++i) {
    node.version = (node.version << 8) | static_cast<unsigned char>(buffer[5 + i]);
  }
  node.payload.assign(buffer.data() + kHeaderBytes, static_cast<size_t>(length) - kHeaderBytes);
  return ZOK;
}

namespace {

// `znode` is the one whose ACL a ZNOAUTH came from.
api::Status failed(int rc, std::string_view what, std::string_view key, std::string_view znode) {
  if (rc == ZMARSHALLINGERROR) {
    return api::internalError("znode of state key '{}' does not hold a tessera state entry", key);
  }
  return zookeeper::zkStatus(rc, fmt::format("{} state key '{}'", what, key), znode);
}

// A write whose reply was lost may or may not have happened.
api::Status failedWrite(int rc, std::string_view key, std::string_view znode,
                        std::string_view what = "writing") {
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
    return api::internalError("{} state key '{}': {}; the outcome is unknown", what, key,
                              zerror(rc));
  }
  return failed(rc, what, key, znode);
}

}  // namespace

api::Result<std::optional<api::StateEntry>> ZooKeeperStore::doGet(const std::string& key,
                                                                  std::vector<char>& buffer) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    Node node;
    if (int rc = readNode(znode(key), node, buffer); rc != ZOK) {
      return failed(rc, "reading", key, znode(key));
    }
    if (node.storeVersion() == 0) return std::optional<api::StateEntry>();
    if (node.kind == 'i') {
      return std::optional<api::StateEntry>(api::StateEntry{std::move(node.payload), node.version});
    }
    std::string value;
    bool complete = true;
    for (const auto& name : node.chunkNames()) {
      const std::string chunk = chunks_ + "/" + name;
      int length = static_cast<int>(buffer.size());
      int rc = zoo_get(handle_, chunk.c_str(), 0, buffer.data(), &length, nullptr);
      if (rc == ZNONODE) {  // rewritten meanwhile: read the new header
        complete = false;
        break;
      }
      if (rc != ZOK) return failed(rc, "reading", key, chunk);
      if (length > 0) value.append(buffer.data(), static_cast<size_t>(length));
    }
    if (complete)
      return std::optional<api::StateEntry>(api::StateEntry{std::move(value), node.version});
  }
  return api::unavailable("reading state key '{}': it kept changing", key);
}

int ZooKeeperStore::createAncestors(const std::string& path, std::string& failedAt) {
  // The parent first, its own parent only when it is missing: ZooKeeper checks a parent's ACL
  // before it answers ZNODEEXISTS, so creating an existing ancestor could be refused.
  const std::string parent = zookeeper::parentZnode(path);
  if (parent == "/") return ZOK;
  const auto* acl = zookeeper::aclFor(url_.credentials.has_value());
  int rc = zoo_create(handle_, parent.c_str(), nullptr, -1, acl, 0, nullptr, 0);
  if (rc == ZNONODE) {
    if (rc = createAncestors(parent, failedAt); rc != ZOK) return rc;
    rc = zoo_create(handle_, parent.c_str(), nullptr, -1, acl, 0, nullptr, 0);
  }
  if (rc == ZOK || rc == ZNODEEXISTS) return ZOK;
  failedAt = parent;
  return rc;
}

api::Result<std::vector<std::string>> ZooKeeperStore::writeChunks(const std::string& key,
                                                                  const std::string& value) {
  const std::string prefix = chunks_ + "/c-";
  std::vector<std::string> names;
  for (size_t offset = 0; offset < value.size(); offset += kChunkBytes) {
    const size_t length = std::min(kChunkBytes, value.size() - offset);
    char created[1024];
    int rc = ZNONODE;
    std::string refused = chunks_;  // whose ACL a ZNOAUTH came from
    for (int attempt = 0; attempt < 2 && rc == ZNONODE; ++attempt) {
      rc = zoo_create(handle_, prefix.c_str(), value.data() + offset, static_cast<int>(length),
                      zookeeper::aclFor(url_.credentials.has_value()), ZOO_SEQUENCE, created,
                      sizeof(created));
      if (rc == ZNONODE) {
        std::string failedAt;
        if (int made = createAncestors(prefix, failedAt); made != ZOK) {
          rc = made;
          refused = zookeeper::parentZnode(failedAt);
        }
      }
    }
    if (rc != ZOK) {
      removeChunks(names);
      return failedWrite(rc, key, refused);
    }
    std::string name(created);
    names.push_back(name.substr(name.rfind('/') + 1));
  }
  return names;
}

void ZooKeeperStore::removeChunks(const std::vector<std::string>& names) {
  for (const auto& name : names) zoo_delete(handle_, (chunks_ + "/" + name).c_str(), -1);
}

api::Result<uint64_t> ZooKeeperStore::doSet(const std::string& key, const std::string& value,
                                            uint64_t expected) {
  const std::string path = znode(key);
  std::vector<std::string> chunks;
  bool chunked = value.size() > kChunkBytes;
  auto abandon = [&](api::Status status) -> api::Result<uint64_t> {
    removeChunks(chunks);
    return status;
  };
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    Node node;
    if (int rc = readNode(path, node, buffer_); rc != ZOK) {
      return abandon(failed(rc, "reading", key, path));
    }
    if (node.storeVersion() != expected) {
      return abandon(versionMismatch(key, expected, node.storeVersion()));
    }
    if (chunked && chunks.empty()) {
      auto written = writeChunks(key, value);
      if (!written) return written.status();
      chunks = std::move(*written);
    }
    std::string data = header(chunked ? 'c' : 'i', expected + 1);
    if (chunked) {
      for (size_t i = 0; i < chunks.size(); ++i) data += (i ? "\n" : "") + chunks[i];
    } else {
      data += value;
    }
    int rc;
    std::string refused = path;  // whose ACL a ZNOAUTH came from
    if (!node.exists) {
      rc = zoo_create(handle_, path.c_str(), data.data(), static_cast<int>(data.size()),
                      zookeeper::aclFor(url_.credentials.has_value()), 0, nullptr, 0);
      refused = zookeeper::parentZnode(path);
      if (rc == ZNONODE) {
        // Parents first (empty markers); someone may race us to them.
        std::string failedAt;
        rc = createAncestors(path, failedAt);
        if (rc == ZOK) continue;
        refused = zookeeper::parentZnode(failedAt);
      }
      if (rc == ZNODEEXISTS) continue;
    } else {
      rc =
          zoo_set(handle_, path.c_str(), data.data(), static_cast<int>(data.size()), node.zversion);
      if (rc == ZBADVERSION || rc == ZNONODE) continue;
    }
    if (rc != ZOK) {
      if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) return failedWrite(rc, key, refused);
      return abandon(failedWrite(rc, key, refused));
    }
    removeChunks(node.chunkNames());
    return expected + 1;
  }
  return abandon(api::unavailable("writing state key '{}': it kept changing", key));
}

api::Status ZooKeeperStore::doRemove(const std::string& key, uint64_t expected) {
  const std::string path = znode(key);
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    Node node;
    if (int rc = readNode(path, node, buffer_); rc != ZOK) return failed(rc, "reading", key, path);
    if (node.storeVersion() == 0) return api::notFound("state key '{}' does not exist", key);
    if (node.storeVersion() != expected) return versionMismatch(key, expected, node.version);
    int rc;
    bool deleted = false;
    std::string refused = path;  // whose ACL a ZNOAUTH came from
    if (node.numChildren == 0) {
      rc = zoo_delete(handle_, path.c_str(), node.zversion);
      deleted = rc == ZOK;
      refused = zookeeper::parentZnode(path);
      if (rc == ZNOTEMPTY) continue;
    } else {
      // Its descendants stay: the znode becomes a marker.
      rc = zoo_set(handle_, path.c_str(), nullptr, -1, node.zversion);
    }
    if (rc == ZBADVERSION || rc == ZNONODE) continue;
    if (rc != ZOK) return failedWrite(rc, key, refused, "removing");
    removeChunks(node.chunkNames());
    if (deleted) pruneMarkers(path);
    return api::Status::ok();
  }
  return api::unavailable("removing state key '{}': it kept changing", key);
}

void ZooKeeperStore::pruneMarkers(std::string path) {
  // Markers left without children would still be listed by children(): remove them upwards.
  while (true) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return;
    path.resize(slash);
    if (path.size() <= root_.size()) return;
    Node node;
    if (readNode(path, node, buffer_) != ZOK || !node.exists || !node.marker ||
        node.numChildren != 0) {
      return;
    }
    if (zoo_delete(handle_, path.c_str(), node.zversion) != ZOK) return;
  }
}

api::Result<std::vector<std::string>> ZooKeeperStore::doChildren(const std::string& prefix) {
  String_vector strings{0, nullptr};
  int rc = zoo_get_children(handle_, znode(prefix).c_str(), 0, &strings);
  if (rc == ZNONODE) return std::vector<std::string>();
  if (rc != ZOK) return failed(rc, "listing", prefix, znode(prefix));
  std::vector<std::string> names;
  for (int32_t i = 0; i < strings.count; ++i) names.emplace_back(strings.data[i]);
  deallocate_String_vector(&strings);
  std::sort(names.begin(), names.end());
  return names;
}

void ZooKeeperStore::get(std::string_view key, api::Executor& replyOn,
                         Callback<std::optional<api::StateEntry>> done) {
  using R = api::Result<std::optional<api::StateEntry>>;
  if (auto status = validateKey(key); !status)
    return postReply<R>(replyOn, std::move(done), status);
  auto read = [this, key = std::string(key), &replyOn, done](const api::Status& session) {
    thread_local std::vector<char> buffer(kChunkBytes + 4096);
    postReply<R>(replyOn, done, session ? doGet(key, buffer) : R(session));
  };
  if (!enqueueRead(std::move(read))) {
    postReply<R>(replyOn, std::move(done),
                 api::resourceExhausted("the ZooKeeper state store is closing or overloaded"));
  }
}

void ZooKeeperStore::set(std::string_view key, std::string value, uint64_t expectedVersion,
                         api::Executor& replyOn, Callback<uint64_t> done) {
  using R = api::Result<uint64_t>;
  if (auto status = validateKey(key); !status)
    return postReply<R>(replyOn, std::move(done), status);
  if (value.size() > api::kMaxStateValueBytes) {
    return postReply<R>(
        replyOn, std::move(done),
        api::resourceExhausted("value for state key '{}' is {} bytes, over the {} limit", key,
                               value.size(), api::kMaxStateValueBytes));
  }
  auto op = [this, key = std::string(key), value = std::move(value), expectedVersion, &replyOn,
             done](bool run) {
    R result = api::unavailable("the ZooKeeper state store is closing");
    if (run) {
      auto status = connect();
      result = status ? doSet(key, value, expectedVersion) : R(status);
    }
    postReply<R>(replyOn, done, std::move(result));
  };
  if (!enqueue(std::move(op))) {
    postReply<R>(replyOn, std::move(done),
                 api::resourceExhausted("the ZooKeeper state store is closing or overloaded"));
  }
}

void ZooKeeperStore::remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
                            StatusCallback done) {
  api::Status status = validateKey(key);
  if (status && expectedVersion == 0) {
    status = api::invalidArgument("removing state key '{}' needs a version >= 1", key);
  }
  if (!status) return postReply<api::Status>(replyOn, std::move(done), status);
  auto op = [this, key = std::string(key), expectedVersion, &replyOn, done](bool run) {
    api::Status result = api::unavailable("the ZooKeeper state store is closing");
    if (run) {
      result = connect();
      if (result) result = doRemove(key, expectedVersion);
    }
    postReply<api::Status>(replyOn, done, std::move(result));
  };
  if (!enqueue(op)) {
    postReply<api::Status>(
        replyOn, std::move(done),
        api::resourceExhausted("the ZooKeeper state store is closing or overloaded"));
  }
}

void ZooKeeperStore::children(std::string_view prefix, api::Executor& replyOn,
                              Callback<std::vector<std::string>> done) {
  using R = api::Result<std::vector<std::string>>;
  if (auto status = validateKey(prefix, true); !status) {
    return postReply<R>(replyOn, std::move(done), status);
  }
  auto op = [this, prefix = std::string(prefix), &replyOn, done](bool run) {
    R result = api::unavailable("the ZooKeeper state store is closing");
    if (run) {
      auto status = connect();
      result = status ? doChildren(prefix) : R(status);
    }
    postReply<R>(replyOn, done, std::move(result));
  };
  if (!enqueue(op)) {
    postReply<R>(replyOn, std::move(done),
                 api::resourceExhausted("the ZooKeeper state store is closing or overloaded"));
  }
}

}  // namespace tessera::kernel::state

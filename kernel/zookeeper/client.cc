#include "kernel/zookeeper/client.h"

#include <cstdlib>
#include <future>
#include <string_view>

#include "kernel/runtime/logging.h"

#if defined(TESSERA_ASAN)
// ZOOKEEPER-2894: zookeeper_close frees the handle without draining its completion queues, so a
// request still unanswered, or a watch event the I/O thread queued while the session closed, is
// never completed nor freed (with the CompletionData it points to). The excuse covers memory
// that the library itself allocated; this object is in every binary that talks to ZooKeeper, so
// the suppression goes wherever the client does.
extern "C" const char* __lsan_default_suppressions() { return "leak:libzookeeper_mt.so\n"; }
#endif

namespace tessera::kernel::zookeeper {

namespace {

// Everything a completion carries back from ZooKeeper's thread, copied before the call ends.
struct Payload {
  std::string value;  // created path, or node data
  ZkStat stat;
  std::vector<std::string> strings;
};

struct CompletionData {
  ZkClient* client;
  uint64_t token;
};

ZkStat toStat(const Stat* stat) {
  ZkStat out;
  if (stat != nullptr) {
    out.version = stat->version;
    out.ephemeralOwner = stat->ephemeralOwner;
    out.numChildren = stat->numChildren;
  }
  return out;
}

std::shared_ptr<spdlog::logger> log() { return runtime::logger("zookeeper"); }

}  // namespace

api::Status zkStatus(int rc, std::string_view what, std::string_view znode) {
  if (rc == ZOK) return api::Status::ok();
  const char* reason = zerror(rc);
  switch (rc) {
    case ZNOAUTH:
      // A bare "not authenticated" reads like a failed login, but digest authentication never
      // fails: the znode's ACL does not grant these credentials (or none) the permission.
      return api::Status(
          api::StatusCode::kPermissionDenied,
          fmt::format("{}: permission denied by the ACL of {} (ZooKeeper: {}); znodes created with "
                      "zk://user:password@... are writable only with the same credentials",
                      what,
                      znode.empty() ? std::string("a znode") : fmt::format("znode '{}'", znode),
                      reason));
    case ZNONODE:
      return api::notFound("{}: {}", what, reason);
    case ZNODEEXISTS:
      return api::alreadyExists("{}: {}", what, reason);
    case ZBADVERSION:
      return api::Status(api::StatusCode::kAborted, fmt::format("{}: {}", what, reason));
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    case ZSESSIONEXPIRED:
    case ZSESSIONMOVED:
    case ZCLOSING:
    case ZINVALIDSTATE:
      return api::unavailable("{}: {}", what, reason);
    default:
      return api::internalError("{}: {}", what, reason);
  }
}

std::string parentZnode(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return std::string(path.substr(0, slash));
}

const ACL_vector* aclFor(bool authenticated) {
  if (!authenticated) return &ZOO_OPEN_ACL_UNSAFE;
  // Creator all (the digest identity the session authenticated with) + world read, as Mesos.
  static ACL acls[] = {{ZOO_PERM_ALL, ZOO_AUTH_IDS}, {ZOO_PERM_READ, ZOO_ANYONE_ID_UNSAFE}};
  static ACL_vector vector{2, acls};
  return &vector;
}

void quietZooKeeperLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Off by default: the library logs every failed connection attempt, and we log what
    // matters (sessions, unreachable ensembles) ourselves.
    auto level = static_cast<ZooLogLevel>(0);
    if (const char* wanted = std::getenv("TESSERA_ZK_LOG")) {
      std::string_view name(wanted);
      if (name == "error") level = ZOO_LOG_LEVEL_ERROR;
      if (name == "warn") level = ZOO_LOG_LEVEL_WARN;
      if (name == "info") level = ZOO_LOG_LEVEL_INFO;
      if (name == "debug") level = ZOO_LOG_LEVEL_DEBUG;
    }
    zoo_set_debug_level(level);
  });
}

// The context zookeeper_init gets: which client and which of its sessions.
struct HandleContext {
  ZkClient* client;
  uint64_t generation;
};

std::shared_ptr<ZkClient> ZkClient::create(Options options, api::Executor& executor,
                                           SessionListener listener) {
  return std::shared_ptr<ZkClient>(new ZkClient(std::move(options), executor, std::move(listener)));
}

ZkClient::ZkClient(Options options, api::Executor& executor, SessionListener listener)
    : options_(std::move(options)), executor_(executor), listener_(std::move(listener)) {
  quietZooKeeperLogs();
}

ZkClient::~ZkClient() { closeHandle(); }

void ZkClient::start() { open(); }

void ZkClient::open() {
  if (stopped_ || handle_ != nullptr) return;
  auto* context = new HandleContext{this, generation_};
  {
    std::lock_guard lock(mutex_);
    currentGeneration_ = generation_;
  }
  handle_ = zookeeper_init(options_.url.servers.c_str(), &ZkClient::onWatch,
                           static_cast<int>(options_.sessionTimeout.count()), nullptr, context, 0);
  if (handle_ == nullptr) {
    delete context;
    const int err = errno;
    ++openAttempts_;
    auto delay = std::chrono::milliseconds(std::min(100 << std::min(openAttempts_, 7), 10000));
    if (openAttempts_ == 1 || openAttempts_ % 10 == 0) {
      log()->warn("cannot start a ZooKeeper session with '{}' ({}); retrying in {} ms",
                  options_.url.servers, std::strerror(err), delay.count());
    }
    std::weak_ptr<ZkClient> weak = weak_from_this();
    retry_ = executor_.schedule(delay, [weak] {
      if (auto self = weak.lock()) self->open();
    });
    return;
  }
  if (options_.url.credentials) {
    const auto& credentials = *options_.url.credentials;
    zoo_add_auth(handle_, "digest", credentials.data(), static_cast<int>(credentials.size()),
                 nullptr, nullptr);
  }
}

void ZkClient::closeHandle() {
  if (handle_ == nullptr) return;
  zhandle_t* handle = handle_;
  handle_ = nullptr;
  auto* context = static_cast<HandleContext*>(const_cast<void*>(zoo_get_context(handle)));
  {
    std::lock_guard lock(mutex_);
    currentGeneration_ = ++generation_;
  }
  connected_ = false;
  // Joins ZooKeeper's threads. Most pending completions are called with ZCLOSING; some are not
  // (ZOOKEEPER-2894, above). Either way their callbacks are dropped with pending_ below.
  zookeeper_close(handle);
  delete context;
  std::lock_guard lock(mutex_);
  pending_.clear();
  watches_.clear();
}

void ZkClient::stop() {
  auto doStop = [this] {
    stopped_ = true;
    if (retry_) retry_->cancel();
    closeHandle();
  };
  if (executor_.runningInThisThread()) return doStop();
  std::promise<void> done;
  executor_.post([&] {
    doStop();
    done.set_value();
  });
  done.get_future().wait();
}

void ZkClient::onWatch(zhandle_t* zh, int type, int state, const char* path, void* context) {
  auto* handleContext = static_cast<HandleContext*>(const_cast<void*>(zoo_get_context(zh)));
  ZkClient* self = handleContext->client;
  if (context == handleContext) {
    // The session watcher.
    if (type != ZOO_SESSION_EVENT) return;
    const uint64_t generation = handleContext->generation;
    self->postIfCurrent(generation, [self, state] { self->onSession(state); });
    return;
  }
  const auto token = reinterpret_cast<uintptr_t>(context);
  if (type == ZOO_SESSION_EVENT) {
    // Per-watch watchers hear session events too; only expiry ends them.
    if (state == ZOO_EXPIRED_SESSION_STATE) {
      std::lock_guard lock(self->mutex_);
      self->watches_.erase(token);
    }
    return;
  }
  std::pair<uint64_t, Watcher> watch;
  {
    std::lock_guard lock(self->mutex_);
    auto it = self->watches_.find(token);
    if (it == self->watches_.end()) return;
    watch = std::move(it->second);
    self->watches_.erase(it);
  }
  self->postIfCurrent(watch.first, [fn = std::move(watch.second), type,
                                    p = std::string(path ? path : "")] { fn(type, p); });
}

void ZkClient::onSession(int state) {
  if (state == ZOO_CONNECTED_STATE) {
    connected_ = true;
    const clientid_t* id = zoo_client_id(handle_);
    const int64_t session = id != nullptr ? id->client_id : 0;
    if (session != sessionId_) {
      log()->info("ZooKeeper session {:#x} established with '{}'", session, options_.url.servers);
    }
    sessionId_ = session;
    openAttempts_ = 0;
    if (listener_) listener_(ZkSessionEvent::kConnected);
  } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
    if (connected_) {
      connected_ = false;
      log()->warn("lost the connection to ZooKeeper (session {:#x}); reconnecting", sessionId_);
      if (listener_) listener_(ZkSessionEvent::kDisconnected);
    }
  } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
    log()->warn("ZooKeeper session {:#x} {}; starting a new one", sessionId_,
                state == ZOO_EXPIRED_SESSION_STATE ? "expired" : "failed authentication");
    closeHandle();
    sessionId_ = 0;
    if (listener_) listener_(ZkSessionEvent::kExpired);
    open();
  }
}

void ZkClient::postIfCurrent(uint64_t generation, std::function<void()> fn) {
  std::weak_ptr<ZkClient> weak = weak_from_this();
  executor_.post([weak, generation, fn = std::move(fn)] {
    auto self = weak.lock();
    if (!self || self->stopped_ || self->generation_ != generation) return;
    fn();
  });
}

uint64_t ZkClient::addPending(std::function<void(int, void*)> handler) {
  std::lock_guard lock(mutex_);
  const uint64_t token = nextToken_++;
  pending_.emplace(token, std::make_pair(currentGeneration_, std::move(handler)));
  return token;
}

void ZkClient::complete(uint64_t token, int rc, void* payload) {
  std::pair<uint64_t, std::function<void(int, void*)>> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(token);
    if (it == pending_.end()) return;
    entry = std::move(it->second);
    pending_.erase(it);
  }
  auto shared = std::make_shared<Payload>(std::move(*static_cast<Payload*>(payload)));
  postIfCurrent(entry.first, [fn = std::move(entry.second), rc, shared] { fn(rc, shared.get()); });
}

uint64_t ZkClient::addWatch(Watcher watcher) {
  std::lock_guard lock(mutex_);
  const uint64_t token = nextToken_++;
  watches_.emplace(token, std::make_pair(currentGeneration_, std::move(watcher)));
  return token;
}

namespace {

template <typename Fill>
void finish(const void* data, int rc, Fill fill) {
  auto* completion = static_cast<CompletionData*>(const_cast<void*>(data));
  Payload payload;
  if (rc == ZOK) fill(payload);
  completion->client->completeFromC(completion->token, rc, &payload);
  delete completion;
}

}  // namespace

void ZkClient::create(const std::string& path, const std::string& data, int flags,
                      CreateDone done) {
  auto fail = [&](int rc) { executor_.post([done, rc] { done(rc, ""); }); };
  if (handle_ == nullptr) return fail(ZINVALIDSTATE);
  const uint64_t token = addPending(
      [done](int rc, void* payload) { done(rc, static_cast<Payload*>(payload)->value); });
  auto* completion = new CompletionData{this, token};
  int rc = zoo_acreate(
      handle_, path.c_str(), data.data(), static_cast<int>(data.size()),
      aclFor(options_.url.credentials.has_value()), flags,
      [](int rc, const char* value, const void* data) {
        finish(data, rc, [&](Payload& p) { p.value = value != nullptr ? value : ""; });
      },
      completion);
  if (rc != ZOK) {
    delete completion;
    std::lock_guard lock(mutex_);
    pending_.erase(token);
    fail(rc);
  }
}

void ZkClient::createPath(const std::string& path, VoidDone done) {
  // Only what is missing, from `path` up: an existing znode is never created again.
  std::weak_ptr<ZkClient> weak = weak_from_this();
  exists(path, nullptr, [weak, path, done](int rc, const ZkStat&) {
    auto self = weak.lock();
    if (rc != ZNONODE || !self) return done(rc);
    auto createThis = [weak, path, done](int rc) {
      auto self = weak.lock();
      if (rc != ZOK || !self) return done(rc);
      self->create(path, "", 0,
                   [done](int rc, const std::string&) { done(rc == ZNODEEXISTS ? ZOK : rc); });
    };
    const std::string parent = parentZnode(path);
    if (parent == "/") return createThis(ZOK);
    self->createPath(parent, createThis);
  });
}

void ZkClient::get(const std::string& path, Watcher watcher, GetDone done) {
  if (handle_ == nullptr) {
    return executor_.post([done] { done(ZINVALIDSTATE, "", ZkStat{}); });
  }
  const uint64_t token = addPending([done](int rc, void* payload) {
    auto* p = static_cast<Payload*>(payload);
    done(rc, p->value, p->stat);
  });
  auto* completion = new CompletionData{this, token};
  const uint64_t watchToken = watcher ? addWatch(std::move(watcher)) : 0;
  int rc = zoo_awget(
      handle_, path.c_str(), watchToken != 0 ? &ZkClient::onWatch : nullptr,
      reinterpret_cast<void*>(static_cast<uintptr_t>(watchToken)),
      [](int rc, const char* value, int length, const Stat* stat, const void* data) {
        finish(data, rc, [&](Payload& p) {
          if (value != nullptr && length > 0) p.value.assign(value, static_cast<size_t>(length));
          p.stat = toStat(stat);
        });
      },
      completion);
  if (rc != ZOK) {
    delete completion;
    std::lock_guard lock(mutex_);
    pending_.erase(token);
    watches_.erase(watchToken);
    executor_.post([done, rc] { done(rc, "", ZkStat{}); });
  }
}

void ZkClient::getChildren(const std::string& path, Watcher watcher, ChildrenDone done) {
  if (handle_ == nullptr) return executor_.post([done] { done(ZINVALIDSTATE, {}); });
  const uint64_t token = addPending([done](int rc, void* payload) {
    done(rc, std::move(static_cast<Payload*>(payload)->strings));
  });
  auto* completion = new CompletionData{this, token};
  const uint64_t watchToken = watcher ? addWatch(std::move(watcher)) : 0;
  int rc = zoo_awget_children(
      handle_, path.c_str(), watchToken != 0 ? &ZkClient::onWatch : nullptr,
      reinterpret_cast<void*>(static_cast<uintptr_t>(watchToken)),
      [](int rc, const String_vector* strings, const void* data) {
        finish(data, rc, [&](Payload& p) {
          if (strings == nullptr) return;
          for (int32_t i = 0; i < strings->count; ++i) p.strings.emplace_back(strings->data[i]);
        });
      },
      completion);
  if (rc != ZOK) {
    delete completion;
    std::lock_guard lock(mutex_);
    pending_.erase(token);
    watches_.erase(watchToken);
    executor_.post([done, rc] { done(rc, {}); });
  }
}

void ZkClient::exists(const std::string& path, Watcher watcher, StatDone done) {
  if (handle_ == nullptr) return executor_.post([done] { done(ZINVALIDSTATE, ZkStat{}); });
  const uint64_t token =
      addPending([done](int rc, void* payload) { done(rc, static_cast<Payload*>(payload)->stat); });
  auto* completion = new CompletionData{this, token};
  const uint64_t watchToken = watcher ? addWatch(std::move(watcher)) : 0;
  int rc = zoo_awexists(
      handle_, path.c_str(), watchToken != 0 ? &ZkClient::onWatch : nullptr,
      reinterpret_cast<void*>(static_cast<uintptr_t>(watchToken)),
      [](int rc, const Stat* stat, const void* data) {
        finish(data, rc, [&](Payload& p) { p.stat = toStat(stat); });
      },
      completion);
  if (rc != ZOK) {
    delete completion;
    std::lock_guard lock(mutex_);
    pending_.erase(token);
    watches_.erase(watchToken);
    executor_.post([done, rc] { done(rc, ZkStat{}); });
  }
}

void ZkClient::remove(const std::string& path, int32_t version, VoidDone done) {
  if (handle_ == nullptr) return executor_.post([done] { done(ZINVALIDSTATE); });
  const uint64_t token = addPending([done](int rc, void*) { done(rc); });
  auto* completion = new CompletionData{this, token};
  int rc = zoo_adelete(
      handle_, path.c_str(), version,
      [](int rc, const void* data) { finish(data, rc, [](Payload&) {}); }, completion);
  if (rc != ZOK) {
    delete completion;
    std::lock_guard lock(mutex_);
    pending_.erase(token);
    executor_.post([done, rc] { done(rc); });
  }
}

}  // namespace tessera::kernel::zookeeper

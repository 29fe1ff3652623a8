#include "kernel/election/election.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <sstream>

#include "kernel/runtime/logging.h"

namespace tessera::kernel::election {

namespace {

std::shared_ptr<spdlog::logger> log() { return runtime::logger("election"); }

uint64_t sequenceOf(const std::string& node) {
  uint64_t sequence = 0;
  for (size_t i = kLabelPrefix.size(); i < node.size(); ++i) {
    if (node[i] < '0' || node[i] > '9') return UINT64_MAX;
    sequence = sequence * 10 + static_cast<uint64_t>(node[i] - '0');
  }
  return sequence;
}

}  // namespace

std::string MasterInfo::address() const {
  return fmt::format("{}:{}", ip.empty() ? hostname : ip, port);
}

std::string masterInfoJson(const MasterInfo& info) {
  Poco::JSON::Object::Ptr object = new Poco::JSON::Object;
  Poco::JSON::Object::Ptr address = new Poco::JSON::Object;
  address->set("hostname", info.hostname);
  address->set("ip", info.ip);
  address->set("port", static_cast<int>(info.port));
  object->set("address", address);
  object->set("hostname", info.hostname);
  object->set("id", info.id);
  // Mesos keeps the IPv4 address as the uint32 inet_addr() gives: network byte order read as
  // a host integer (127.0.0.1 is 16777343 on x86).
  in_addr addr{};
  if (inet_pton(AF_INET, info.ip.c_str(), &addr) == 1) {
    object->set("ip", static_cast<uint64_t>(addr.s_addr));
  }
  object->set("pid", info.pid.empty() ? fmt::format("master@{}:{}", info.ip, info.port) : info.pid);
  object->set("port", static_cast<int>(info.port));
  object->set("version", info.version);
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

api::Result<MasterInfo> parseMasterInfoJson(std::string_view json) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(std::string(json)).extract<Poco::JSON::Object::Ptr>();
    if (object.isNull()) return api::invalidArgument("MasterInfo is not a JSON object");
    MasterInfo info;
    info.id = object->optValue<std::string>("id", "");
    info.hostname = object->optValue<std::string>("hostname", "");
    info.version = object->optValue<std::string>("version", "");
    info.pid = object->optValue<std::string>("pid", "");
    int64_t port = object->optValue<int64_t>("port", 0);
    if (auto address = object->getObject("address"); !address.isNull()) {
      info.ip = address->optValue<std::string>("ip", "");
      if (info.hostname.empty()) info.hostname = address->optValue<std::string>("hostname", "");
      if (address->has("port")) port = address->getValue<int64_t>("port");
    }
    if (info.ip.empty() && object->has("ip")) {
      in_addr addr{};
      addr.s_addr = static_cast<uint32_t>(object->getValue<uint64_t>("ip"));
      char text[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &addr, text, sizeof(text)) != nullptr) info.ip = text;
    }
    if (port <= 0 || port > 65535) return api::invalidArgument("MasterInfo has no valid 'port'");
    info.port = static_cast<uint16_t>(port);
    if (info.ip.empty() && info.hostname.empty()) {
      return api::invalidArgument("MasterInfo has neither 'address.ip', 'ip' nor 'hostname'");
    }
    return info;
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("MasterInfo is not valid JSON: {}", e.displayText());
  } catch (const std::exception& e) {
    return api::invalidArgument("MasterInfo is not valid JSON: {}", e.what());
  }
}

std::vector<std::string> electionNodes(const std::vector<std::string>& children) {
  std::vector<std::string> nodes;
  for (const auto& child : children) {
    if (child.rfind(kLabelPrefix, 0) == 0 && sequenceOf(child) != UINT64_MAX) {
      nodes.push_back(child);
    }
  }
  std::sort(nodes.begin(), nodes.end(), [](const std::string& a, const std::string& b) {
    return sequenceOf(a) < sequenceOf(b);
  });
  return nodes;
}

// ==== LeaderContender ===========================================================================

std::shared_ptr<LeaderContender> LeaderContender::create(zookeeper::ZkUrl url,
                                                         std::chrono::milliseconds sessionTimeout,
                                                         MasterInfo info, api::Executor& executor,
                                                         Callbacks callbacks) {
  return std::shared_ptr<LeaderContender>(new LeaderContender(
      std::move(url), sessionTimeout, std::move(info), executor, std::move(callbacks)));
}

LeaderContender::LeaderContender(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout,
                                 MasterInfo info, api::Executor& executor, Callbacks callbacks)
    : url_(std::move(url)),
      sessionTimeout_(sessionTimeout),
      info_(std::move(info)),
      executor_(executor),
      callbacks_(std::move(callbacks)) {}

void LeaderContender::start() {
  std::weak_ptr<LeaderContender> weak = weak_from_this();
  executor_.post([weak] {
    auto self = weak.lock();
    if (!self || self->client_) return;
    self->client_ =
        zookeeper::ZkClient::create({self->url_, self->sessionTimeout_}, self->executor_,
                                    [weak](zookeeper::ZkSessionEvent event) {
                                      if (auto self = weak.lock()) self->onSession(event);
                                    });
    self->client_->start();
  });
}

void LeaderContender::stop() {
  std::shared_ptr<zookeeper::ZkClient> client;
  if (executor_.runningInThisThread()) {
    client = client_;
    if (disconnectTimer_) disconnectTimer_->cancel();
  } else {
    std::promise<std::shared_ptr<zookeeper::ZkClient>> taken;
    executor_.post([&] {
      if (disconnectTimer_) disconnectTimer_->cancel();
      lost_ = true;  // no callbacks any more
      taken.set_value(client_);
    });
    client = taken.get_future().get();
  }
  lost_ = true;
  if (client) client->stop();
}

void LeaderContender::onSession(zookeeper::ZkSessionEvent event) {
  if (lost_) return;
  using zookeeper::ZkSessionEvent;
  switch (event) {
    case ZkSessionEvent::kConnected:
      if (disconnectTimer_) disconnectTimer_->cancel();
      if (callbacks_.connection) callbacks_.connection(true);
      if (node_.empty()) {
        contend();
      } else {
        check();
      }
      break;
    case ZkSessionEvent::kDisconnected: {
      if (callbacks_.connection) callbacks_.connection(false);
      if (!leading_) break;
      // The server expires the session a session timeout after it last heard from us, which
      // may be a third of it before we noticed: give up leadership before that can happen.
      std::weak_ptr<LeaderContender> weak = weak_from_this();
      disconnectTimer_ = executor_.schedule(sessionTimeout_ * 2 / 3, [weak] {
        auto self = weak.lock();
        if (self && !self->client_->connected()) {
          self->lose("disconnected from ZooKeeper for longer than the session can survive");
        }
      });
      break;
    }
    case ZkSessionEvent::kExpired:
      if (callbacks_.connection) callbacks_.connection(false);
      if (leading_) return lose("the ZooKeeper session expired");
      // A follower stands again with its next session.
      node_.clear();
      creating_ = false;
      break;
  }
}

void LeaderContender::contend() {
  if (creating_) return;
  creating_ = true;
  std::weak_ptr<LeaderContender> weak = weak_from_this();
  const uint64_t generation = client_->generation();
  client_->createPath(url_.path, [weak, generation](int rc) {
    auto self = weak.lock();
    if (!self || self->lost_ || generation != self->client_->generation()) return;
    if (rc != ZOK) {
      log()->warn("{}", zookeeper::zkStatus(rc, fmt::format("cannot create the election path '{}'",
                                                            self->url_.path))
                            .message());
      self->creating_ = false;
      return;
    }
    self->client_->create(
        self->url_.path + "/" + std::string(kLabelPrefix), masterInfoJson(self->info_),
        ZOO_EPHEMERAL | ZOO_SEQUENCE, [weak](int rc, const std::string& created) {
          auto self = weak.lock();
          if (!self || self->lost_) return;
          self->creating_ = false;
          if (rc != ZOK) {
            log()->warn("{}", zookeeper::zkStatus(rc,
                                                  fmt::format("cannot create the election znode "
                                                              "under '{}'",
                                                              self->url_.path),
                                                  self->url_.path)
                                  .message());
            return;
          }
          self->node_ = created.substr(created.rfind('/') + 1);
          log()->info("contending for leadership as '{}/{}'", self->url_.path, self->node_);
          self->check();
        });
  });
}

void LeaderContender::check() {
  std::weak_ptr<LeaderContender> weak = weak_from_this();
  client_->getChildren(url_.path, nullptr, [weak](int rc, std::vector<std::string> children) {
    auto self = weak.lock();
    if (!self || self->lost_ || self->node_.empty()) return;
    if (rc != ZOK) {
      log()->warn("cannot list '{}': {}", self->url_.path, zerror(rc));
      return;  // the next session event checks again
    }
    auto nodes = electionNodes(children);
    auto mine = std::find(nodes.begin(), nodes.end(), self->node_);
    if (mine == nodes.end()) {
      if (self->leading_) return self->lose("its election znode was removed");
      self->node_.clear();
      return self->contend();
    }
    if (mine == nodes.begin()) {
      if (!self->leading_) {
        self->leading_ = true;
        log()->info("elected leader ('{}/{}')", self->url_.path, self->node_);
        if (self->callbacks_.elected) self->callbacks_.elected();
      }
      return;
    }
    // Watch the predecessor only: when it goes, look again.
    const std::string predecessor = self->url_.path + "/" + *(mine - 1);
    self->client_->exists(
        predecessor,
        [weak](int, const std::string&) {
          if (auto self = weak.lock(); self && !self->lost_) self->check();
        },
        [weak](int rc, const zookeeper::ZkStat&) {
          auto self = weak.lock();
          if (!self || self->lost_) return;
          if (rc == ZNONODE) self->check();  // gone between the listing and the watch
        });
  });
}

void LeaderContender::lose(const std::string& reason) {
  if (lost_) return;
  lost_ = true;
  leading_ = false;
  log()->error("lost leadership: {}", reason);
  if (callbacks_.lost) callbacks_.lost(reason);
}

// ==== LeaderDetector ============================================================================

std::shared_ptr<LeaderDetector> LeaderDetector::create(zookeeper::ZkUrl url,
                                                       std::chrono::milliseconds sessionTimeout,
                                                       api::Executor& executor, Listener listener) {
  return std::shared_ptr<LeaderDetector>(
      new LeaderDetector(std::move(url), sessionTimeout, executor, std::move(listener)));
}

LeaderDetector::LeaderDetector(zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout,
                               api::Executor& executor, Listener listener)
    : url_(std::move(url)),
      sessionTimeout_(sessionTimeout),
      executor_(executor),
      listener_(std::move(listener)) {}

void LeaderDetector::start() {
  std::weak_ptr<LeaderDetector> weak = weak_from_this();
  executor_.post([weak] {
    auto self = weak.lock();
    if (!self || self->client_) return;
    self->client_ =
        zookeeper::ZkClient::create({self->url_, self->sessionTimeout_}, self->executor_,
                                    [weak](zookeeper::ZkSessionEvent event) {
                                      auto self = weak.lock();
                                      if (self && event == zookeeper::ZkSessionEvent::kConnected)
                                        self->refresh();
                                    });
    self->client_->start();
  });
}

void LeaderDetector::stop() {
  std::shared_ptr<zookeeper::ZkClient> client;
  if (executor_.runningInThisThread()) {
    client = client_;
  } else {
    std::promise<std::shared_ptr<zookeeper::ZkClient>> taken;
    executor_.post([&] { taken.set_value(client_); });
    client = taken.get_future().get();
  }
  if (client) client->stop();
  changed_.notify_all();
}

std::optional<MasterInfo> LeaderDetector::leader() const {
  std::lock_guard lock(mutex_);
  return leader_;
}

std::optional<MasterInfo> LeaderDetector::awaitLeader(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return leader_.has_value(); });
  return leader_;
}

void LeaderDetector::refresh() {
  std::weak_ptr<LeaderDetector> weak = weak_from_this();
  auto again = [weak](int, const std::string&) {
    if (auto self = weak.lock()) self->refresh();
  };
  client_->getChildren(url_.path, again, [weak, again](int rc, std::vector<std::string> children) {
    auto self = weak.lock();
    if (!self) return;
    if (rc == ZNONODE) {
      // No one has contended yet: wait for the path.
      self->client_->exists(self->url_.path, again, [weak](int rc, const zookeeper::ZkStat&) {
        auto self = weak.lock();
        if (self && rc == ZOK) self->refresh();
      });
      return self->update(std::nullopt, "");
    }
    if (rc != ZOK) return;  // the next session event refreshes
    auto nodes = electionNodes(children);
    if (nodes.empty()) return self->update(std::nullopt, "");
    const std::string node = nodes.front();
    if (node == self->leaderNode_) return;
    self->client_->get(self->url_.path + "/" + node, nullptr,
                       [weak, node](int rc, const std::string& data, const zookeeper::ZkStat&) {
                         auto self = weak.lock();
                         if (!self) return;
                         if (rc == ZNONODE) return self->refresh();
                         if (rc != ZOK) return;
                         auto info = parseMasterInfoJson(data);
                         if (!info) {
                           log()->warn("leader znode '{}' holds no MasterInfo: {}", node,
                                       info.status().message());
                           return self->update(std::nullopt, node);
                         }
                         self->update(*info, node);
                       });
  });
}

void LeaderDetector::update(std::optional<MasterInfo> leader, const std::string& node) {
  if (known_ && node == leaderNode_) return;
  known_ = true;
  leaderNode_ = node;
  if (leader) {
    log()->info("detected leading master {} ('{}')", leader->address(), node);
  } else {
    log()->info("no master leads under '{}'", url_.path);
  }
  {
    std::lock_guard lock(mutex_);
    leader_ = leader;
  }
  changed_.notify_all();
  if (listener_) listener_(leader);
}

}  // namespace tessera::kernel::election

#include "kernel/agent/agent.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include "kernel/agent/agent_files.h"
#include "kernel/agent/agent_resources.h"
#include "kernel/agent/isolator_proxy.h"
#include "kernel/net/http_client.h"
#include "kernel/net/transport.h"
#include "kernel/net/v1_json.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/logging.h"
#include "tessera/api/json.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using api::jsonQuote;

namespace {

constexpr auto kMaxRetryInterval = std::chrono::minutes(10);
constexpr size_t kMaxCompletedExecutors = 1000;
constexpr auto kSyncTimeout = 60s;
constexpr auto kDiscoveryTimeout = 5s;
// A client that has not connected within this is dropped and the port discovered again (the
// master may have come back on another port).
constexpr auto kConnectWatchdog = 15s;
constexpr const char* kAgentVersion = "1.11.0";

// Timers are cancelled, not just dropped: destroying a handle leaves the callback scheduled.
void cancelTimer(std::unique_ptr<api::TimerHandle>& timer) {
  if (timer) timer->cancel();
  timer.reset();
}

using api::isTerminal;

// A state-store key segment for an id: anything but [A-Za-z0-9._-] is %XX-escaped, and so are
// the segments "." and "..".
std::string keySegment(std::string_view id) {
  std::string out;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  if (out.empty() || out == "." || out == "..") {
    std::string escaped;
    for (unsigned char c : out) escaped += fmt::format("%{:02X}", c);
    return escaped.empty() ? "%" : escaped;
  }
  return out;
}

// Ids become directory names in the sandbox path.
bool safePathComponent(std::string_view id) {
  if (id.empty() || id == "." || id == ".." || id.size() > 200) return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    return c == '/' || c == '\0' || static_cast<unsigned char>(c) < 0x20;
  });
}

std::string randomBytes(size_t count) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::string out(count, '\0');
  for (size_t i = 0; i < count; i += 8) {
    uint64_t value = rng();
    for (size_t j = 0; j < 8 && i + j < count; ++j) {
      out[i + j] = static_cast<char>((value >> (8 * j)) & 0xff);
    }
  }
  return out;
}

std::string uuidText(std::string bytes) {
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += fmt::format("{:02x}", static_cast<unsigned char>(bytes[i]));
  }
  return out;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string containerJson(const api::ContainerCheckpoint& c) {
  return fmt::format(
      "{{\"container_id\":{},\"containerizer\":{},\"pid\":{},\"start_time\":{},"
      "\"sandbox_directory\":{},\"data\":{}}}",
      jsonQuote(c.containerId), jsonQuote(c.containerizer), c.pid, c.startTime,
      jsonQuote(c.sandboxDirectory), jsonQuote(net::base64Encode(c.data)));
}

api::Result<api::ContainerCheckpoint> parseContainerJson(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    api::ContainerCheckpoint c;
    c.containerId = object->getValue<std::string>("container_id");
    c.containerizer = object->getValue<std::string>("containerizer");
    c.pid = object->get("pid").convert<Poco::Int64>();
    c.startTime = object->get("start_time").convert<Poco::UInt64>();
    c.sandboxDirectory = object->getValue<std::string>("sandbox_directory");
    auto data = net::base64Decode(object->getValue<std::string>("data"));
    if (!data) return data.status();
    c.data = std::move(data).value();
    return c;
  } catch (const std::exception& e) {
    return api::invalidArgument("bad container checkpoint: {}", e.what());
  }
}

}  // namespace

api::Result<std::pair<std::string, uint16_t>> parseMaster(std::string master) {
  if (master.rfind("http://", 0) == 0) master = master.substr(7);
  while (!master.empty() && master.back() == '/') master.pop_back();
  if (master.rfind("zk://", 0) == 0) {
    return api::invalidArgument("flag '--master': zk:// masters are not supported yet");
  }
  auto colon = master.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return api::invalidArgument("flag '--master': expected host:port, got '{}'", master);
  }
  int port = 0;
  for (char c : master.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      return api::invalidArgument("flag '--master': bad port in '{}'", master);
    }
    port = port * 10 + (c - '0');
  }
  if (port <= 0 || port > 65535) {
    return api::invalidArgument("flag '--master': bad port in '{}'", master);
  }
  std::string host = master.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

api::Result<uint16_t> discoverTransportPort(const std::string& host, uint16_t port) {
  auto response =
      net::httpRequest("GET", host, port, "/master/transport", {}, "",
                       std::chrono::duration_cast<std::chrono::milliseconds>(kDiscoveryTimeout));
  if (!response) return response.status();
  if (response->status != 200) {
    return api::unavailable("GET /master/transport answered {}", response->status);
  }
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(response->body).extract<Poco::JSON::Object::Ptr>();
    auto value = object->get("port").convert<int>();
    if (value <= 0 || value > 65535) return api::unavailable("bad transport port {}", value);
    return static_cast<uint16_t>(value);
  } catch (const std::exception& e) {
    return api::unavailable("bad answer from GET /master/transport: {}", e.what());
  }
}

/// Everything the agent owns, shared with its callbacks through weak references.
class AgentCore : public std::enable_shared_from_this<AgentCore> {
 public:
  struct Pending {
    std::string key;  // its checkpoint
    internal::StatusUpdate update;
    bool durable = false;
  };

  struct Task {
    internal::Task record;  // checkpointed at `key + "task"`
    std::string frameworkId;
    std::string taskId;
    std::string key;  // "<root>tasks/<fw>/<task>/"
    std::string sandbox;
    std::optional<size_t> slot;
    std::optional<api::ContainerCheckpoint> container;
    bool launching = false;
    bool launched = false;       // the container runs (or ran) and is checkpointed
    bool ended = false;          // the container is gone, or never came
    bool checkpointing = false;  // the container's checkpoint is being written
    std::optional<api::Result<api::ContainerTermination>> endedEarly;  // ended meanwhile
    bool killRequested = false;
    bool frameworkGone = false;
    std::optional<runtime::Duration> killGrace;
    std::deque<Pending> updates;
    uint64_t nextSeq = 1;
    std::unique_ptr<api::TimerHandle> retry;
    runtime::Duration backoff{};
    std::vector<std::pair<v1::TaskState, double>> statuses;
  };
  using TaskPtr = std::shared_ptr<Task>;
  using TaskKey = std::pair<std::string, std::string>;

  struct Gauges {
    std::atomic<double> registered{0};
    std::atomic<double> staging{0};
    std::atomic<double> starting{0};
    std::atomic<double> running{0};
    std::atomic<double> executorsRunning{0};
  };

  AgentCore(AgentServices services, AgentOptions options)
      : services_(std::move(services)),
        options_(std::move(options)),
        strand_(services_.runtime
                    ? std::shared_ptr<runtime::StrandExecutor>(services_.runtime->makeExecutor())
                    : nullptr),
        log_(runtime::logger("agent")),
        gauges_(std::make_shared<Gauges>()) {
    root_ = options_.stateRoot;
    if (root_.empty() || root_.front() != '/') root_ = fmt::format("/{}", root_);
    if (root_.back() != '/') root_ += '/';
    workDir_ = options_.workDir;
  }

  api::Status start();
  void stop();
  // The leading master changed (Agent::masterChanged): reconnect now.
  void reconnectNow() {
    std::weak_ptr<AgentCore> weak = weak_from_this();
    strand_->post([weak] {
      auto self = weak.lock();
      if (!self || self->stopped_ || self->refused_) return;
      self->log_->info("the leading master changed; connecting to it");
      self->teardownClient();
      cancelTimer(self->reconnectTimer_);
      self->attempt_ = 0;
      self->connect();
    });
  }
  std::string id() const {
    std::lock_guard lock(idMutex_);
    return publicId_;
  }

 private:
  // ---- state store ------------------------------------------------------------------------
  void storeSet(const std::string& key, std::string value, std::function<void()> then = {});
  void storeRemove(const std::string& key);
  api::Result<std::optional<api::StateEntry>> syncGet(const std::string& key);
  api::Result<std::vector<std::string>> syncChildren(const std::string& prefix);
  api::Status syncRemove(const std::string& key, uint64_t version);
  void storeStarted();
  void storeFinished();

  // ---- containerizers ---------------------------------------------------------------------
  template <typename T>
  void onContainerizer(size_t slot,
                       std::function<void(api::Containerizer&, std::function<void(T)>)> call,
                       std::function<void(AgentCore&, T)> then);
  template <typename T>
  std::optional<T> syncContainerizer(
      size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call);

  // ---- master connection ------------------------------------------------------------------
  void connect();
  void onDiscovered(uint64_t generation, api::Result<uint16_t> port);
  void scheduleReconnect();
  void teardownClient();
  void onConnected(uint64_t generation);
  void onClosed(uint64_t generation, const api::Status& reason);
  void onEnvelope(uint64_t generation, const internal::Envelope& envelope);
  void onRegistered(const internal::AgentRegistered& registered);
  bool send(const internal::Envelope& envelope);

  // ---- tasks ------------------------------------------------------------------------------
  void runTask(const internal::RunTask& message);
  void chooseContainerizer(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                           size_t index);
  void launch(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
              size_t slot);
  void onLaunched(const TaskPtr& task, api::Result<api::ContainerCheckpoint> result);
  void watch(const TaskPtr& task);
  void onTerminated(const TaskPtr& task, api::Result<api::ContainerTermination> result);
  void killTask(const internal::KillTask& message);
  void destroy(const TaskPtr& task);
  void shutdownFramework(const std::string& frameworkId);
  void reconcile(const internal::ReconcileTasks& message);
  void checkpointTask(const TaskPtr& task);
  void enqueueUpdate(const TaskPtr& task, v1::TaskState state, std::string message,
                     std::optional<v1::TaskStatus::Reason> reason,
                     v1::TaskStatus::Source source = v1::TaskStatus::SOURCE_EXECUTOR);
  void sendUnreliable(const std::string& frameworkId, const std::string& taskId,
                      v1::TaskState state, std::string message, v1::TaskStatus::Reason reason);
  void sendHead(const TaskPtr& task);
  void armRetry(const TaskPtr& task);
  void onAcknowledgement(const internal::StatusUpdateAcknowledgement& ack);
  void dropUpdates(const TaskPtr& task);
  void forget(const TaskPtr& task);
  void refreshGauges();
  TaskPtr findTask(const std::string& frameworkId, const std::string& taskId) const;

  // ---- recovery ---------------------------------------------------------------------------
  struct Recovered {
    std::string infoValue;
    std::map<std::string, v1::FrameworkInfo> frameworks;
    std::vector<TaskPtr> tasks;
  };
  api::Status readCheckpoints(Recovered& recovered);
  void install(Recovered recovered,
               const std::map<std::string, api::RecoveredContainer>& containers);
  void recoveredTermination(const TaskPtr& task, const api::ContainerTermination& termination);

  // ---- HTTP -------------------------------------------------------------------------------
  api::Status addRoutes();
  std::string stateJson() const;
  std::string taskJson(const Task& task) const;
  std::string executorJson(const Task& task, bool completed) const;
  void monitorStatistics(api::HttpResponder respond);
  std::string debugJson() const;

  std::string pid() const;
  fs::path sandboxRoot() const { return workDir_ / "slaves"; }

  AgentServices services_;
  AgentOptions options_;
  std::shared_ptr<runtime::StrandExecutor> strand_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<Gauges> gauges_;
  std::string root_;
  fs::path workDir_;
  bool started_ = false;  // control thread

  mutable std::mutex idMutex_;
  std::string publicId_;

  std::mutex storeMutex_;
  std::condition_variable storeIdle_;
  size_t storePending_ = 0;

  // Everything below is touched only on strand_ (or by start() before the strand has work).
  bool stopped_ = false;
  v1::AgentInfo info_;
  api::Resources resources_;
  std::map<std::string, uint64_t> versions_;
  std::string masterHost_;
  uint16_t masterPort_ = 0;
  net::TransportClientOptions clientOptions_;
  std::unique_ptr<net::TransportClient> client_;
  uint64_t generation_ = 0;
  int attempt_ = 0;
  bool connected_ = false;
  bool registered_ = false;
  bool refused_ = false;
  std::unique_ptr<api::TimerHandle> reconnectTimer_;
  std::unique_ptr<api::TimerHandle> watchdog_;
  std::string masterHostname_;
  std::map<std::string, v1::FrameworkInfo> frameworks_;
  std::map<TaskKey, TaskPtr> tasks_;
  struct CompletedExecutor {
    std::string frameworkId;
    std::string json;
  };
  std::deque<CompletedExecutor> completed_;
  std::map<std::string, v1::FrameworkInfo> completedFrameworks_;
  double startTime_ = nowSeconds();
  std::chrono::steady_clock::time_point startedAt_ = std::chrono::steady_clock::now();
  std::vector<std::string> routes_;

  api::Counter* finished_ = nullptr;
  api::Counter* failed_ = nullptr;
  api::Counter* killed_ = nullptr;
  api::Counter* lost_ = nullptr;
  api::Counter* recoveryErrors_ = nullptr;
  api::Counter* validUpdates_ = nullptr;
  api::Counter* invalidUpdates_ = nullptr;
  api::Counter* invalidFrameworkMessages_ = nullptr;
};

// ==== state store ============================================================================

void AgentCore::storeStarted() {
  std::lock_guard lock(storeMutex_);
  ++storePending_;
}

void AgentCore::storeFinished() {
  std::lock_guard lock(storeMutex_);
  if (--storePending_ == 0) storeIdle_.notify_all();
}

void AgentCore::storeSet(const std::string& key, std::string value, std::function<void()> then) {
  if (stopped_) return;
  uint64_t& version = versions_[key];
  const uint64_t expected = version;
  ++version;
  storeStarted();
  std::weak_ptr<AgentCore> weak = weak_from_this();
  services_.state->set(key, std::move(value), expected, *strand_,
                       [weak, key, then = std::move(then)](const api::Result<uint64_t>& result) {
                         auto self = weak.lock();
                         if (!self) return;
                         self->storeFinished();
                         if (!result) {
                           self->log_->error("cannot checkpoint '{}': {}", key,
                                             result.status().toString());
                           self->recoveryErrors_->increment();
                           if (result.status().code() == api::StatusCode::kAborted) {
                             // Someone else wrote the key: forget our idea of its version so the
                             // next write reads it back first.
                             self->versions_.erase(key);
                           }
                         }
                         // Without a working store, updates would never be sent at all: go on
                         // regardless.
                         if (then && !self->stopped_) then();
                       });
}

void AgentCore::storeRemove(const std::string& key) {
  if (stopped_) return;
  auto it = versions_.find(key);
  if (it == versions_.end() || it->second == 0) return;
  const uint64_t version = it->second;
  versions_.erase(it);
  storeStarted();
  std::weak_ptr<AgentCore> weak = weak_from_this();
  services_.state->remove(key, version, *strand_, [weak, key](const api::Status& status) {
    auto self = weak.lock();
    if (!self) return;
    self->storeFinished();
    if (!status && status.code() != api::StatusCode::kNotFound) {
      self->log_->warn("cannot remove checkpoint '{}': {}", key, status.toString());
    }
  });
}

api::Result<std::optional<api::StateEntry>> AgentCore::syncGet(const std::string& key) {
  auto promise = std::make_shared<std::promise<api::Result<std::optional<api::StateEntry>>>>();
  auto future = promise->get_future();
  services_.state->get(key, *strand_,
                       [promise](api::Result<std::optional<api::StateEntry>> result) {
                         promise->set_value(std::move(result));
                       });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "reading '{}' timed out", key);
  }
  auto result = future.get();
  if (result && result->has_value()) versions_[key] = (*result)->version;
  return result;
}

api::Result<std::vector<std::string>> AgentCore::syncChildren(const std::string& prefix) {
  auto promise = std::make_shared<std::promise<api::Result<std::vector<std::string>>>>();
  auto future = promise->get_future();
  services_.state->children(prefix, *strand_,
                            [promise](api::Result<std::vector<std::string>> result) {
                              promise->set_value(std::move(result));
                            });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "listing '{}' timed out", prefix);
  }
  return future.get();
}

api::Status AgentCore::syncRemove(const std::string& key, uint64_t version) {
  auto promise = std::make_shared<std::promise<api::Status>>();
  auto future = promise->get_future();
  services_.state->remove(key, version, *strand_,
                          [promise](const api::Status& status) { promise->set_value(status); });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "removing '{}' timed out", key);
  }
  versions_.erase(key);
  return future.get();
}

// ==== containerizers =========================================================================

template <typename T>
void AgentCore::onContainerizer(
    size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call,
    std::function<void(AgentCore&, T)> then) {
  const ContainerizerSlot& target = services_.containerizers[slot];
  std::weak_ptr<AgentCore> weak = weak_from_this();
  api::Containerizer* containerizer = target.containerizer;
  target.executor->post([containerizer, call, weak, then] {
    call(*containerizer, [weak, then](T result) {
      auto self = weak.lock();
      if (!self) return;
      self->strand_->post([weak, then, result = std::move(result)]() mutable {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        then(*self, std::move(result));
      });
    });
  });
}

template <typename T>
std::optional<T> AgentCore::syncContainerizer(
    size_t slot, std::function<void(api::Containerizer&, std::function<void(T)>)> call) {
  const ContainerizerSlot& target = services_.containerizers[slot];
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  api::Containerizer* containerizer = target.containerizer;
  target.executor->post([containerizer, call, promise] {
    call(*containerizer, [promise](T result) { promise->set_value(std::move(result)); });
  });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

// ==== start / stop ===========================================================================

api::Status AgentCore::start() {
  if (started_) return api::failedPrecondition("the agent is already started");
  if (services_.runtime == nullptr || services_.metrics == nullptr || !services_.router ||
      services_.state == nullptr || services_.containerizers.empty()) {
    return api::invalidArgument(
        "the agent needs a runtime, metrics, a router, a state store and a containerizer");
  }
  if (options_.workDir.empty()) return api::invalidArgument("flag '--work_dir' is required");
  if (options_.recover != "reconnect" && options_.recover != "cleanup") {
    return api::invalidArgument("flag '--recover': expected 'reconnect' or 'cleanup', got '{}'",
                                options_.recover);
  }
  if (!options_.resolveMaster) {
    auto master = parseMaster(options_.master);
    if (!master) return master.status();
    masterHost_ = master->first;
    masterPort_ = master->second;
  }

  std::error_code error;
  fs::create_directories(sandboxRoot(), error);
  if (error) {
    return api::unavailable("flag '--work_dir': cannot create '{}': {}", sandboxRoot().string(),
                            error.message());
  }
  auto detected = agentResources(options_.resources, probeMachine(options_.workDir));
  if (!detected) return detected.status();
  resources_ = std::move(detected).value();
  auto attributes = parseAttributes(options_.attributes);
  if (!attributes) return attributes.status();

  info_.set_hostname(options_.hostname.empty() ? options_.ip : options_.hostname);
  info_.set_port(options_.httpPort);
  *info_.mutable_resources() = resources_.toProto();
  *info_.mutable_attributes() = std::move(attributes).value();

  finished_ = &services_.metrics->counter("slave/tasks_finished");
  failed_ = &services_.metrics->counter("slave/tasks_failed");
  killed_ = &services_.metrics->counter("slave/tasks_killed");
  lost_ = &services_.metrics->counter("slave/tasks_lost");
  recoveryErrors_ = &services_.metrics->counter("slave/recovery_errors");
  validUpdates_ = &services_.metrics->counter("slave/valid_status_updates");
  invalidUpdates_ = &services_.metrics->counter("slave/invalid_status_updates");
  invalidFrameworkMessages_ = &services_.metrics->counter("slave/invalid_framework_messages");

  // Read what the previous agent on this work dir left.
  Recovered recovered;
  if (auto read = readCheckpoints(recovered); !read) {
    return read.withContext("reading the agent's checkpoints");
  }

  // Containerizers: initialize, then recover their checkpointed containers.
  for (size_t slot = 0; slot < services_.containerizers.size(); ++slot) {
    api::ContainerizerSettings settings;
    settings.agentWorkDir = options_.workDir;
    settings.defaultGracePeriod = options_.killGracePeriod;
    if (!options_.isolation.empty()) {
      size_t start = 0;
      while (start <= options_.isolation.size()) {
        size_t end = options_.isolation.find(',', start);
        std::string name = options_.isolation.substr(
            start, end == std::string::npos ? std::string::npos : end - start);
        if (!name.empty()) settings.isolation.push_back(name);
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    for (const auto& [isolator, executor] : services_.isolators) {
      settings.isolators.push_back(
          makeIsolatorProxy(*isolator, *executor, *services_.containerizers[slot].executor));
    }
    auto initialized = syncContainerizer<api::Status>(
        slot, [settings](api::Containerizer& c, std::function<void(api::Status)> done) {
          c.initialize(settings, std::move(done));
        });
    const std::string& name = services_.containerizers[slot].name;
    if (!initialized) return api::unavailable("containerizer '{}' did not initialize", name);
    if (!*initialized) return initialized->withContext("containerizer '{}'", name);
  }

  std::map<std::string, api::RecoveredContainer> containers;
  std::set<std::string> claimed;
  for (size_t slot = 0; slot < services_.containerizers.size(); ++slot) {
    const std::string& name = services_.containerizers[slot].name;
    std::vector<api::ContainerCheckpoint> mine;
    for (const auto& task : recovered.tasks) {
      if (task->container && task->container->containerizer == name) {
        mine.push_back(*task->container);
        task->slot = slot;
      }
    }
    using Answer = api::Result<std::vector<api::RecoveredContainer>>;
    auto result = syncContainerizer<Answer>(
        slot, [mine](api::Containerizer& c, std::function<void(Answer)> done) {
          c.recover(mine, std::move(done));
        });
    if (!result) return api::unavailable("containerizer '{}' did not recover", name);
    if (!*result) return result->status().withContext("recovering containerizer '{}'", name);
    for (auto& container : result->value()) containers[container.containerId] = container;
  }

  if (options_.recover == "cleanup") {
    // Kill whatever runs and start over as a new agent.
    for (const auto& task : recovered.tasks) {
      if (!task->container || !task->slot) continue;
      auto it = containers.find(task->container->containerId);
      if (it == containers.end() || it->second.ended) continue;
      const std::string id = task->container->containerId;
      auto grace = options_.killGracePeriod;
      auto destroyed = syncContainerizer<api::Status>(
          *task->slot, [id, grace](api::Containerizer& c, std::function<void(api::Status)> done) {
            c.destroy(id, grace, std::move(done));
          });
      if (destroyed && !*destroyed) {
        log_->warn("cannot destroy container '{}': {}", id, destroyed->toString());
      }
    }
    std::vector<std::pair<std::string, uint64_t>> keys(versions_.begin(), versions_.end());
    for (const auto& [key, version] : keys) {
      if (auto removed = syncRemove(key, version); !removed) {
        log_->warn("cannot remove checkpoint '{}': {}", key, removed.toString());
      }
    }
    recovered = Recovered{};
    containers.clear();
  }

  started_ = true;
  std::weak_ptr<AgentCore> weak = weak_from_this();
  strand_->call([&] {
    install(std::move(recovered), containers);
    return 0;
  });

  auto gauges = gauges_;
  auto startedAt = startedAt_;
  auto* metrics = services_.metrics;
  metrics->gauge(
      "slave/registered", nullptr, [gauges] { return gauges->registered.load(); }, this);
  metrics->gauge(
      "slave/uptime_secs", nullptr,
      [startedAt] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - startedAt).count();
      },
      this);
  metrics->gauge(
      "slave/tasks_staging", nullptr, [gauges] { return gauges->staging.load(); }, this);
  metrics->gauge(
      "slave/tasks_starting", nullptr, [gauges] { return gauges->starting.load(); }, this);
  metrics->gauge(
      "slave/tasks_running", nullptr, [gauges] { return gauges->running.load(); }, this);
  metrics->gauge(
      "slave/executors_running", nullptr, [gauges] { return gauges->executorsRunning.load(); },
      this);

  if (auto added = addRoutes(); !added) {
    stop();
    return added;
  }
  strand_->post([weak] {
    if (auto self = weak.lock(); self && !self->stopped_) self->connect();
  });
  log_->info("agent started on '{}' with resources {}", options_.workDir, resources_.toString());
  return api::Status::ok();
}

void AgentCore::stop() {
  if (!started_) return;
  started_ = false;
  services_.router->removeRoutes(strand_.get());
  services_.metrics->removeGauges(this);
  auto client = strand_->call([this] {
    stopped_ = true;
    cancelTimer(reconnectTimer_);
    cancelTimer(watchdog_);
    for (auto& [key, task] : tasks_) {
      if (task->retry) task->retry->cancel();
      task->retry.reset();
    }
    ++generation_;
    return std::move(client_);
  });
  if (client) client->stop();
  client.reset();
  // Store replies name our strand: wait for them before the strand can go away.
  std::unique_lock lock(storeMutex_);
  storeIdle_.wait_for(lock, kSyncTimeout, [this] { return storePending_ == 0; });
}

// ==== recovery ===============================================================================

api::Status AgentCore::readCheckpoints(Recovered& recovered) {
  auto info = syncGet(root_ + "info");
  if (!info) return info.status();
  if (info->has_value()) {
    v1::AgentInfo saved;
    if (!saved.ParseFromString((*info)->value)) {
      return api::internalError("checkpoint '{}info' does not parse", root_);
    }
    recovered.infoValue = saved.id().value();
  }
  auto frameworks = syncChildren(root_ + "frameworks");
  if (!frameworks) return frameworks.status();
  for (const auto& name : *frameworks) {
    auto entry = syncGet(root_ + "frameworks/" + name);
    if (!entry) return entry.status();
    if (!entry->has_value()) continue;
    v1::FrameworkInfo framework;
    if (!framework.ParseFromString((*entry)->value)) {
      recoveryErrors_->increment();
      continue;
    }
    recovered.frameworks[framework.id().value()] = framework;
  }
  auto frameworkKeys = syncChildren(root_ + "tasks");
  if (!frameworkKeys) return frameworkKeys.status();
  for (const auto& fw : *frameworkKeys) {
    auto taskKeys = syncChildren(root_ + "tasks/" + fw);
    if (!taskKeys) return taskKeys.status();
    for (const auto& name : *taskKeys) {
      const std::string key = fmt::format("{}tasks/{}/{}/", root_, fw, name);
      auto record = syncGet(key + "task");
      if (!record) return record.status();
      auto container = syncGet(key + "container");
      if (!container) return container.status();
      auto updates = syncChildren(key + "updates");
      if (!updates) return updates.status();
      auto task = std::make_shared<Task>();
      task->key = key;
      if (!record->has_value() || !task->record.ParseFromString((*record)->value)) {
        log_->warn("checkpoint '{}task' is missing or does not parse; dropping the task", key);
        recoveryErrors_->increment();
        continue;
      }
      task->frameworkId = task->record.framework_id().value();
      task->taskId = task->record.info().task_id().value();
      if (container->has_value()) {
        auto parsed = parseContainerJson((*container)->value);
        if (parsed) {
          task->container = std::move(parsed).value();
          task->sandbox = task->container->sandboxDirectory;
        } else {
          recoveryErrors_->increment();
        }
      }
      for (const auto& seq : *updates) {
        char* end = nullptr;
        const uint64_t number = std::strtoull(seq.c_str(), &end, 10);
        if (seq.empty() || *end != '\0') {
          log_->warn("ignoring checkpoint '{}updates/{}': not an update", key, seq);
          continue;
        }
        Pending pending;
        pending.key = fmt::format("{}updates/{}", key, seq);
        pending.durable = true;
        auto entry = syncGet(pending.key);
        if (!entry) return entry.status();
        if (!entry->has_value()) continue;
        if (!pending.update.ParseFromString((*entry)->value)) {
          recoveryErrors_->increment();
          continue;
        }
        task->updates.push_back(std::move(pending));
        task->nextSeq = std::max<uint64_t>(task->nextSeq, number + 1);
      }
      recovered.tasks.push_back(task);
    }
  }
  return api::Status::ok();
}

void AgentCore::install(Recovered recovered,
                        const std::map<std::string, api::RecoveredContainer>& containers) {
  if (!recovered.infoValue.empty()) {
    info_.mutable_id()->set_value(recovered.infoValue);
    std::lock_guard lock(idMutex_);
    publicId_ = recovered.infoValue;
  }
  frameworks_ = std::move(recovered.frameworks);
  for (const auto& task : recovered.tasks) {
    tasks_[{task->frameworkId, task->taskId}] = task;
  }
  for (const auto& task : recovered.tasks) {
    if (task->sandbox.empty() && task->record.has_container_id()) {
      task->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / task->frameworkId /
                       "executors" / task->taskId / "runs" / task->record.container_id())
                          .string();
    }
    const v1::TaskState state = task->record.state();
    if (isTerminal(state)) {
      task->ended = true;
      if (task->updates.empty()) forget(task);
      continue;
    }
    if (!task->container) {
      // The agent went down between the launch and its checkpoint: the containerizer's orphan
      // sweep killed whatever was started.
      task->ended = true;
      enqueueUpdate(task, v1::TASK_FAILED, "the agent restarted while the task was launching",
                    v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
      continue;
    }
    auto it = containers.find(task->container->containerId);
    if (!task->slot || it == containers.end()) {
      task->ended = true;
      enqueueUpdate(task, v1::TASK_FAILED,
                    fmt::format("containerizer '{}' does not know the task's container",
                                task->container->containerizer),
                    v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
      continue;
    }
    task->launched = true;
    if (it->second.ended) {
      recoveredTermination(task, *it->second.ended);
    } else {
      watch(task);
      // The agent went down after the launch's checkpoint but before TASK_RUNNING's.
      if (state == v1::TASK_STAGING || state == v1::TASK_STARTING) {
        enqueueUpdate(task, v1::TASK_RUNNING, "", std::nullopt);
      }
      // The agent went down while killing it: finish the kill.
      if (state == v1::TASK_KILLING) {
        task->killRequested = true;
        destroy(task);
      }
    }
  }
  refreshGauges();
}

void AgentCore::recoveredTermination(const TaskPtr& task,
                                     const api::ContainerTermination& termination) {
  if (termination.waitStatus || termination.limitation || termination.killed) {
    onTerminated(task, termination);
    return;
  }
  task->ended = true;
  enqueueUpdate(task, v1::TASK_FAILED, "the task ended while the agent was down",
                v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
}

// ==== master connection ======================================================================

void AgentCore::connect() {
  if (stopped_ || refused_) return;
  const uint64_t generation = ++generation_;
  auto result = std::make_shared<api::Result<uint16_t>>(api::unavailable("not asked yet"));
  // With a leader detector (zk://), the master to ask is whoever leads right now.
  auto resolved = std::make_shared<std::pair<std::string, uint16_t>>(masterHost_, masterPort_);
  std::weak_ptr<AgentCore> weak = weak_from_this();
  auto status = strand_->runBlocking(
      [result, resolved, resolve = options_.resolveMaster] {
        if (resolve) {
          auto leader = resolve();
          if (!leader) {
            *result = api::unavailable("no leading master is known yet");
            return;
          }
          auto parsed = parseMaster(*leader);
          if (!parsed) {
            *result = parsed.status();
            return;
          }
          *resolved = *parsed;
        }
        *result = discoverTransportPort(resolved->first, resolved->second);
      },
      [weak, generation, result, resolved] {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        if (generation == self->generation_) {
          self->masterHost_ = resolved->first;
          self->masterPort_ = resolved->second;
        }
        self->onDiscovered(generation, *result);
      });
  if (!status) scheduleReconnect();
}

void AgentCore::onDiscovered(uint64_t generation, api::Result<uint16_t> port) {
  if (generation != generation_) return;
  if (!port) {
    if (attempt_ == 0 || attempt_ % 10 == 0) {
      log_->warn("cannot find the master's transport at {}:{}: {}", masterHost_, masterPort_,
                 port.status().toString());
    }
    scheduleReconnect();
    return;
  }
  std::weak_ptr<AgentCore> weak = weak_from_this();
  net::TransportHandlers handlers;
  handlers.onConnected = [weak, generation](const net::ConnectionPtr&) {
    if (auto self = weak.lock(); self && !self->stopped_) self->onConnected(generation);
  };
  handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
      [weak, generation](const net::ConnectionPtr&, internal::Envelope envelope) {
        if (auto self = weak.lock(); self && !self->stopped_) {
          self->onEnvelope(generation, envelope);
        }
      });
  handlers.onClose = [weak, generation](const net::ConnectionPtr&, const api::Status& reason) {
    if (auto self = weak.lock(); self && !self->stopped_) self->onClosed(generation, reason);
  };
  client_ = std::make_unique<net::TransportClient>(*services_.runtime, *strand_, masterHost_, *port,
                                                   std::move(handlers), clientOptions_);
  client_->start();
  cancelTimer(watchdog_);
  watchdog_ = strand_->schedule(kConnectWatchdog, [weak, generation] {
    auto self = weak.lock();
    if (!self || self->stopped_ || generation != self->generation_ || self->connected_) return;
    self->log_->warn("no connection to the master's transport yet; asking for its port again");
    self->teardownClient();
    self->scheduleReconnect();
  });
}

void AgentCore::scheduleReconnect() {
  if (stopped_ || refused_) return;
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const double random = std::uniform_real_distribution<double>(0, 1)(rng);
  const auto delay = net::reconnectDelay(clientOptions_, std::min(attempt_, 20), random);
  ++attempt_;
  std::weak_ptr<AgentCore> weak = weak_from_this();
  cancelTimer(reconnectTimer_);
  reconnectTimer_ = strand_->schedule(delay, [weak] {
    if (auto self = weak.lock(); self && !self->stopped_) self->connect();
  });
}

void AgentCore::teardownClient() {
  ++generation_;
  connected_ = false;
  registered_ = false;
  gauges_->registered = 0;
  cancelTimer(watchdog_);
  if (!client_) return;
  // TransportClient::stop() waits for its socket work: not on our strand (an io thread). The
  // strand is kept alive until the client no longer calls into it.
  std::shared_ptr<net::TransportClient> old(std::move(client_));
  auto strand = strand_;
  auto status = strand_->runBlocking([old, strand] { old->stop(); }, [] {});
  if (!status) old->stop();
}

void AgentCore::onConnected(uint64_t generation) {
  if (generation != generation_) return;
  connected_ = true;
  cancelTimer(watchdog_);
  internal::Envelope envelope;
  if (!info_.has_id()) {
    auto* message = envelope.mutable_register_agent();
    *message->mutable_agent_info() = info_;
    message->set_version(kAgentVersion);
    message->set_pid(pid());
  } else {
    auto* message = envelope.mutable_reregister_agent();
    *message->mutable_agent_info() = info_;
    message->set_version(kAgentVersion);
    message->set_pid(pid());
    std::set<std::string> frameworkIds;
    for (const auto& [key, task] : tasks_) {
      if (task->frameworkGone) continue;
      if (isTerminal(task->record.state()) && task->updates.empty()) continue;
      *message->add_tasks() = task->record;
      frameworkIds.insert(task->frameworkId);
    }
    for (const auto& id : frameworkIds) {
      auto it = frameworks_.find(id);
      if (it != frameworks_.end()) *message->add_frameworks() = it->second;
    }
  }
  log_->info("connected to the master; {}", info_.has_id() ? "re-registering" : "registering");
  send(envelope);
}

void AgentCore::onClosed(uint64_t generation, const api::Status& reason) {
  if (generation != generation_) return;
  log_->warn("lost the master's transport connection: {}", reason.toString());
  teardownClient();
  scheduleReconnect();
}

bool AgentCore::send(const internal::Envelope& envelope) {
  return client_ && client_->send(envelope);
}

void AgentCore::onEnvelope(uint64_t generation, const internal::Envelope& envelope) {
  if (generation != generation_) return;
  switch (envelope.message_case()) {
    case internal::Envelope::kAgentRegistered:
      onRegistered(envelope.agent_registered());
      break;
    case internal::Envelope::kAgentRefused:
      log_->error("the master refused this agent: {}", envelope.agent_refused().message());
      refused_ = true;
      teardownClient();
      if (options_.onRefused) options_.onRefused(envelope.agent_refused().message());
      break;
    case internal::Envelope::kRunTask:
      if (registered_) runTask(envelope.run_task());
      break;
    case internal::Envelope::kKillTask:
      if (registered_) killTask(envelope.kill_task());
      break;
    case internal::Envelope::kShutdownFramework:
      if (registered_) shutdownFramework(envelope.shutdown_framework().framework_id().value());
      break;
    case internal::Envelope::kStatusUpdateAcknowledgement:
      onAcknowledgement(envelope.status_update_acknowledgement());
      break;
    case internal::Envelope::kFrameworkToExecutor:
      // Command tasks have no executor that listens.
      invalidFrameworkMessages_->increment();
      break;
    case internal::Envelope::kReconcileTasks:
      if (registered_) reconcile(envelope.reconcile_tasks());
      break;
    default:
      log_->warn("unexpected message {} from the master",
                 static_cast<int>(envelope.message_case()));
      break;
  }
}

void AgentCore::onRegistered(const internal::AgentRegistered& registered) {
  const std::string& id = registered.agent_id().value();
  if (id.empty()) {
    log_->error("the master registered this agent without an id");
    return;
  }
  if (!info_.has_id()) {
    info_.mutable_id()->set_value(id);
    {
      std::lock_guard lock(idMutex_);
      publicId_ = id;
    }
    storeSet(root_ + "info", info_.SerializeAsString());
    std::error_code error;
    fs::create_directories(sandboxRoot() / id, error);
    log_->info("registered with the master as agent '{}'", id);
  } else if (info_.id().value() != id) {
    log_->error("the master re-registered this agent as '{}', but it is '{}'", id,
                info_.id().value());
  } else {
    log_->info("re-registered with the master as agent '{}'", id);
  }
  registered_ = true;
  attempt_ = 0;
  masterHostname_ = registered.master_info().hostname();
  gauges_->registered = 1;
  for (const auto& [key, task] : tasks_) {
    task->backoff = options_.statusUpdateRetryInterval;
    sendHead(task);
  }
}

// ==== tasks ==================================================================================

AgentCore::TaskPtr AgentCore::findTask(const std::string& frameworkId,
                                       const std::string& taskId) const {
  auto it = tasks_.find({frameworkId, taskId});
  return it == tasks_.end() ? nullptr : it->second;
}

void AgentCore::runTask(const internal::RunTask& message) {
  const std::string frameworkId = message.framework().id().value();
  const std::string taskId = message.task().task_id().value();
  if (!safePathComponent(frameworkId) || !safePathComponent(taskId)) {
    log_->warn("dropping task '{}' of framework '{}': bad id", taskId, frameworkId);
    sendUnreliable(frameworkId, taskId, v1::TASK_ERROR,
                   "task and framework ids must be non-empty and contain no '/'",
                   v1::TaskStatus::REASON_TASK_INVALID);
    return;
  }
  if (findTask(frameworkId, taskId)) {
    log_->warn("ignoring a second launch of task '{}' of framework '{}'", taskId, frameworkId);
    return;
  }
  frameworks_[frameworkId] = message.framework();
  completedFrameworks_.erase(frameworkId);
  storeSet(root_ + "frameworks/" + keySegment(frameworkId),
           message.framework().SerializeAsString());

  auto task = std::make_shared<Task>();
  task->frameworkId = frameworkId;
  task->taskId = taskId;
  task->key = root_ + "tasks/" + keySegment(frameworkId) + "/" + keySegment(taskId) + "/";
  task->backoff = options_.statusUpdateRetryInterval;
  *task->record.mutable_info() = message.task();
  *task->record.mutable_info()->mutable_agent_id() = info_.id();
  *task->record.mutable_framework_id() = message.framework().id();
  task->record.set_state(v1::TASK_STAGING);
  if (message.has_role()) task->record.set_role(message.role());
  const std::string containerId = uuidText(randomBytes(16));
  task->record.set_container_id(containerId);
  task->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / frameworkId / "executors" /
                   taskId / "runs" / containerId)
                      .string();
  task->statuses.emplace_back(v1::TASK_STAGING, nowSeconds());
  tasks_[{frameworkId, taskId}] = task;
  checkpointTask(task);
  refreshGauges();
  log_->info("launching task '{}' of framework '{}' in container '{}'", taskId, frameworkId,
             containerId);

  std::error_code error;
  fs::create_directories(task->sandbox, error);
  if (!error) {
    fs::permissions(task->sandbox, fs::perms(0755), error);
  }
  if (error) {
    task->ended = true;
    enqueueUpdate(task, v1::TASK_FAILED,
                  fmt::format("cannot create the sandbox '{}': {}", task->sandbox, error.message()),
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }

  auto config = std::make_shared<api::ContainerConfig>();
  const v1::TaskInfo& info = message.task();
  config->containerId = containerId;
  config->agentId = info_.id().value();
  config->frameworkId = frameworkId;
  config->executorId = taskId;
  config->taskId = taskId;
  config->sandboxDirectory = task->sandbox;
  if (info.has_command()) {
    config->command = info.command();
  } else if (info.has_executor() && info.executor().has_command()) {
    config->command = info.executor().command();
  }
  if (info.has_container()) config->container = info.container();
  if (auto resources = api::Resources::fromProto(info.resources()); resources) {
    config->resources = std::move(resources).value();
  }
  if (config->command.has_user()) {
    config->user = config->command.user();
  } else if (!message.framework().user().empty()) {
    config->user = message.framework().user();
  }
  config->environment = {
      {"MESOS_SANDBOX", task->sandbox},
      {"MESOS_DIRECTORY", task->sandbox},
      {"MESOS_TASK_ID", taskId},
      {"MESOS_FRAMEWORK_ID", frameworkId},
      {"MESOS_EXECUTOR_ID", taskId},
      {"MESOS_AGENT_ID", info_.id().value()},
      {"MESOS_SLAVE_ID", info_.id().value()},
      {"MESOS_CONTAINER_ID", containerId},
      {"MESOS_AGENT_ENDPOINT", fmt::format("{}:{}", options_.ip, options_.httpPort)},
  };
  if (!info.has_command() && !(info.has_executor() && info.executor().has_command())) {
    task->ended = true;
    enqueueUpdate(task, v1::TASK_FAILED, "the task has no command",
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  enqueueUpdate(task, v1::TASK_STARTING, "", std::nullopt);
  task->launching = true;
  chooseContainerizer(task, config, 0);
}

void AgentCore::chooseContainerizer(const TaskPtr& task,
                                    const std::shared_ptr<api::ContainerConfig>& config,
                                    size_t index) {
  if (task->killRequested || task->frameworkGone) {
    task->launching = false;
    task->ended = true;
    if (task->frameworkGone) {
      forget(task);
    } else {
      enqueueUpdate(task, v1::TASK_KILLED, "the task was killed before it was launched",
                    v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH, v1::TaskStatus::SOURCE_AGENT);
    }
    return;
  }
  if (index >= services_.containerizers.size()) {
    task->launching = false;
    task->ended = true;
    enqueueUpdate(task, v1::TASK_FAILED, "no containerizer supports the task",
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  onContainerizer<bool>(
      index,
      [config](api::Containerizer& c, std::function<void(bool)> done) {
        c.supports(*config, std::move(done));
      },
      [task, config, index](AgentCore& self, bool supported) {
        if (supported) {
          self.launch(task, config, index);
        } else {
          self.chooseContainerizer(task, config, index + 1);
        }
      });
}

void AgentCore::launch(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                       size_t slot) {
  if (task->killRequested || task->frameworkGone) {
    chooseContainerizer(task, config, slot);  // reports the kill
    return;
  }
  task->slot = slot;
  using Answer = api::Result<api::ContainerCheckpoint>;
  onContainerizer<Answer>(
      slot,
      [config](api::Containerizer& c, std::function<void(Answer)> done) {
        c.launch(*config, std::move(done));
      },
      [task](AgentCore& self, Answer result) { self.onLaunched(task, std::move(result)); });
}

void AgentCore::onLaunched(const TaskPtr& task, api::Result<api::ContainerCheckpoint> result) {
  task->launching = false;
  if (!result) {
    task->ended = true;
    log_->warn("task '{}' of framework '{}' failed to launch: {}", task->taskId, task->frameworkId,
               result.status().toString());
    if (task->frameworkGone) {
      forget(task);
      return;
    }
    enqueueUpdate(task, task->killRequested ? v1::TASK_KILLED : v1::TASK_FAILED,
                  result.status().message(), v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED,
                  v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  task->container = std::move(result).value();
  if (task->container->containerizer.empty()) {
    task->container->containerizer = services_.containerizers[*task->slot].name;
  }
  if (task->container->sandboxDirectory.empty()) {
    task->container->sandboxDirectory = task->sandbox;
  }
  task->launched = true;
  // TASK_RUNNING only once the container's checkpoint is durable: an agent killed in between
  // would otherwise come back without it and destroy a running task's isolation as an orphan's.
  // A termination that arrives meanwhile waits for it too, so RUNNING still comes first.
  const bool running = !task->killRequested && !task->frameworkGone;
  task->checkpointing = true;
  storeSet(task->key + "container", containerJson(*task->container), [this, task, running] {
    task->checkpointing = false;
    if (running && !task->frameworkGone) enqueueUpdate(task, v1::TASK_RUNNING, "", std::nullopt);
    if (task->endedEarly) {
      auto result = std::move(*task->endedEarly);
      task->endedEarly.reset();
      onTerminated(task, std::move(result));
    }
  });
  watch(task);
  if (!running) destroy(task);
}

void AgentCore::watch(const TaskPtr& task) {
  const std::string id = task->container->containerId;
  using Answer = api::Result<api::ContainerTermination>;
  onContainerizer<Answer>(
      *task->slot,
      [id](api::Containerizer& c, std::function<void(Answer)> done) {
        c.wait(id, std::move(done));
      },
      [task](AgentCore& self, Answer result) { self.onTerminated(task, std::move(result)); });
  refreshGauges();
}

void AgentCore::onTerminated(const TaskPtr& task, api::Result<api::ContainerTermination> result) {
  if (task->ended) return;
  if (task->checkpointing) {
    task->endedEarly = std::move(result);  // after TASK_RUNNING
    return;
  }
  task->ended = true;
  refreshGauges();
  if (task->frameworkGone) {
    forget(task);
    return;
  }
  if (!result) {
    enqueueUpdate(task, v1::TASK_FAILED,
                  fmt::format("the container is gone: {}", result.status().message()),
                  v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  const api::ContainerTermination& termination = *result;
  log_->info("task '{}' of framework '{}' ended: {}", task->taskId, task->frameworkId,
             termination.message);
  if (termination.killed || task->killRequested) {
    enqueueUpdate(task, v1::TASK_KILLED,
                  termination.message.empty() ? "the task was killed" : termination.message,
                  std::nullopt);
  } else if (termination.limitation) {
    enqueueUpdate(task, v1::TASK_FAILED, termination.limitation->message,
                  termination.limitation->reason);
  } else if (!termination.waitStatus) {
    enqueueUpdate(
        task, v1::TASK_FAILED,
        termination.message.empty() ? "the task ended with an unknown status" : termination.message,
        v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
  } else if (WIFEXITED(*termination.waitStatus) && WEXITSTATUS(*termination.waitStatus) == 0) {
    enqueueUpdate(
        task, v1::TASK_FINISHED,
        termination.message.empty() ? "Command exited with status 0" : termination.message,
        std::nullopt);
  } else {
    enqueueUpdate(task, v1::TASK_FAILED,
                  termination.message.empty()
                      ? fmt::format("Command ended with wait status {}", *termination.waitStatus)
                      : termination.message,
                  std::nullopt);
  }
}

void AgentCore::killTask(const internal::KillTask& message) {
  const std::string frameworkId = message.framework_id().value();
  const std::string taskId = message.task_id().value();
  auto task = findTask(frameworkId, taskId);
  if (!task || task->frameworkGone) {
    log_->warn("asked to kill unknown task '{}' of framework '{}'", taskId, frameworkId);
    sendUnreliable(frameworkId, taskId, v1::TASK_LOST, "the task is unknown to the agent",
                   v1::TaskStatus::REASON_TASK_UNKNOWN);
    return;
  }
  if (isTerminal(task->record.state()) || task->ended) return;
  task->killRequested = true;
  if (message.has_kill_policy() && message.kill_policy().has_grace_period()) {
    task->killGrace = std::chrono::nanoseconds(message.kill_policy().grace_period().nanoseconds());
  } else if (task->record.info().has_kill_policy() &&
             task->record.info().kill_policy().has_grace_period()) {
    task->killGrace =
        std::chrono::nanoseconds(task->record.info().kill_policy().grace_period().nanoseconds());
  }
  log_->info("killing task '{}' of framework '{}'", taskId, frameworkId);
  // Launching: onLaunched() destroys it; choosing: chooseContainerizer() reports it.
  if (!task->launched) return;
  // Mesos's command executor says TASK_KILLING first to frameworks that understand it.
  auto framework = frameworks_.find(frameworkId);
  if (framework != frameworks_.end() && task->record.state() != v1::TASK_KILLING) {
    for (const auto& capability : framework->second.capabilities()) {
      if (capability.type() == v1::FrameworkInfo::Capability::TASK_KILLING_STATE) {
        enqueueUpdate(task, v1::TASK_KILLING, "", std::nullopt);
        break;
      }
    }
  }
  destroy(task);
}

void AgentCore::destroy(const TaskPtr& task) {
  if (!task->launched || task->ended || !task->slot) return;
  const std::string id = task->container->containerId;
  const runtime::Duration grace = task->killGrace.value_or(options_.killGracePeriod);
  onContainerizer<api::Status>(
      *task->slot,
      [id, grace](api::Containerizer& c, std::function<void(api::Status)> done) {
        c.destroy(id, grace, std::move(done));
      },
      [id](AgentCore& self, const api::Status& status) {
        if (!status) self.log_->warn("destroying container '{}': {}", id, status.toString());
      });
}

void AgentCore::shutdownFramework(const std::string& frameworkId) {
  log_->info("shutting down framework '{}'", frameworkId);
  std::vector<TaskPtr> tasks;
  for (const auto& [key, task] : tasks_) {
    if (task->frameworkId == frameworkId) tasks.push_back(task);
  }
  for (const auto& task : tasks) {
    task->frameworkGone = true;
    task->killRequested = true;
    dropUpdates(task);
    if (task->launched && !task->ended) {
      destroy(task);
    } else if (!task->launching) {
      task->ended = true;
      forget(task);
    }
  }
  if (tasks.empty()) {
    auto it = frameworks_.find(frameworkId);
    if (it != frameworks_.end()) {
      storeRemove(root_ + "frameworks/" + keySegment(frameworkId));
      frameworks_.erase(it);
    }
  }
}

void AgentCore::reconcile(const internal::ReconcileTasks& message) {
  for (const auto& taskId : message.task_ids()) {
    if (!findTask(message.framework_id().value(), taskId.value())) {
      sendUnreliable(message.framework_id().value(), taskId.value(), v1::TASK_LOST,
                     "the task is unknown to the agent", v1::TaskStatus::REASON_RECONCILIATION);
    }
  }
}

void AgentCore::checkpointTask(const TaskPtr& task) {
  storeSet(task->key + "task", task->record.SerializeAsString());
}

void AgentCore::enqueueUpdate(const TaskPtr& task, v1::TaskState state, std::string message,
                              std::optional<v1::TaskStatus::Reason> reason,
                              v1::TaskStatus::Source source) {
  if (isTerminal(task->record.state())) return;  // nothing follows a terminal update
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(task->taskId);
  status.set_state(state);
  if (!message.empty()) status.set_message(std::move(message));
  status.set_source(source);
  if (reason) status.set_reason(*reason);
  *status.mutable_agent_id() = info_.id();
  status.mutable_executor_id()->set_value(task->taskId);
  status.set_timestamp(nowSeconds());
  status.set_uuid(randomBytes(16));

  task->record.set_state(state);
  *task->record.mutable_status() = status;
  task->statuses.emplace_back(state, status.timestamp());
  checkpointTask(task);
  validUpdates_->increment();
  switch (state) {
    case v1::TASK_FINISHED:
      finished_->increment();
      break;
    case v1::TASK_FAILED:
      failed_->increment();
      break;
    case v1::TASK_KILLED:
      killed_->increment();
      break;
    case v1::TASK_LOST:
      lost_->increment();
      break;
    default:
      break;
  }
  refreshGauges();

  Pending pending;
  pending.key = fmt::format("{}updates/{:020}", task->key, task->nextSeq++);
  *pending.update.mutable_framework_id() = task->record.framework_id();
  *pending.update.mutable_status() = status;
  pending.update.set_latest_state(state);
  std::string value = pending.update.SerializeAsString();
  const std::string key = pending.key;
  task->updates.push_back(std::move(pending));
  storeSet(key, std::move(value), [this, task, key] {
    for (auto& queued : task->updates) {
      if (queued.key == key) queued.durable = true;
    }
    if (!task->updates.empty() && task->updates.front().key == key) {
      task->backoff = options_.statusUpdateRetryInterval;
      sendHead(task);
    }
  });
}

void AgentCore::sendUnreliable(const std::string& frameworkId, const std::string& taskId,
                               v1::TaskState state, std::string message,
                               v1::TaskStatus::Reason reason) {
  if (!registered_) return;
  internal::Envelope envelope;
  auto* update = envelope.mutable_status_update();
  update->mutable_framework_id()->set_value(frameworkId);
  auto* status = update->mutable_status();
  status->mutable_task_id()->set_value(taskId);
  status->set_state(state);
  status->set_message(std::move(message));
  status->set_reason(reason);
  status->set_source(v1::TaskStatus::SOURCE_AGENT);
  *status->mutable_agent_id() = info_.id();
  status->set_timestamp(nowSeconds());
  update->set_latest_state(state);
  send(envelope);
}

void AgentCore::sendHead(const TaskPtr& task) {
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  if (task->updates.empty() || !task->updates.front().durable) return;
  if (registered_) {
    internal::Envelope envelope;
    *envelope.mutable_status_update() = task->updates.front().update;
    envelope.mutable_status_update()->set_latest_state(task->record.state());
    send(envelope);
  }
  armRetry(task);
}

void AgentCore::armRetry(const TaskPtr& task) {
  if (task->backoff <= runtime::Duration::zero()) {
    task->backoff = options_.statusUpdateRetryInterval;
  }
  std::weak_ptr<AgentCore> weak = weak_from_this();
  std::weak_ptr<Task> weakTask = task;
  const std::string key = task->updates.front().key;
  task->retry = strand_->schedule(task->backoff, [weak, weakTask, key] {
    auto self = weak.lock();
    auto task = weakTask.lock();
    if (!self || !task || self->stopped_) return;
    if (task->updates.empty() || task->updates.front().key != key) return;
    task->backoff = std::min<runtime::Duration>(task->backoff * 2, kMaxRetryInterval);
    self->sendHead(task);
  });
}

void AgentCore::onAcknowledgement(const internal::StatusUpdateAcknowledgement& ack) {
  auto task = findTask(ack.framework_id().value(), ack.task_id().value());
  if (!task || task->updates.empty() ||
      task->updates.front().update.status().uuid() != ack.uuid()) {
    log_->warn(
        "ignoring an acknowledgement for task '{}' of framework '{}' that matches no "
        "pending update",
        ack.task_id().value(), ack.framework_id().value());
    invalidUpdates_->increment();
    return;
  }
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  storeRemove(task->updates.front().key);
  task->updates.pop_front();
  if (!task->updates.empty()) {
    task->backoff = options_.statusUpdateRetryInterval;
    sendHead(task);
    return;
  }
  if (isTerminal(task->record.state())) forget(task);
}

void AgentCore::dropUpdates(const TaskPtr& task) {
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  for (const auto& pending : task->updates) storeRemove(pending.key);
  task->updates.clear();
}

void AgentCore::forget(const TaskPtr& task) {
  dropUpdates(task);
  storeRemove(task->key + "task");
  storeRemove(task->key + "container");
  tasks_.erase({task->frameworkId, task->taskId});
  completed_.push_back({task->frameworkId, executorJson(*task, true)});
  while (completed_.size() > kMaxCompletedExecutors) completed_.pop_front();
  const bool more = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& entry) {
    return entry.second->frameworkId == task->frameworkId;
  });
  if (!more) {
    auto it = frameworks_.find(task->frameworkId);
    if (it != frameworks_.end()) {
      completedFrameworks_[it->first] = it->second;
      frameworks_.erase(it);
    }
    storeRemove(root_ + "frameworks/" + keySegment(task->frameworkId));
  }
  refreshGauges();
}

void AgentCore::refreshGauges() {
  double staging = 0, starting = 0, running = 0, executors = 0;
  for (const auto& [key, task] : tasks_) {
    switch (task->record.state()) {
      case v1::TASK_STAGING:
        ++staging;
        break;
      case v1::TASK_STARTING:
        ++starting;
        break;
      case v1::TASK_RUNNING:
        ++running;
        break;
      default:
        break;
    }
    if (task->launched && !task->ended) ++executors;
  }
  gauges_->staging = staging;
  gauges_->starting = starting;
  gauges_->running = running;
  gauges_->executorsRunning = executors;
}

// ==== HTTP ===================================================================================

std::string AgentCore::pid() const {
  std::string name = options_.routePrefix.empty() ? "slave(1)" : options_.routePrefix.substr(1);
  return fmt::format("{}@{}:{}", name, options_.ip, options_.httpPort);
}

api::Status AgentCore::addRoutes() {
  std::vector<std::string> prefixes;
  if (options_.routePrefix.empty()) {
    prefixes = {"", "/slave(1)"};
  } else {
    prefixes = {options_.routePrefix};
  }
  std::weak_ptr<AgentCore> weak = weak_from_this();
  auto keep = strand_;
  using Handler = std::function<void(AgentCore&, const api::HttpRequest&, api::HttpResponder)>;
  auto handler = [weak, keep](const Handler& fn) -> api::HttpHandler {
    return [weak, keep, fn](const api::HttpRequest& request, api::HttpResponder respond) {
      auto self = weak.lock();
      if (!self || self->stopped_) {
        respond(api::HttpResponse::error(503, "the agent is stopping"));
        return;
      }
      fn(*self, request, std::move(respond));
    };
  };
  auto files = [](api::HttpResponse (*serve)(const fs::path&, const api::HttpRequest&)) {
    return [serve](AgentCore& self, const api::HttpRequest& request,
                   const api::HttpResponder& respond) {
      auto root = self.sandboxRoot();
      auto status = self.strand_->runBlocking(
          [root, request, respond, serve] { respond(serve(root, request)); }, [] {});
      if (!status) respond(api::HttpResponse::error(503, status.message()));
    };
  };
  const std::vector<std::pair<std::string, Handler>> routes = {
      {"/state",
       [](AgentCore& self, const api::HttpRequest&, const api::HttpResponder& respond) {
         respond(api::HttpResponse::json(200, self.stateJson()));
       }},
      {"/state.json",
       [](AgentCore& self, const api::HttpRequest&, const api::HttpResponder& respond) {
         respond(api::HttpResponse::json(200, self.stateJson()));
       }},
      {"/monitor/statistics",
       [](AgentCore& self, const api::HttpRequest&, api::HttpResponder respond) {
         self.monitorStatistics(std::move(respond));
       }},
      {"/monitor/statistics.json",
       [](AgentCore& self, const api::HttpRequest&, api::HttpResponder respond) {
         self.monitorStatistics(std::move(respond));
       }},
      {"/files/browse", files(&filesBrowse)},
      {"/files/browse.json", files(&filesBrowse)},
      {"/files/read", files(&filesRead)},
      {"/files/read.json", files(&filesRead)},
      {"/files/download", files(&filesDownload)},
      {"/files/download.json", files(&filesDownload)},
      {"/files/debug",
       [](AgentCore& self, const api::HttpRequest&, const api::HttpResponder& respond) {
         respond(api::HttpResponse::json(200, self.debugJson()));
       }},
  };
  for (const auto& prefix : prefixes) {
    for (const auto& [path, fn] : routes) {
      auto added = services_.router->addRoute("GET", prefix + path, strand_.get(), handler(fn));
      if (!added) return added.withContext("adding the agent's route '{}{}'", prefix, path);
    }
  }
  return api::Status::ok();
}

std::string AgentCore::taskJson(const Task& task) const {
  const v1::TaskInfo& info = task.record.info();
  std::string statuses = "[";
  for (size_t i = 0; i < task.statuses.size(); ++i) {
    if (i > 0) statuses += ',';
    statuses +=
        fmt::format("{{\"state\":{},\"timestamp\":{}}}",
                    jsonQuote(v1::TaskState_Name(task.statuses[i].first)), task.statuses[i].second);
  }
  statuses += "]";
  api::Resources resources;
  if (auto parsed = api::Resources::fromProto(info.resources()); parsed) resources = *parsed;
  return fmt::format(
      "{{\"id\":{},\"name\":{},\"framework_id\":{},\"executor_id\":\"\",\"slave_id\":{},"
      "\"state\":{},\"resources\":{},\"role\":{},\"statuses\":{}}}",
      jsonQuote(task.taskId), jsonQuote(info.name()), jsonQuote(task.frameworkId),
      jsonQuote(info_.id().value()), jsonQuote(v1::TaskState_Name(task.record.state())),
      resourcesObjectJson(resources),
      jsonQuote(task.record.role().empty() ? "*" : task.record.role()), statuses);
}

std::string AgentCore::executorJson(const Task& task, bool completed) const {
  const v1::TaskInfo& info = task.record.info();
  api::Resources resources;
  if (auto parsed = api::Resources::fromProto(info.resources()); parsed) resources = *parsed;
  const std::string command = info.has_command() ? info.command().value() : std::string();
  const std::string tasks = taskJson(task);
  return fmt::format(
      "{{\"id\":{},\"name\":{},\"source\":{},\"container\":{},\"directory\":{},"
      "\"resources\":{},\"framework_id\":{},\"tasks\":[{}],\"queued_tasks\":[],"
      "\"completed_tasks\":[{}]}}",
      jsonQuote(task.taskId),
      jsonQuote(
          fmt::format("Command Executor (Task: {}) (Command: sh -c '{}')", task.taskId, command)),
      jsonQuote(task.taskId), jsonQuote(task.record.container_id()), jsonQuote(task.sandbox),
      resourcesObjectJson(resources), jsonQuote(task.frameworkId), completed ? "" : tasks,
      completed ? tasks : "");
}

std::string AgentCore::stateJson() const {
  auto frameworkJson = [&](const std::string& id, const v1::FrameworkInfo& info) {
    std::string executors;
    for (const auto& [key, task] : tasks_) {
      if (task->frameworkId != id) continue;
      if (!executors.empty()) executors += ',';
      executors += executorJson(*task, false);
    }
    std::string completedExecutors;
    for (const auto& done : completed_) {
      if (done.frameworkId != id) continue;
      if (!completedExecutors.empty()) completedExecutors += ',';
      completedExecutors += done.json;
    }
    std::string role = info.roles_size() > 0 ? info.roles(0) : std::string("*");
    return fmt::format(
        "{{\"id\":{},\"name\":{},\"user\":{},\"hostname\":{},\"role\":{},\"checkpoint\":{},"
        "\"executors\":[{}],\"completed_executors\":[{}]}}",
        jsonQuote(id), jsonQuote(info.name()), jsonQuote(info.user()), jsonQuote(info.hostname()),
        jsonQuote(role), info.checkpoint() ? "true" : "false", executors, completedExecutors);
  };
  std::string frameworks;
  std::set<std::string> live;
  for (const auto& [key, task] : tasks_) live.insert(task->frameworkId);
  for (const auto& id : live) {
    auto it = frameworks_.find(id);
    v1::FrameworkInfo info = it == frameworks_.end() ? v1::FrameworkInfo() : it->second;
    if (!frameworks.empty()) frameworks += ',';
    frameworks += frameworkJson(id, info);
  }
  std::string completedFrameworks;
  for (const auto& [id, info] : completedFrameworks_) {
    if (live.count(id)) continue;
    if (!completedFrameworks.empty()) completedFrameworks += ',';
    completedFrameworks += frameworkJson(id, info);
  }
  std::string flags = "{";
  if (options_.flags) {
    bool first = true;
    for (const auto& [name, value] : options_.flags()) {
      if (!first) flags += ',';
      first = false;
      flags += jsonQuote(name) + ":" + jsonQuote(value);
    }
  }
  flags += "}";
  return fmt::format(
      "{{\"version\":{},\"start_time\":{},\"id\":{},\"pid\":{},\"hostname\":{},\"port\":{},"
      "\"resources\":{},\"attributes\":{},\"master_hostname\":{},\"registered\":{},"
      "\"flags\":{},\"frameworks\":[{}],\"completed_frameworks\":[{}]}}",
      jsonQuote(kAgentVersion), startTime_, jsonQuote(info_.id().value()), jsonQuote(pid()),
      jsonQuote(info_.hostname()), info_.port(), resourcesObjectJson(resources_),
      attributesObjectJson(info_.attributes()), jsonQuote(masterHostname_),
      registered_ ? "true" : "false", flags, frameworks, completedFrameworks);
}

std::string AgentCore::debugJson() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, task] : tasks_) {
    if (task->sandbox.empty()) continue;
    if (!first) out += ',';
    first = false;
    out += jsonQuote(task->sandbox) + ":" + jsonQuote(task->sandbox);
  }
  return out + "}";
}

void AgentCore::monitorStatistics(api::HttpResponder respond) {
  struct Gather {
    std::vector<std::string> entries;
    size_t waiting = 0;
    api::HttpResponder respond;
    void finish() {
      std::string out = "[";
      bool first = true;
      for (const auto& entry : entries) {
        if (entry.empty()) continue;
        if (!first) out += ',';
        first = false;
        out += entry;
      }
      respond(api::HttpResponse::json(200, out + "]"));
    }
  };
  auto gather = std::make_shared<Gather>();
  gather->respond = std::move(respond);
  std::vector<TaskPtr> running;
  for (const auto& [key, task] : tasks_) {
    if (task->launched && !task->ended && task->slot && task->container) running.push_back(task);
  }
  if (running.empty()) {
    gather->finish();
    return;
  }
  gather->entries.resize(running.size());
  gather->waiting = running.size();
  for (size_t i = 0; i < running.size(); ++i) {
    const TaskPtr& task = running[i];
    const std::string id = task->container->containerId;
    using Answer = api::Result<v1::ResourceStatistics>;
    onContainerizer<Answer>(
        *task->slot,
        [id](api::Containerizer& c, std::function<void(Answer)> done) {
          c.usage(id, std::move(done));
        },
        [gather, task, i](AgentCore&, Answer result) {
          if (result) {
            gather->entries[i] = fmt::format(
                "{{\"executor_id\":{},\"executor_name\":{},\"framework_id\":{},\"source\":{},"
                "\"statistics\":{}}}",
                jsonQuote(task->taskId),
                jsonQuote(fmt::format("Command Executor (Task: {})", task->taskId)),
                jsonQuote(task->frameworkId), jsonQuote(task->taskId),
                net::messageToV1Json(*result));
          }
          if (--gather->waiting == 0) gather->finish();
        });
  }
}

// ==== Agent ==================================================================================

struct Agent::Impl {
  std::shared_ptr<AgentCore> core;
};

Agent::Agent(AgentServices services, AgentOptions options)
    : impl_(std::make_unique<Impl>(
          Impl{std::make_shared<AgentCore>(std::move(services), std::move(options))})) {}

Agent::~Agent() { stop(); }

api::Status Agent::start() { return impl_->core->start(); }

void Agent::stop() { impl_->core->stop(); }

void Agent::masterChanged() { impl_->core->reconnectNow(); }

std::string Agent::id() const { return impl_->core->id(); }

}  // namespace tessera::kernel::agent

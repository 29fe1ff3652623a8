#include "kernel/cli/ha_master.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/UUIDGenerator.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <sstream>

#include "kernel/runtime/logging.h"

namespace tessera::kernel::cli {

namespace {

std::shared_ptr<spdlog::logger> log() { return runtime::logger("master"); }

// Paths a follower answers itself; everything else is redirected to the leader.
constexpr const char* kStatePaths[] = {"/state", "/state.json", "/master/state",
                                       "/master/state.json"};
constexpr const char* kRedirectPaths[] = {"/master/redirect", "/redirect"};

[[noreturn]] void exitForSupervisor(const std::string& reason) {
  log()->critical("stepping down: {}; exiting so a supervisor restarts this master", reason);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) { logger->flush(); });
  std::fflush(nullptr);
  ::_exit(1);
}

}  // namespace

void addHaFlags(runtime::FlagSet& flags, HaFlags& ha) {
  flags.add("zk", &ha.zk,
            "ZooKeeper URL for leader election and (unless --registry=in_memory) the registry: "
            "zk://host:port,.../path, "
            "zk://user:password@host:port,.../path or file:///path holding one");
  flags.add("quorum", &ha.quorum,
            "Masters that must agree for the registry (Mesos's replicated log). With --zk the "
            "registry lives in ZooKeeper, which keeps its own quorum: checked to be >= 1, "
            "nothing more");
  flags.add("zk_session_timeout", &ha.zkSessionTimeout,
            "ZooKeeper session timeout: a leader that cannot reach ZooKeeper for about this long "
            "steps down, and the others elect a new one");
}

api::Result<zookeeper::ZkUrl> validateHaFlags(const HaFlags& ha) {
  auto url = zookeeper::parseZkUrl(ha.zk);
  if (!url) return url.status().withContext("flag '--zk'");
  if (ha.quorum < 0) {
    return api::invalidArgument("flag '--quorum' must be at least 1, got {}", ha.quorum);
  }
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(ha.zkSessionTimeout);
  if (timeout < std::chrono::seconds(1) || timeout > std::chrono::minutes(10)) {
    return api::invalidArgument("flag '--zk_session_timeout' must be between 1secs and 10mins");
  }
  return url;
}

HaMaster::HaMaster(Daemon& daemon, const CommonFlags& common, const MasterFlags& flags,
                   zookeeper::ZkUrl url, std::chrono::milliseconds sessionTimeout)
    : daemon_(daemon),
      common_(common),
      flags_(flags),
      url_(std::move(url)),
      sessionTimeout_(sessionTimeout),
      executor_(daemon.runtime().makeExecutor()) {}

api::Result<std::unique_ptr<HaMaster>> HaMaster::start(Daemon& daemon, const CommonFlags& common,
                                                       const MasterFlags& flags,
                                                       zookeeper::ZkUrl url,
                                                       std::chrono::milliseconds sessionTimeout) {
  auto ha = std::unique_ptr<HaMaster>(
      new HaMaster(daemon, common, flags, std::move(url), sessionTimeout));
  auto* self = ha.get();
  self->self_.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  self->self_.ip = common.ip == "0.0.0.0" ? "127.0.0.1" : common.ip;
  self->self_.hostname = common.hostname.value_or(self->self_.ip);
  self->self_.version = versionInfo().version;

  if (flags.registry == "in_memory") {
    // As Mesos allows: each leader starts with an empty registry of its own.
    log()->warn(
        "--registry=in_memory with --zk: the registry of agents stays in the leader's memory, "
        "not in ZooKeeper; a new leader will not know the agents until they re-register");
  } else {
    auto store = state::ZooKeeperStore::open(self->url_, sessionTimeout);
    if (!store) return store.status().withContext("flag '--zk'");
    self->store_ = std::move(*store);
  }
  if (auto installed = self->installFollowerRoutes(); !installed) return installed;

  return ha;
}

api::Status HaMaster::contend(uint16_t httpPort) {
  self_.port = httpPort;
  self_.pid = fmt::format("master@{}:{}", self_.ip, self_.port);
  detector_ = election::LeaderDetector::create(
      url_, sessionTimeout_, *executor_, [this](const std::optional<election::MasterInfo>& leader) {
        std::lock_guard lock(mutex_);
        leader_ = leader;
      });
  contender_ = election::LeaderContender::create(
      url_, sessionTimeout_, self_, *executor_,
      {[this] {
         std::lock_guard lock(mutex_);
         elected_ = true;
         wake_.notify_all();
       },
       [](const std::string& reason) { exitForSupervisor(reason); },
       [this](bool connected) {
         std::lock_guard lock(mutex_);
         if (connected != zkConnected_) {
           if (connected) {
             log()->info("connected to ZooKeeper at '{}'", url_.toString());
           } else {
             log()->warn("ZooKeeper at '{}' is unreachable; retrying", url_.toString());
           }
         }
         zkConnected_ = connected;
       }});
  control_ = std::thread([this] { controlLoop(); });
  watchConnection(std::chrono::seconds(0));
  log()->info("contending for leadership in '{}' (--zk_session_timeout={}ms)", url_.toString(),
              sessionTimeout_.count());
  detector_->start();
  contender_->start();
  return api::Status::ok();
}

void HaMaster::watchConnection(std::chrono::seconds waited) {
  // Says so in the log while ZooKeeper cannot be reached (the client library retries by
  // itself, with its own backoff; /health answers 503 meanwhile).
  const auto every = std::chrono::seconds(5);
  watchTimer_ = executor_->schedule(every, [this, waited, every] {
    bool connected;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      connected = zkConnected_;
    }
    if (!connected) {
      log()->warn("ZooKeeper at '{}' still unreachable after {}s; retrying", url_.toString(),
                  (waited + every).count());
    }
    watchConnection(connected ? std::chrono::seconds(0) : waited + every);
  });
}

HaMaster::~HaMaster() {
  stop();
  master_.reset();
  store_.reset();
}

void HaMaster::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (control_.joinable()) control_.join();
  // The master first (it still writes its registry), then the candidacy. While its routes go,
  // everything answers 503 rather than 404: a framework's driver takes a 4xx to its
  // subscription as final, and a 503 as "try again" (the next leader, once detected).
  if (master_) {
    (void)daemon_.router().addRoute(
        "*", "/", executor_.get(),
        [](const api::HttpRequest&, api::HttpResponder respond) {
          respond(api::HttpResponse::error(503, "this master is stopping"));
        },
        /*prefix=*/true);
    master_->master().stop();
  }
  if (contender_) contender_->stop();
  if (detector_) detector_->stop();
  if (watchTimer_)
    executor_->call([this] {
      watchTimer_->cancel();
      return 0;
    });
  daemon_.router().removeRoutes(executor_.get());
  executor_->drain();
}

void HaMaster::controlLoop() {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [this] { return stopping_ || elected_; });
  if (stopping_) return;
  lock.unlock();
  log()->info("elected leader: {}starting the master",
              store_ ? "recovering the registry from ZooKeeper and " : "");
  const auto began = std::chrono::steady_clock::now();
  {
    std::lock_guard guard(mutex_);
    leading_ = true;  // the catch-all answers 503 while the master starts
  }
  removeFollowerRoutes();
  // Without the ZooKeeper store (--registry=in_memory) the role makes a memory store.
  auto started = MasterRole::start(daemon_, common_, flags_, store_ == nullptr, store_.get());
  if (!started)
    exitForSupervisor(fmt::format("cannot start as leader: {}", started.status().message()));
  master_ = std::move(started).value();
  daemon_.router().removeRoute("*", "/", /*prefix=*/true);  // the master's routes only now
  log()->info("leading; the master started in {} ms",
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - began)
                  .count());
}

std::string HaMaster::stateJson() const {
  std::optional<election::MasterInfo> leader;
  {
    std::lock_guard lock(mutex_);
    leader = leader_;
  }
  Poco::JSON::Object state;
  state.set("version", self_.version);
  state.set("id", self_.id);
  state.set("pid", self_.pid);
  state.set("hostname", self_.hostname);
  state.set("cluster", flags_.cluster);
  state.set("start_time", std::chrono::duration<double>(startTime_.time_since_epoch()).count());
  if (leader) {
    state.set("leader", leader->pid.empty() ? "master@" + leader->address() : leader->pid);
    Poco::JSON::Parser parser;
    state.set("leader_info", parser.parse(election::masterInfoJson(*leader)));
  }
  state.set("activated_slaves", 0);
  state.set("deactivated_slaves", 0);
  state.set("slaves", Poco::JSON::Array());
  state.set("frameworks", Poco::JSON::Array());
  state.set("completed_frameworks", Poco::JSON::Array());
  state.set("unregistered_frameworks", Poco::JSON::Array());
  std::ostringstream out;
  state.stringify(out);
  return out.str();
}

api::Status HaMaster::installFollowerRoutes() {
  auto& router = daemon_.router();
  api::Executor* executor = executor_.get();
  // /health: 503 while ZooKeeper cannot be reached.
  router.removeRoute("GET", "/health");
  auto added = router.addRoute(
      "GET", "/health", executor, [this](const api::HttpRequest&, api::HttpResponder respond) {
        std::lock_guard lock(mutex_);
        if (zkConnected_) return respond(api::HttpResponse::text(200, ""));
        respond(api::HttpResponse::error(
            503, fmt::format("ZooKeeper at '{}' is unreachable", url_.toString())));
      });
  if (!added) return added;
  for (const char* path : kStatePaths) {
    added = router.addRoute("GET", path, executor,
                            [this](const api::HttpRequest&, api::HttpResponder respond) {
                              respond(api::HttpResponse::json(200, stateJson()));
                            });
    if (!added) return added;
  }
  for (const char* path : kRedirectPaths) {
    added = router.addRoute(
        "GET", path, executor, [this](const api::HttpRequest&, api::HttpResponder respond) {
          std::lock_guard lock(mutex_);
          if (!leader_) {
            return respond(api::HttpResponse::error(503, "no master is leading yet"));
          }
          api::HttpResponse response;
          response.status = 307;
          response.headers.emplace_back("Location", "//" + leader_->address());
          respond(std::move(response));
        });
    if (!added) return added;
  }
  added = router.addRoute("GET", "/master/transport", executor,
                          [](const api::HttpRequest&, api::HttpResponder respond) {
                            respond(api::HttpResponse::error(
                                503, "this master is not the leader; ask /master/redirect"));
                          });
  if (!added) return added;
  // Everything else: 307 to the leader, with the same path and query (Mesos's scheduler and
  // operator APIs answer so on a non-leading master).
  return router.addRoute(
      "*", "/", executor,
      [this](const api::HttpRequest& request, api::HttpResponder respond) {
        std::lock_guard lock(mutex_);
        if (leading_) {
          return respond(api::HttpResponse::error(503, "this master is becoming the leader"));
        }
        if (!leader_) return respond(api::HttpResponse::error(503, "no master is leading yet"));
        api::HttpResponse response = api::HttpResponse::error(307, "not the leading master");
        std::string location = "//" + leader_->address() + request.path;
        if (!request.query.empty()) location += "?" + request.query;
        response.headers.emplace_back("Location", location);
        respond(std::move(response));
      },
      /*prefix=*/true);
}

void HaMaster::removeFollowerRoutes() {
  auto& router = daemon_.router();
  for (const char* path : kStatePaths) router.removeRoute("GET", path);
  for (const char* path : kRedirectPaths) router.removeRoute("GET", path);
  router.removeRoute("GET", "/master/transport");
}

}  // namespace tessera::kernel::cli

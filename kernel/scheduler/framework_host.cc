#include "kernel/scheduler/framework_host.h"

#include <Poco/UUIDGenerator.h>
#include <arpa/inet.h>

#include <future>

#include "kernel/runtime/logging.h"
#include "kernel/state/scoped_store.h"
#include "kernel/state/zookeeper_store.h"

namespace tessera::kernel::scheduler {

namespace {

std::shared_ptr<spdlog::logger> log() { return runtime::logger("framework"); }

// Blocking store calls for the control thread; replies come on `on`.
api::Result<std::optional<api::StateEntry>> getNow(api::StateStore& store, api::Executor& on,
                                                   std::string_view key) {
  std::promise<api::Result<std::optional<api::StateEntry>>> promise;
  auto future = promise.get_future();
  store.get(key, on, [&promise](auto result) { promise.set_value(std::move(result)); });
  return future.get();
}

api::Result<uint64_t> setNow(api::StateStore& store, api::Executor& on, std::string_view key,
                             std::string value, uint64_t expected) {
  std::promise<api::Result<uint64_t>> promise;
  auto future = promise.get_future();
  store.set(key, std::move(value), expected, on,
            [&promise](auto result) { promise.set_value(std::move(result)); });
  return future.get();
}

}  // namespace

std::string frameworkIdKey(std::string_view module) {
  return fmt::format("/framework_hosts/{}/framework_id", module);
}

std::string modulePrefix(std::string_view module) { return fmt::format("/modules/{}", module); }

FrameworkHost::FrameworkHost(runtime::Runtime& runtime, modules::ModuleHost& modules,
                             FrameworkHostOptions options)
    : runtime_(runtime), modules_(modules), options_(std::move(options)) {
  options_.driver.master = options_.master;
}

FrameworkHost::~FrameworkHost() { stop(); }

void FrameworkHost::runOnExecutor(api::Executor& executor, const std::function<void()>& fn) {
  std::promise<void> done;
  auto future = done.get_future();
  executor.post([&] {
    fn();
    done.set_value();
  });
  future.wait();
}

api::Status FrameworkHost::start() {
  if (framework_ != nullptr || stopped_) {
    return api::failedPrecondition("framework '{}' was started already", options_.module);
  }
  // Check the address first, so a bad --master creates nothing.
  if (auto master = parseMasterAddress(options_.master); !master) return master.status();
  if (!options_.zk.empty()) {
    auto url = zookeeper::parseZkUrl(options_.zk);
    if (!url) return url.status();
    if (!options_.routerFor) {
      return api::invalidArgument("a framework host with zk needs the router to forward through");
    }
    zk_ = std::move(url).value();
  }
  election_ = runtime_.makeExecutor();
  auto hosted = std::make_shared<Hosted>();
  hosted->replies = runtime_.makeExecutor();
  hosted->leadership = std::make_shared<Leadership>(options_.advertisedAddress);
  hosted->store = options_.state;
  if (zk_) {
    auto store = state::ZooKeeperStore::open(*zk_, options_.zkSessionTimeout);
    if (!store) return store.status();
    hosted->zkStore = std::move(store).value();
    hosted->store = hosted->zkStore.get();
  }

  // The id kept from before (a restart, or another host's leadership), and with zk a write of
  // this host's own: wrong credentials fail here, plainly, rather than at the first failover.
  std::optional<v1::FrameworkID> kept;
  if (hosted->store != nullptr) {
    const std::string key = frameworkIdKey(options_.module);
    auto read = getNow(*hosted->store, *hosted->replies, key);
    if (!read) return read.status().withContext("reading the kept FrameworkID");
    if (*read) {
      kept.emplace();
      kept->set_value((*read)->value);
      hosted->frameworkIdVersion = (*read)->version;
    }
    if (zk_) {
      const std::string probe = fmt::format("/framework_hosts/{}/last_started", options_.module);
      api::Status written;
      for (int attempt = 0; attempt < 10; ++attempt) {  // hosts starting together race here
        auto last = getNow(*hosted->store, *hosted->replies, probe);
        written = last.status();
        if (last) {
          written = setNow(*hosted->store, *hosted->replies, probe, options_.advertisedAddress,
                           *last ? (*last)->version : 0)
                        .status();
        }
        if (written.code() != api::StatusCode::kAborted) break;
      }
      if (!written) return written.withContext("writing to ZooKeeper at '{}'", zk_->toString());
    }
    hosted->moduleStore =
        std::make_unique<state::ScopedStore>(*hosted->store, modulePrefix(options_.module));
  }

  modules::InstanceOptions instance;
  instance.overrides = options_.parameters;
  instance.state = hosted->moduleStore.get();
  if (zk_) {
    instance.routerFor = [leadership = hosted->leadership, inner = options_.routerFor,
                          runtime = &runtime_](api::Executor& executor) {
      return std::make_unique<ForwardingRouter>(inner(executor), leadership, *runtime, executor);
    };
  } else {
    instance.routerFor = options_.routerFor;
  }
  auto made = modules_.create<api::Framework>(options_.module, std::move(instance));
  if (!made) return made.status();
  framework_ = *made;
  api::Executor* executor = modules_.executorOf(framework_);

  DriverOptions driver = options_.driver;
  if (options_.principal && options_.secret && driver.authorization.empty()) {
    driver.authorization = basicAuthorization(*options_.principal, *options_.secret);
  }
  HostedDriverOptions hostedOptions;
  hostedOptions.frameworkId = kept;
  hostedOptions.failoverTimeout = options_.failoverTimeout;
  hostedOptions.principal = options_.principal;
  if (hosted->store != nullptr) {
    std::weak_ptr<Hosted> weak = hosted;
    const std::string key = frameworkIdKey(options_.module);
    hostedOptions.recordFrameworkId = [weak, key](const v1::FrameworkID& id) {
      auto self = weak.lock();
      if (!self) return;
      // Replies come on the host's own executor, which outlives the store (not the module's).
      self->store->get(key, *self->replies, [weak, key, id](auto current) {
        auto self = weak.lock();
        if (!self || !current) return;
        if (*current && (*current)->value == id.value()) return;
        self->store->set(key, id.value(), *current ? (*current)->version : 0, *self->replies,
                         [key, id](api::Result<uint64_t> written) {
                           if (!written) {
                             log()->error("cannot keep FrameworkID '{}': {}", id.value(),
                                          written.status().message());
                           } else {
                             log()->info("kept FrameworkID '{}' at '{}'", id.value(), key);
                           }
                         });
      });
    };
  }
  hosted->driver = std::make_shared<HostedDriver>(runtime_, *executor, *framework_, driver,
                                                  std::move(hostedOptions));
  auto hooked = modules_.addStopHook(framework_, [hosted] { hosted->driver->stop(); });
  if (!hooked) return hooked;
  hosted_ = hosted;
  runOnExecutor(*executor, [this] { framework_->attached(*hosted_->leadership); });
  if (!zk_) {
    hosted_->leadership->setLeading(true);
    runOnExecutor(*executor, [this] { framework_->start(*hosted_->driver); });
    log()->info("started framework module '{}' against master {}", options_.module,
                options_.master);
  } else {
    hosted_->leadership->onAbdicate([this] { election_->post([this] { onAbdicate(); }); });
    log()->info("framework module '{}' created; contending for leadership in '{}'", options_.module,
                zk_->toString());
  }
  return api::Status::ok();
}

api::Status FrameworkHost::contend(std::string advertisedAddress) {
  if (hosted_ == nullptr) return api::failedPrecondition("the framework host is not started");
  if (!zk_ || contender_ != nullptr) return api::Status::ok();
  if (!advertisedAddress.empty()) options_.advertisedAddress = advertisedAddress;
  hosted_->leadership->setAdvertisedAddress(options_.advertisedAddress);
  election::MasterInfo info;
  info.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  const std::string& address = options_.advertisedAddress;
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) == 1) info.ip = host;
  info.hostname = host;
  info.port = colon == std::string::npos
                  ? 0
                  : static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1));
  info.pid = fmt::format("framework@{}", address);
  info.version = options_.module;

  std::shared_ptr<Leadership> leadership = hosted_->leadership;
  detector_ = election::LeaderDetector::create(
      *zk_, options_.zkSessionTimeout, *election_,
      [leadership](const std::optional<election::MasterInfo>& leader) {
        leadership->setLeader(leader ? std::optional<std::string>(leader->address())
                                     : std::nullopt);
      });
  contender_ = election::LeaderContender::create(
      *zk_, options_.zkSessionTimeout, info, *election_,
      {[this] { onElected(); }, [this](const std::string& reason) { onLost(reason); }, nullptr});
  detector_->start();
  contender_->start();
  return api::Status::ok();
}

void FrameworkHost::onElected() {
  if (stopped_) return;
  log()->info("elected the leading host of framework module '{}' ({})", options_.module,
              options_.advertisedAddress);
  hosted_->leadership->setLeading(true);
  api::Executor* executor = modules_.executorOf(framework_);
  if (executor == nullptr) return;
  // The id the previous leader kept, then the module's scheduler, on its executor.
  std::weak_ptr<Hosted> weak = hosted_;
  api::Framework* framework = framework_;
  hosted_->store->get(frameworkIdKey(options_.module), *executor,
                      [this, weak, framework](api::Result<std::optional<api::StateEntry>> kept) {
                        auto hosted = weak.lock();
                        if (!hosted) return;
                        if (!kept) {
                          // Leading without the id would register a second framework: step down
                          // instead.
                          election_->post([this, message = kept.status().message()] {
                            onLost(fmt::format("cannot read the kept FrameworkID: {}", message));
                          });
                          return;
                        }
                        if (*kept) {
                          v1::FrameworkID id;
                          id.set_value((*kept)->value);
                          log()->info("failing over to FrameworkID '{}'", id.value());
                          hosted->driver->setFrameworkId(id);
                        }
                        framework->start(*hosted->driver);
                      });
}

void FrameworkHost::onLost(const std::string& reason) {
  if (stopped_) return;
  hosted_->leadership->setLeading(false);
  if (options_.onLeadershipLost) return options_.onLeadershipLost(reason);
  log()->error("framework module '{}' lost leadership: {}; its scheduler stops", options_.module,
               reason);
  if (api::Executor* executor = modules_.executorOf(framework_)) {
    executor->post([hosted = hosted_] { hosted->driver->stop(); });
  }
}

void FrameworkHost::keepFrameworkIdNow() {
  if (hosted_ == nullptr || hosted_->store == nullptr) return;
  api::Executor* executor = modules_.executorOf(framework_);
  if (executor == nullptr) return;
  std::optional<v1::FrameworkID> id;
  runOnExecutor(*executor, [&] { id = hosted_->driver->inner().frameworkId(); });
  if (!id) return;
  const std::string key = frameworkIdKey(options_.module);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = getNow(*hosted_->store, *hosted_->replies, key);
    if (!current || (*current && (*current)->value == id->value())) return;
    auto written = setNow(*hosted_->store, *hosted_->replies, key, id->value(),
                          *current ? (*current)->version : 0);
    if (written.status().code() != api::StatusCode::kAborted) return;
  }
}

void FrameworkHost::onAbdicate() {
  if (stopped_) return;
  log()->info("framework module '{}' abdicates: stopping its scheduler and withdrawing",
              options_.module);
  hosted_->leadership->setLeading(false);
  if (api::Executor* executor = modules_.executorOf(framework_)) {
    runOnExecutor(*executor, [this] { hosted_->driver->stop(); });
  }
  keepFrameworkIdNow();  // the next leader must fail over to it, not register anew
  if (contender_) contender_->stop();
  if (options_.onAbdicated) options_.onAbdicated();
}

void FrameworkHost::stop() {
  if (stopped_) return;
  stopped_ = true;
  // The module may outlive this host: its abdicate() must no longer reach it.
  if (hosted_) hosted_->leadership->onAbdicate(nullptr);
  if (contender_) contender_->stop();
  if (detector_) detector_->stop();
  // Only the election posts there (and only once contend() ran): nothing to wait for before,
  // and the runtime may be stopped already.
  if (contender_ || detector_) election_->drain();
  if (hosted_ == nullptr) return;
  hosted_->leadership->setLeading(false);
  api::Executor* executor = modules_.executorOf(framework_);
  if (executor == nullptr) return;  // the ModuleHost stopped the instance, and the driver first
  runOnExecutor(*executor, [this] { hosted_->driver->stop(); });
  keepFrameworkIdNow();
}

}  // namespace tessera::kernel::scheduler

#include "modules/framework_marathon/marathon_framework.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "modules/framework_marathon/deployment_store.h"
#include "modules/framework_marathon/routes_util.h"
#include "modules/framework_marathon/ui_routes.h"
#include "tessera/api/json.h"
#include "tessera/api/logger.h"

namespace tessera::modules::marathon {

namespace {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using api::jsonQuote;

constexpr std::string_view kAppsKey = "/modules/org_tessera_marathon/apps";
constexpr std::string_view kDeploymentsKey = "/modules/org_tessera_marathon/deployments";
constexpr size_t kMaxVersions = 50;  // Marathon's --max_versions default is 50 as well
constexpr std::string_view kMarathonVersion = "1.4.12";

std::string storeKey(std::string_view appId) {
  std::string name(appId.substr(1));
  std::replace(name.begin(), name.end(), '/', '_');
  return fmt::format("{}/{}", kAppsKey, name);
}

std::string defaultUser() {
  if (struct passwd* entry = ::getpwuid(::geteuid()); entry != nullptr && entry->pw_name) {
    return entry->pw_name;
  }
  return "root";
}

std::string recordJson(const App& current, const std::vector<App>& versions) {
  std::string out = fmt::format(R"({{"current":{},"versions":[)", appToJson(current));
  for (size_t i = 0; i < versions.size(); ++i) {
    if (i > 0) out += ",";
    out += appToJson(versions[i]);
  }
  return out + "]}";
}

}  // namespace

api::Result<std::unique_ptr<api::Module>> MarathonFramework::create(
    const api::Parameters& parameters, api::Context& context) {
  Settings settings;
  settings.frameworkName = parameters.getOr("framework_name", "marathon");
  settings.role = parameters.getOr("mesos_role", "*");
  settings.user = parameters.getOr("mesos_user", "");
  if (settings.user.empty()) settings.user = defaultUser();
  const std::string checkpoint = parameters.getOr("checkpoint", "true");
  if (checkpoint != "true" && checkpoint != "false") {
    return api::invalidArgument("parameter 'checkpoint' must be true or false, not '{}'",
                                checkpoint);
  }
  settings.checkpoint = checkpoint == "true";
  auto module = std::make_unique<MarathonFramework>(context, std::move(settings));
  if (auto added = module->addRoutes(); !added) return added;
  if (auto added = module->pods_->addRoutes(); !added) return added;
  if (auto ui = addUiRoutes(context, uiDirectory(parameters)); !ui) return ui;
  return std::unique_ptr<api::Module>(std::move(module));
}

MarathonFramework::MarathonFramework(api::Context& context, Settings settings)
    : context_(context), settings_(std::move(settings)) {
  AppScheduler::Options options;
  options.role = settings_.role;
  options.user = settings_.user;
  options.events = [this](std::string_view eventType, std::string json) {
    publish(eventType, std::move(json));
  };
  options.deploymentEnded = [this](const std::string& id) { deploymentEnded(id); };
  // Offers go to the pods first: the app engine keeps them coming while a pod waits.
  options.othersWantOffers = [this] { return pods_ && pods_->scheduler().wantsOffers(); };
  scheduler_ = std::make_unique<AppScheduler>(context_, std::move(options));
  PodScheduler::Options podOptions;
  podOptions.role = settings_.role;
  podOptions.user = settings_.user;
  pods_ =
      std::make_unique<PodService>(context_, std::move(podOptions),
                                   [this](const std::string& id) { return apps_.contains(id); });
}

MarathonFramework::~MarathonFramework() { *alive_ = false; }

void MarathonFramework::attached(api::FrameworkHost& host) { host_ = &host; }

void MarathonFramework::start(api::SchedulerDriver& driver) {
  driver_ = &driver;
  loadState([this](std::vector<Deployment> deployments) {
    pods_->load([this, deployments] {
      if (driver_ == nullptr) return;
      std::vector<App> apps;
      for (const auto& [id, record] : apps_) apps.push_back(record.current);
      scheduler_->start(*driver_, std::move(apps), deployments);
      pods_->start(*driver_);
      ready_ = true;
      v1::FrameworkInfo info;
      info.set_user(settings_.user);
      info.set_name(settings_.frameworkName);
      info.add_roles(settings_.role);
      info.set_checkpoint(settings_.checkpoint);
      info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
      if (host_ != nullptr && !host_->advertisedAddress().empty()) {
        info.set_webui_url(fmt::format("http://{}", host_->advertisedAddress()));
      }
      if (auto status = driver_->subscribe(info, {}); !status) {
        context_.logger().log(api::Logger::Level::kError,
                              fmt::format("cannot subscribe: {}", status.message()));
      }
    });
  });
}

void MarathonFramework::stop() {
  *alive_ = false;
  if (retryLoad_) retryLoad_->cancel();
  if (driver_ != nullptr) scheduler_->stop();
  pods_->stop();
  driver_ = nullptr;
  ready_ = false;
  for (auto& stream : streams_) stream.writer->end();
  streams_.clear();
}

void MarathonFramework::subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds,
                                   const v1::MasterInfo&) {
  frameworkId_ = frameworkId.value();
  scheduler_->subscribed(frameworkId);
  pods_->scheduler().subscribed();
}
void MarathonFramework::offers(std::vector<v1::Offer> offers) {
  if (ready_) offers = pods_->scheduler().offers(std::move(offers));
  if (!offers.empty()) scheduler_->offers(std::move(offers));
}
void MarathonFramework::rescind(const v1::OfferID& offerId) { scheduler_->rescind(offerId); }
void MarathonFramework::update(const v1::TaskStatus& status) {
  if (ready_ && pods_->scheduler().update(status)) return;
  scheduler_->update(status);
}
void MarathonFramework::message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) {}
void MarathonFramework::failure(const v1::AgentID& agentId,
                                const std::optional<v1::ExecutorID>& executorId,
                                std::optional<int>) {
  if (!executorId) scheduler_->failure(agentId);
}
void MarathonFramework::error(std::string_view message) {
  context_.logger().log(api::Logger::Level::kError,
                        fmt::format("the master ended the framework: {}", message));
}
void MarathonFramework::disconnected() {
  scheduler_->disconnected();
  pods_->scheduler().disconnected();
}

// ---------------------------------------------------------------------------------------------
// The app store.

void MarathonFramework::readAll(std::string prefix, std::function<void(StoredEntries)> done) {
  std::weak_ptr<bool> alive = alive_;
  auto live = [alive] { return !alive.expired() && *alive.lock(); };
  // Anything that cannot be read now: everything again in a second rather than lead without it.
  auto retry = [this, live, prefix, done](const api::Status& status) {
    context_.logger().log(
        api::Logger::Level::kError,
        fmt::format("cannot read '{}' (retrying in 1s): {}", prefix, status.message()));
    retryLoad_ = context_.executor().schedule(std::chrono::seconds(1), [this, live, prefix, done] {
      if (live()) readAll(prefix, done);
    });
  };
  context_.state().children(
      prefix, context_.executor(),
      [this, live, prefix, done, retry](api::Result<std::vector<std::string>> names) {
        if (!live()) return;
        if (!names) return retry(names.status());
        auto entries = std::make_shared<StoredEntries>();
        auto pending = std::make_shared<size_t>(names->size());
        auto failed = std::make_shared<std::optional<api::Status>>();
        if (*pending == 0) return done({});
        for (const auto& name : *names) {
          context_.state().get(fmt::format("{}/{}", prefix, name), context_.executor(),
                               [live, done, retry, entries, pending, failed,
                                name](api::Result<std::optional<api::StateEntry>> entry) {
                                 if (!live()) return;
                                 if (!entry) *failed = entry.status();
                                 if (entry && *entry) entries->emplace_back(name, **entry);
                                 if (--*pending > 0) return;
                                 if (*failed) return retry(**failed);
                                 done(std::move(*entries));
                               });
        }
      });
}

void MarathonFramework::loadState(std::function<void(std::vector<Deployment>)> done) {
  readAll(std::string(kAppsKey), [this, done](StoredEntries entries) {
    for (const auto& [name, entry] : entries) {
      try {
        auto object = Poco::JSON::Parser().parse(entry.value).extract<Poco::JSON::Object::Ptr>();
        auto text = [](const Poco::Dynamic::Var& value) {
          std::ostringstream out;
          Poco::JSON::Stringifier::stringify(value, out);
          return out.str();
        };
        auto current = appFromJson(text(object->get("current")));
        if (!current) continue;
        Record record{*current, {}, entry.version};
        if (auto versions = object->getArray("versions")) {
          for (size_t i = 0; i < versions->size(); ++i) {
            if (auto app = appFromJson(text(versions->get(i)))) record.versions.push_back(*app);
          }
        }
        apps_[current->id] = std::move(record);
      } catch (const Poco::Exception& e) {
        context_.logger().log(api::Logger::Level::kError,
                              fmt::format("unreadable app '{}': {}", name, e.what()));
      }
    }
    readAll(std::string(kDeploymentsKey), [this, done](StoredEntries entries) {
      std::vector<Deployment> deployments;
      for (const auto& [name, entry] : entries) {
        auto deployment = deploymentFromStoreJson(entry.value);
        if (!deployment) {
          context_.logger().log(api::Logger::Level::kError,
                                fmt::format("unreadable deployment '{}'", name));
          continue;
        }
        deploymentVersions_[deployment->id] = entry.version;
        deployments.push_back(std::move(*deployment));
      }
      std::sort(deployments.begin(), deployments.end(),
                [](const Deployment& a, const Deployment& b) { return a.version < b.version; });
      done(std::move(deployments));
    });
  });
}

void MarathonFramework::persistDeployment(const Deployment& deployment,
                                          std::function<void()> done) {
  std::weak_ptr<bool> alive = alive_;
  const std::string id = deployment.id;
  deploymentVersions_[id] = 0;  // being written
  context_.state().set(
      fmt::format("{}/{}", kDeploymentsKey, id), deploymentToStoreJson(deployment), 0,
      context_.executor(), [this, alive, id, done](api::Result<uint64_t> written) {
        if (alive.expired() || !*alive.lock()) return;
        if (!written) {
          context_.logger().log(
              api::Logger::Level::kError,
              fmt::format("cannot store deployment '{}': {}", id, written.status().message()));
          deploymentVersions_.erase(id);
          endedDeployments_.erase(id);
          return done();
        }
        deploymentVersions_[id] = *written;
        // It ended while it was being written: it goes now.
        if (endedDeployments_.erase(id) > 0) deploymentEnded(id);
        done();
      });
}

void MarathonFramework::deploymentEnded(const std::string& id) {
  auto it = deploymentVersions_.find(id);
  if (it == deploymentVersions_.end() || it->second == 0) {
    // Not written yet (or ended inside deploy()): the writer removes it or never writes it.
    endedDeployments_.insert(id);
    return;
  }
  const uint64_t version = it->second;
  deploymentVersions_.erase(it);
  std::weak_ptr<bool> alive = alive_;
  context_.state().remove(fmt::format("{}/{}", kDeploymentsKey, id), version, context_.executor(),
                          [this, alive, id](api::Status status) {
                            if (alive.expired() || !*alive.lock()) return;
                            if (!status && status.code() != api::StatusCode::kNotFound) {
                              context_.logger().log(api::Logger::Level::kError,
                                                    fmt::format("cannot remove deployment '{}': {}",
                                                                id, status.message()));
                            }
                          });
}

void MarathonFramework::persist(const std::string& appId, std::function<void(api::Status)> done) {
  auto it = apps_.find(appId);
  if (it == apps_.end()) return done(api::Status(api::StatusCode::kNotFound, appId));
  std::weak_ptr<bool> alive = alive_;
  context_.state().set(storeKey(appId), recordJson(it->second.current, it->second.versions),
                       it->second.storeVersion, context_.executor(),
                       [this, alive, appId, done](api::Result<uint64_t> written) {
                         if (alive.expired() || !*alive.lock()) return;
                         if (!written) return done(written.status());
                         if (auto it = apps_.find(appId); it != apps_.end()) {
                           it->second.storeVersion = *written;
                         }
                         done(api::Status::ok());
                       });
}

void MarathonFramework::forget(const std::string& appId, std::function<void(api::Status)> done) {
  auto it = apps_.find(appId);
  if (it == apps_.end()) return done(api::Status::ok());
  const uint64_t version = it->second.storeVersion;
  apps_.erase(it);
  if (version == 0) return done(api::Status::ok());
  std::weak_ptr<bool> alive = alive_;
  context_.state().remove(storeKey(appId), version, context_.executor(),
                          [alive, done](api::Status status) {
                            if (alive.expired() || !*alive.lock()) return;
                            done(status);
                          });
}

const MarathonFramework::Record* MarathonFramework::findApp(const std::string& id,
                                                            HttpResponder& respond) const {
  auto it = apps_.find(id);
  if (it != apps_.end()) return &it->second;
  respond(appNotFound(id));
  return nullptr;
}

void MarathonFramework::remember(const App& app) {
  auto& record = apps_[app.id];
  if (record.versions.empty() || record.versions.front().version != app.version) {
    record.versions.insert(record.versions.begin(), app);
    if (record.versions.size() > kMaxVersions) record.versions.resize(kMaxVersions);
  }
  record.current = app;
}

void MarathonFramework::storeAndDeploy(std::vector<App> apps, std::vector<std::string> removed,
                                       std::vector<std::string> restart, bool force,
                                       std::function<void(api::Result<Deployment>)> done) {
  // A locked app: refused before anything is stored (the API answers 409).
  if (!force) {
    std::set<std::string> locking;
    auto collect = [&](const std::string& id) {
      for (auto& deployment : scheduler_->deploymentsOf(id)) locking.insert(deployment);
    };
    for (const auto& app : apps) collect(app.id);
    for (const auto& id : removed) collect(id);
    for (const auto& id : restart) collect(id);
    if (!locking.empty()) {
      std::string ids;
      for (const auto& id : locking) {
        if (!ids.empty()) ids += ",";
        ids += id;
      }
      return done(api::Status(api::StatusCode::kAborted, ids));
    }
  }
  // The store first: a new leader must know every app the API accepted.
  auto pending = std::make_shared<size_t>(apps.size() + removed.size() + 1);
  auto failed = std::make_shared<api::Status>(api::Status::ok());
  auto finish = [this, pending, failed, apps, removed, restart, force, done](api::Status status) {
    if (!status && failed->isOk()) *failed = status;
    if (--*pending > 0) return;
    if (!failed->isOk()) {
      return done(api::Status(api::StatusCode::kUnavailable,
                              fmt::format("cannot store the apps: {}", failed->message())));
    }
    auto deployment = scheduler_->deploy(apps, removed, restart, force);
    // A deployment that ended inside deploy() is never stored.
    if (!deployment || endedDeployments_.erase(deployment->id) > 0) return done(deployment);
    persistDeployment(*deployment, [done, deployment] { done(deployment); });
  };
  for (const auto& app : apps) {
    remember(app);
    persist(app.id, finish);
  }
  for (const auto& id : removed) forget(id, finish);
  finish(api::Status::ok());
}

void MarathonFramework::publish(std::string_view eventType, std::string json) {
  const std::string type(eventType);
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (!it->types.empty() && !it->types.contains(type)) {
      ++it;
      continue;
    }
    if (!it->writer->writeEvent(api::ServerSentEvent{type, json, {}, {}})) {
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JSON of apps and tasks.

std::string MarathonFramework::taskJson(const Task& task) const {
  std::string checks = "[";
  for (size_t i = 0; i < task.healthCheckResults.size(); ++i) {
    const auto& result = task.healthCheckResults[i];
    auto time = [](const std::optional<Clock::time_point>& at) {
      return at ? jsonQuote(isoTimestamp(*at)) : std::string("null");
    };
    if (i > 0) checks += ",";
    checks +=
        fmt::format(R"({{"alive":{},"consecutiveFailures":{},"firstSuccess":{},"lastSuccess":{},)"
                    R"("lastFailure":{},"lastFailureCause":{},"taskId":{}}})",
                    result.alive, result.consecutiveFailures, time(result.firstSuccess),
                    time(result.lastSuccess), time(result.lastFailure),
                    result.lastFailureCause.empty() ? "null" : jsonQuote(result.lastFailureCause),
                    jsonQuote(task.id));
  }
  checks += "]";
  auto ints = [](const std::vector<int>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ",";
      out += std::to_string(values[i]);
    }
    return out + "]";
  };
  return fmt::format(R"({{"id":{},"appId":{},"host":{},"ports":{},"servicePorts":{},"slaveId":{},)"
                     R"("agentId":{},"stagedAt":{},"startedAt":{},"version":{},"state":{},)"
                     R"("ipAddresses":[],"healthCheckResults":{}}})",
                     jsonQuote(task.id), jsonQuote(task.appId), jsonQuote(task.host),
                     ints(task.ports), ints(task.servicePorts), jsonQuote(task.agentId),
                     jsonQuote(task.agentId), jsonQuote(isoTimestamp(task.stagedAt)),
                     task.startedAt ? jsonQuote(isoTimestamp(*task.startedAt)) : "null",
                     jsonQuote(isoTimestamp(task.version)), jsonQuote(task.state), checks);
}

std::string MarathonFramework::fullAppJson(const App& app, bool tasks, bool counts,
                                           bool deployments, bool failure, bool stats) const {
  std::string out = appToJson(app);
  out.pop_back();  // the closing brace
  if (counts) {
    const AppCounts c = scheduler_->counts(app.id);
    out +=
        fmt::format(R"(,"tasksStaged":{},"tasksRunning":{},"tasksHealthy":{},"tasksUnhealthy":{})",
                    c.staged, c.running, c.healthy, c.unhealthy);
  }
  if (deployments) {
    std::string list = "[";
    for (const auto& id : scheduler_->deploymentsOf(app.id)) {
      list += fmt::format(R"({}{{"id":{}}})", list.size() > 1 ? "," : "", jsonQuote(id));
    }
    out += R"(,"deployments":)" + list + "]";
  }
  if (tasks) {
    std::string list = "[";
    for (const auto& task : scheduler_->tasks(app.id)) {
      if (list.size() > 1) list += ",";
      list += taskJson(task);
    }
    out += R"(,"tasks":)" + list + "]";
  }
  if (failure) {
    if (auto last = scheduler_->lastTaskFailure(app.id)) {
      out += fmt::format(
          R"(,"lastTaskFailure":{{"appId":{},"host":{},"message":{},"state":{},"taskId":{},)"
          R"("timestamp":{},"version":{},"slaveId":{}}})",
          jsonQuote(last->appId), jsonQuote(last->host), jsonQuote(last->message),
          jsonQuote(last->state), jsonQuote(last->taskId), jsonQuote(isoTimestamp(last->timestamp)),
          jsonQuote(isoTimestamp(last->version)), jsonQuote(last->agentId));
    }
  }
  if (stats) out += R"(,"taskStats":)" + taskStatsJson(app);
  return out + "}";
}

// Marathon's taskStats: counts and life times of the tasks started after the last scaling, of
// the latest config, of an older config, and of all; a category without tasks is left out.
std::string MarathonFramework::taskStatsJson(const App& app) const {
  const auto tasks = scheduler_->tasks(app.id);
  const auto now = Clock::now();
  auto category = [&](auto wanted) -> std::string {
    int staged = 0, running = 0, healthy = 0, unhealthy = 0;
    std::vector<double> lives;
    for (const auto& task : tasks) {
      if (!wanted(task)) continue;
      if (task.state == "TASK_RUNNING") ++running;
      if (task.state == "TASK_STAGING" || task.state == "TASK_STARTING") ++staged;
      if (!task.healthCheckResults.empty()) {
        const bool alive =
            std::all_of(task.healthCheckResults.begin(), task.healthCheckResults.end(),
                        [](const HealthResult& r) { return r.alive; });
        ++(alive ? healthy : unhealthy);
      }
      if (task.startedAt) {
        lives.push_back(std::chrono::duration<double>(now - *task.startedAt).count());
      }
    }
    if (staged + running == 0 && lives.empty()) return "";
    std::string life;
    if (!lives.empty()) {
      std::sort(lives.begin(), lives.end());
      double sum = 0;
      for (double value : lives) sum += value;
      const size_t n = lives.size();
      const double median = n % 2 == 1 ? lives[n / 2] : (lives[n / 2 - 1] + lives[n / 2]) / 2;
      life = fmt::format(R"(,"lifeTime":{{"averageSeconds":{},"medianSeconds":{}}})",
                         sum / static_cast<double>(n), median);
    }
    return fmt::format(
        R"({{"stats":{{"counts":{{"staged":{},"running":{},"healthy":{},"unhealthy":{}}}{}}}}})",
        staged, running, healthy, unhealthy, life);
  };
  std::string out;
  auto add = [&](std::string_view name, std::string json) {
    if (json.empty()) return;
    out += fmt::format(R"({}"{}":{})", out.empty() ? "" : ",", name, json);
  };
  add("startedAfterLastScaling",
      category([&](const Task& t) { return t.startedAt && *t.startedAt >= app.lastScalingAt; }));
  add("withLatestConfig",
      category([&](const Task& t) { return t.version >= app.lastConfigChangeAt; }));
  add("withOutdatedConfig",
      category([&](const Task& t) { return t.version < app.lastConfigChangeAt; }));
  add("totalSummary", category([](const Task&) { return true; }));
  return "{" + out + "}";
}

std::string MarathonFramework::infoJson() const {
  const std::string address = host_ != nullptr ? host_->advertisedAddress() : "";
  const auto leader = host_ != nullptr ? host_->leaderAddress() : std::nullopt;
  return fmt::format(
      R"({{"name":"marathon","version":{},"buildref":"tessera","elected":{},"leader":{},)"
      R"("frameworkId":{},"marathon_config":{{"framework_name":{},"mesos_role":{},)"
      R"("mesos_user":{},"hostname":{},"webui_url":{},"checkpoint":{},)"
      R"("local_port_min":10000,"local_port_max":20000,"task_launch_timeout":300000}},)"
      R"("zookeeper_config":{{}},"http_config":{{"http_port":{}}},"event_subscriber":null}})",
      jsonQuote(kMarathonVersion), host_ == nullptr || host_->leading(),
      leader ? jsonQuote(*leader) : "null", frameworkId_ ? jsonQuote(*frameworkId_) : "null",
      jsonQuote(settings_.frameworkName), jsonQuote(settings_.role), jsonQuote(settings_.user),
      jsonQuote(address.substr(0, address.rfind(':'))),
      address.empty() ? "null" : jsonQuote("http://" + address), settings_.checkpoint,
      address.empty() ? "null" : address.substr(address.rfind(':') + 1));
}

// ---------------------------------------------------------------------------------------------
// Routes.

api::Status MarathonFramework::addRoutes() {
  auto& http = context_.http();
  auto guarded = [this](std::string family, auto handler) {
    return [this, family, handler](const HttpRequest& request, HttpResponder respond) {
      ++requests_[family];
      if (!ready_)
        return respond(errorAnswer(503, "Marathon is not ready: still loading its state"));
      (this->*handler)(request, std::move(respond));
    };
  };
  struct Route {
    std::string_view path;
    api::HttpHandler handler;
    bool prefix;
  };
  std::vector<Route> routes = {
      {"/v2/apps", guarded("apps", &MarathonFramework::handleApps), true},
      {"/v2/deployments", guarded("deployments", &MarathonFramework::handleDeployments), true},
      {"/v2/queue", guarded("queue", &MarathonFramework::handleQueue), true},
      {"/v2/groups", guarded("groups", &MarathonFramework::handleGroups), true},
      {"/v2/tasks", guarded("tasks", &MarathonFramework::handleTasks), true},
      {"/v2/info",
       [this](const HttpRequest&, HttpResponder respond) { respond(jsonAnswer(200, infoJson())); },
       false},
      {"/v2/leader",
       [this](const HttpRequest& request, HttpResponder respond) {
         auto leader = host_ != nullptr ? host_->leaderAddress() : std::nullopt;
         if (request.method == "GET") {
           if (!leader) return respond(errorAnswer(404, "There is no leader"));
           return respond(jsonAnswer(200, fmt::format(R"({{"leader":{}}})", jsonQuote(*leader))));
         }
         if (request.method != "DELETE") return respond(errorAnswer(405, "Method not allowed"));
         if (host_ == nullptr || !host_->leading()) {
           return respond(errorAnswer(404, "There is no leader"));
         }
         respond(errorAnswer(200, "Leadership abdicated"));
         host_->abdicate();
       },
       false},
      {"/ping",
       [](const HttpRequest&, HttpResponder respond) {
         respond(HttpResponse::text(200, "pong\n"));
       },
       false},
      {"/metrics",
       [this](const HttpRequest&, HttpResponder respond) {
         std::string counters;
         for (const auto& [family, count] : requests_) {
           counters += fmt::format(R"({}"marathon.http.requests.{}":{{"count":{}}})",
                                   counters.empty() ? "" : ",", family, count);
         }
         size_t running = 0;
         for (const auto& task : scheduler_->tasks()) running += task.state == "TASK_RUNNING";
         respond(jsonAnswer(
             200,
             fmt::format(
                 R"({{"version":"4.0.0","gauges":{{"marathon.apps.active.gauge":{{"value":{}}},)"
                 R"("marathon.tasks.running.gauge":{{"value":{}}},)"
                 R"("marathon.deployments.active.gauge":{{"value":{}}},)"
                 R"("marathon.leadership.elected":{{"value":{}}}}},"counters":{{{}}},)"
                 R"("histograms":{{}},"meters":{{}},"timers":{{}}}})",
                 apps_.size(), running, scheduler_->deployments().size(), ready_ ? 1 : 0,
                 counters)));
       },
       false},
  };
  for (auto& route : routes) {
    // GET /metrics may be the daemon's own (Prometheus text): then Marathon's JSON is not served
    // there and the module runs without it.
    const bool metrics = route.path == "/metrics";
    if (auto added = http.addRoute(metrics ? "GET" : "*", route.path, std::move(route.handler),
                                   route.prefix);
        !added) {
      if (metrics && added.code() == api::StatusCode::kAlreadyExists) continue;
      return added;
    }
  }
  auto streaming = http.addStreamingRoute(
      "GET", "/v2/events",
      [this](const HttpRequest& request, std::shared_ptr<api::HttpStreamWriter> writer) {
        handleEvents(request, std::move(writer));
      });
  if (streaming.code() == api::StatusCode::kUnimplemented) {
    // A host whose router cannot stream (a test's or an embedder's router): the module runs
    // without /v2/events rather than not at all.
    context_.logger().log(api::Logger::Level::kWarning,
                          fmt::format("no /v2/events: {}", streaming.message()));
    return http.addRoute("GET", "/v2/events", [](const HttpRequest&, HttpResponder respond) {
      respond(errorAnswer(501, "The event stream is not available on this host"));
    });
  }
  return streaming;
}

void MarathonFramework::handleEvents(const HttpRequest& request,
                                     std::shared_ptr<api::HttpStreamWriter> writer) {
  ++requests_["events"];
  writer->startEvents();
  EventStream stream{writer, {}};
  for (auto& type : queryValues(request, "event_type")) stream.types.insert(type);
  api::HttpStreamWriter* raw = writer.get();
  writer->onClosed([this, raw, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired() || !*alive.lock()) return;
    std::erase_if(streams_, [raw](const EventStream& s) { return s.writer.get() == raw; });
  });
  const std::string attached =
      fmt::format(R"({{"remoteAddress":{},"eventType":"event_stream_attached","timestamp":{}}})",
                  jsonQuote(remoteIp(request)), jsonQuote(isoTimestamp(Clock::now())));
  if (stream.types.empty() || stream.types.contains("event_stream_attached")) {
    writer->writeEvent(api::ServerSentEvent{"event_stream_attached", attached, {}, {}});
  }
  streams_.push_back(std::move(stream));
}

}  // namespace tessera::modules::marathon

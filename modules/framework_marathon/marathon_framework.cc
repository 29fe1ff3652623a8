#include "modules/framework_marathon/marathon_framework.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>

#include "tessera/api/json.h"
#include "tessera/api/logger.h"

namespace tessera::modules::marathon {

namespace {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using api::jsonQuote;

constexpr std::string_view kAppsKey = "/modules/org_tessera_marathon/apps";
constexpr size_t kMaxVersions = 50;  // Marathon's --max_versions default is 50 as well
constexpr std::string_view kMarathonVersion = "1.4.12";

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      if (std::sscanf(std::string(text.substr(i + 1, 2)).c_str(), "%2x", &value) == 1) {
        out.push_back(static_cast<char>(value));
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Every value of query parameter `key` (Marathon repeats `embed` and `event_type`).
std::vector<std::string> queryValues(const HttpRequest& request, std::string_view key) {
  std::vector<std::string> out;
  std::string_view query = request.query;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    size_t eq = pair.find('=');
    if (percentDecode(pair.substr(0, eq)) == key) {
      out.push_back(eq == std::string_view::npos ? "" : percentDecode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

// Query booleans in any case: `force=TRUE`.
bool boolParam(const HttpRequest& request, std::string_view key) {
  auto value = request.queryParam(key);
  return value && lower(*value) == "true";
}

HttpResponse jsonAnswer(int status, std::string body) {
  return HttpResponse::json(status, std::move(body));
}

HttpResponse errorAnswer(int status, std::string_view text) {
  return jsonAnswer(status, fmt::format(R"({{"message":{}}})", jsonQuote(text)));
}

HttpResponse appNotFound(std::string_view id) {
  return errorAnswer(404, fmt::format("App '{}' does not exist", id));
}

std::string newUuid() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t a = random();
  const uint64_t b = random();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     ((b >> 48) & 0x3fff) | 0x8000, b & 0xffffffffffffULL);
}

std::string storeKey(std::string_view appId) {
  std::string name(appId.substr(1));
  std::replace(name.begin(), name.end(), '/', '_');
  return fmt::format("{}/{}", kAppsKey, name);
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view segment = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!segment.empty()) out.emplace_back(segment);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string joinId(const std::vector<std::string>& segments, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += "/" + segments[i];
  return out.empty() ? "/" : out;
}

std::string stringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += jsonQuote(items[i]);
  }
  return out + "]";
}

std::string deploymentResult(const Deployment& deployment) {
  return fmt::format(R"({{"version":{},"deploymentId":{}}})",
                     jsonQuote(isoTimestamp(deployment.version)), jsonQuote(deployment.id));
}

std::string deploymentJson(const Deployment& deployment) {
  std::string steps = "[";
  for (size_t i = 0; i < deployment.steps.size(); ++i) {
    if (i > 0) steps += ",";
    steps += R"({"actions":[)";
    for (size_t j = 0; j < deployment.steps[i].size(); ++j) {
      if (j > 0) steps += ",";
      steps += fmt::format(R"({{"action":{},"app":{}}})", jsonQuote(deployment.steps[i][j].action),
                           jsonQuote(deployment.steps[i][j].app));
    }
    steps += "]}";
  }
  steps += "]";
  std::string current = "[";
  if (deployment.currentStep >= 1 &&
      static_cast<size_t>(deployment.currentStep) <= deployment.steps.size()) {
    const auto& actions = deployment.steps[static_cast<size_t>(deployment.currentStep) - 1];
    for (size_t j = 0; j < actions.size(); ++j) {
      if (j > 0) current += ",";
      current += fmt::format(R"({{"action":{},"app":{},"readinessCheckResults":[]}})",
                             jsonQuote(actions[j].action), jsonQuote(actions[j].app));
    }
  }
  current += "]";
  return fmt::format(R"({{"id":{},"version":{},"affectedApps":{},"affectedPods":[],"steps":{},)"
                     R"("currentActions":{},"currentStep":{},"totalSteps":{}}})",
                     jsonQuote(deployment.id), jsonQuote(isoTimestamp(deployment.version)),
                     stringArray(deployment.affectedApps), steps, current, deployment.currentStep,
                     deployment.steps.size());
}

std::string lockedMessage(const std::vector<std::string>& ids) {
  std::string list = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) list += ",";
    list += fmt::format(R"({{"id":{}}})", jsonQuote(ids[i]));
  }
  list += "]";
  return fmt::format(
      R"({{"message":{},"deployments":{}}})",
      jsonQuote(fmt::format("App is locked by one or more deployments. Override with the option "
                            "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.")),
      list);
}

// Marathon's label selector, the common forms: `key`, `key==value`, `key!=value`, comma-joined.
std::vector<std::string> splitOn(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t at = text.find(separator, start);
    std::string part(
        text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    while (!part.empty() && part.back() == ' ') part.pop_back();
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (!part.empty()) out.push_back(std::move(part));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

bool labelsMatch(const App& app, std::string_view selector) {
  for (const auto& term : splitOn(selector, ',')) {
    if (auto ne = term.find("!="); ne != std::string::npos) {
      auto it = app.labels.find(term.substr(0, ne));
      if (it != app.labels.end() && it->second == term.substr(ne + 2)) return false;
    } else if (auto eq = term.find("=="); eq != std::string::npos) {
      auto it = app.labels.find(term.substr(0, eq));
      if (it == app.labels.end() || it->second != term.substr(eq + 2)) return false;
    } else if (!app.labels.contains(term)) {
      return false;
    }
  }
  return true;
}

std::string remoteIp(const HttpRequest& request) {
  auto colon = request.remoteAddress.rfind(':');
  return colon == std::string::npos ? request.remoteAddress
                                    : request.remoteAddress.substr(0, colon);
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
  scheduler_ = std::make_unique<AppScheduler>(context_, std::move(options));
}

MarathonFramework::~MarathonFramework() { *alive_ = false; }

void MarathonFramework::attached(api::FrameworkHost& host) { host_ = &host; }

void MarathonFramework::start(api::SchedulerDriver& driver) {
  driver_ = &driver;
  loadApps([this] {
    if (driver_ == nullptr) return;
    std::vector<App> apps;
    for (const auto& [id, record] : apps_) apps.push_back(record.current);
    scheduler_->start(*driver_, std::move(apps));
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
}

void MarathonFramework::stop() {
  *alive_ = false;
  if (retryLoad_) retryLoad_->cancel();
  if (driver_ != nullptr) scheduler_->stop();
  driver_ = nullptr;
  ready_ = false;
  for (auto& stream : streams_) stream.writer->end();
  streams_.clear();
}

void MarathonFramework::subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds,
                                   const v1::MasterInfo&) {
  frameworkId_ = frameworkId.value();
  scheduler_->subscribed(frameworkId);
}
void MarathonFramework::offers(std::vector<v1::Offer> offers) {
  scheduler_->offers(std::move(offers));
}
void MarathonFramework::rescind(const v1::OfferID& offerId) { scheduler_->rescind(offerId); }
void MarathonFramework::update(const v1::TaskStatus& status) { scheduler_->update(status); }
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
void MarathonFramework::disconnected() { scheduler_->disconnected(); }

// ---------------------------------------------------------------------------------------------
// The app store.

void MarathonFramework::loadApps(std::function<void()> done) {
  std::weak_ptr<bool> alive = alive_;
  auto& state = context_.state();
  state.children(
      kAppsKey, context_.executor(),
      [this, alive, done](api::Result<std::vector<std::string>> names) {
        if (alive.expired() || !*alive.lock()) return;
        if (!names) {
          context_.logger().log(
              api::Logger::Level::kError,
              fmt::format("cannot list apps (retrying in 1s): {}", names.status().message()));
          retryLoad_ = context_.executor().schedule(std::chrono::seconds(1), [this, alive, done] {
            if (alive.expired() || !*alive.lock()) return;
            loadApps(done);
          });
          return;
        }
        auto pending = std::make_shared<size_t>(names->size());
        auto failed = std::make_shared<bool>(false);
        if (*pending == 0) return done();
        for (const auto& name : *names) {
          context_.state().get(
              fmt::format("{}/{}", kAppsKey, name), context_.executor(),
              [this, alive, done, pending, failed,
               name](api::Result<std::optional<api::StateEntry>> entry) {
                if (alive.expired() || !*alive.lock()) return;
                // An app that cannot be read now: load everything again
                // rather than lead without it.
                if (!entry) *failed = true;
                if (entry && *entry) {
                  try {
                    auto object = Poco::JSON::Parser()
                                      .parse((*entry)->value)
                                      .extract<Poco::JSON::Object::Ptr>();
                    auto text = [](const Poco::Dynamic::Var& value) {
                      std::ostringstream out;
                      Poco::JSON::Stringifier::stringify(value, out);
                      return out.str();
                    };
                    auto current = appFromJson(text(object->get("current")));
                    if (current) {
                      Record record{*current, {}, (*entry)->version};
                      if (auto versions = object->getArray("versions")) {
                        for (size_t i = 0; i < versions->size(); ++i) {
                          if (auto app = appFromJson(text(versions->get(i)))) {
                            record.versions.push_back(*app);
                          }
                        }
                      }
                      apps_[current->id] = std::move(record);
                    }
                  } catch (const Poco::Exception& e) {
                    context_.logger().log(api::Logger::Level::kError,
                                          fmt::format("unreadable app '{}': {}", name, e.what()));
                  }
                }
                if (--*pending > 0) return;
                if (!*failed) return done();
                retryLoad_ =
                    context_.executor().schedule(std::chrono::seconds(1), [this, alive, done] {
                      if (alive.expired() || !*alive.lock()) return;
                      loadApps(done);
                    });
              });
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
    done(scheduler_->deploy(apps, removed, restart, force));
  };
  for (const auto& app : apps) {
    auto& record = apps_[app.id];
    if (record.versions.empty() || record.versions.front().version != app.version) {
      record.versions.insert(record.versions.begin(), app);
      if (record.versions.size() > kMaxVersions) record.versions.resize(kMaxVersions);
    }
    record.current = app;
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
                                           bool deployments) const {
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
  return out + "}";
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
      {"/v2/tasks",
       [this](const HttpRequest& request, HttpResponder respond) {
         ++requests_["tasks"];
         if (!ready_)
           return respond(errorAnswer(503, "Marathon is not ready: still loading its state"));
         auto segments = splitPath(request.path);
         if (segments.size() == 3 && segments[2] == "delete" && request.method == "POST") {
           std::vector<std::string> ids;
           try {
             auto object =
                 Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Object::Ptr>();
             auto list = object->getArray("ids");
             for (size_t i = 0; list && i < list->size(); ++i) {
               ids.push_back(list->getElement<std::string>(i));
             }
           } catch (const Poco::Exception& e) {
             return respond(errorAnswer(400, fmt::format("Invalid JSON: {}", e.displayText())));
           }
           return killTasks(request, std::move(ids), std::move(respond));
         }
         if (segments.size() != 2 || request.method != "GET") {
           return respond(errorAnswer(405, "Method not allowed"));
         }
         auto states = queryValues(request, "status");
         std::string list = "[";
         for (const auto& task : scheduler_->tasks()) {
           if (!states.empty()) {
             bool wanted = false;
             for (const auto& state : states) {
               wanted |= lower(task.state) == "task_" + lower(state);
             }
             if (!wanted) continue;
           }
           if (list.size() > 1) list += ",";
           list += taskJson(task);
         }
         respond(jsonAnswer(200, R"({"tasks":)" + list + "]}"));
       },
       true},
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
    // A host whose router cannot stream (the --zk host's forwarding router today): the module
    // runs without /v2/events rather than not at all.
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

void MarathonFramework::handleApps(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path.substr(std::string_view("/v2/apps").size()));
  const std::string& method = request.method;
  if (segments.empty()) {
    if (method == "POST") return createApp(request, std::move(respond));
    if (method == "PUT" || method == "PATCH") return putApps(request, std::move(respond));
    if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    auto embeds = queryValues(request, "embed");
    auto embedded = [&](std::string_view what) {
      return std::find(embeds.begin(), embeds.end(), what) != embeds.end();
    };
    const bool tasks = embedded("apps.tasks") || embedded("apps.failures");
    auto cmd = request.queryParam("cmd");
    auto id = request.queryParam("id");
    auto label = request.queryParam("label");
    std::string list = "[";
    for (const auto& [appId, record] : apps_) {
      const App& app = record.current;
      if (cmd && (!app.cmd || app.cmd->find(*cmd) == std::string::npos)) continue;
      if (id && app.id.find(lower(*id)) == std::string::npos) continue;
      if (label && !labelsMatch(app, *label)) continue;
      if (list.size() > 1) list += ",";
      list += fullAppJson(app, tasks, true, true);
    }
    return respond(jsonAnswer(200, R"({"apps":)" + list + "]}"));
  }
  // /v2/apps/{id}[/restart|/tasks[/{taskId}]|/versions[/{version}]]
  std::string suffix;
  size_t idLength = segments.size();
  std::string extra;
  if (segments.size() >= 2 && (segments.back() == "restart" || segments.back() == "tasks" ||
                               segments.back() == "versions")) {
    suffix = segments.back();
    idLength = segments.size() - 1;
  } else if (segments.size() >= 3 && (segments[segments.size() - 2] == "versions" ||
                                      segments[segments.size() - 2] == "tasks")) {
    suffix = segments[segments.size() - 2];
    extra = segments.back();
    idLength = segments.size() - 2;
  }
  const std::string rawId = joinId(segments, idLength);
  auto id = normaliseAppId(rawId);
  if (!id) {
    if (method == "PUT" && suffix.empty()) {
      return respond(jsonAnswer(
          422,
          AppError{422, "Object is not valid", {Violation{"/id", {"invalid app id"}}}}.toJson()));
    }
    return respond(appNotFound(rawId));
  }
  if (suffix.empty()) {
    if (method == "PUT" || method == "PATCH") return putApp(request, *id, std::move(respond));
    auto it = apps_.find(*id);
    if (it == apps_.end()) return respond(appNotFound(*id));
    if (method == "GET") {
      return respond(
          jsonAnswer(200, R"({"app":)" + fullAppJson(it->second.current, true, true, true) + "}"));
    }
    if (method == "DELETE") return deleteApp(request, *id, std::move(respond));
    return respond(errorAnswer(405, "Method not allowed"));
  }
  auto it = apps_.find(*id);
  if (it == apps_.end()) return respond(appNotFound(*id));
  if (suffix == "restart") {
    if (method != "POST") return respond(errorAnswer(405, "Method not allowed"));
    return restartApp(request, *id, std::move(respond));
  }
  if (suffix == "tasks") {
    if (!extra.empty()) {
      if (method != "DELETE") return respond(errorAnswer(405, "Method not allowed"));
      bool known = false;
      for (const auto& task : scheduler_->tasks(*id)) known |= task.id == extra;
      if (!known) return respond(errorAnswer(404, fmt::format("Task '{}' does not exist", extra)));
      return killTasks(request, {extra}, std::move(respond), true);
    }
    return appTasks(request, *id, std::move(respond));
  }
  // versions
  if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
  const auto& versions = it->second.versions;
  if (extra.empty()) {
    std::vector<std::string> list;
    for (const auto& version : versions) list.push_back(isoTimestamp(version.version));
    return respond(jsonAnswer(200, R"({"versions":)" + stringArray(list) + "}"));
  }
  auto wanted = parseIsoTimestamp(extra);
  for (const auto& version : versions) {
    if (wanted && version.version == *wanted) return respond(jsonAnswer(200, appToJson(version)));
  }
  return respond(
      errorAnswer(404, fmt::format("App '{}' does not exist in version {}", *id, extra)));
}

void MarathonFramework::createApp(const HttpRequest& request, HttpResponder respond) {
  const auto now = Clock::now();
  auto parsed = parseApp(request.body, now);
  if (auto* error = std::get_if<AppError>(&parsed)) {
    return respond(jsonAnswer(error->status, error->toJson()));
  }
  App app = std::get<App>(std::move(parsed));
  if (apps_.contains(app.id)) {
    return respond(errorAnswer(409, fmt::format("An app with id [{}] already exists.", app.id)));
  }
  for (const auto& [other, record] : apps_) {
    if (other.starts_with(app.id + "/")) {
      return respond(errorAnswer(409, fmt::format("A group with id [{}] already exists.", app.id)));
    }
  }
  const std::string uri = request.path;
  const std::string ip = remoteIp(request);
  storeAndDeploy(
      {app}, {}, {}, false,
      [this, app, uri, ip, respond = std::move(respond)](api::Result<Deployment> deployment) {
        if (!deployment) {
          if (deployment.status().code() == api::StatusCode::kAborted) {
            return respond(
                jsonAnswer(409, lockedMessage(splitOn(deployment.status().message(), ','))));
          }
          return respond(errorAnswer(503, deployment.status().message()));
        }
        auto answer = jsonAnswer(201, fullAppJson(app, true, true, true));
        answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
        answer.headers.emplace_back("Location", "/v2/apps" + app.id);
        respond(std::move(answer));
        publish("api_post_event", fmt::format(R"({{"clientIp":{},"uri":{},"appDefinition":{},)"
                                              R"("eventType":"api_post_event","timestamp":{}}})",
                                              jsonQuote(ip), jsonQuote(uri), appToJson(app),
                                              jsonQuote(isoTimestamp(Clock::now()))));
      });
}

void MarathonFramework::putApp(const HttpRequest& request, const std::string& id,
                               HttpResponder respond) {
  const auto now = Clock::now();
  const bool force = boolParam(request, "force");
  auto it = apps_.find(id);
  App app;
  const bool create = it == apps_.end();
  if (create) {
    // PUT of an unknown app creates it (the path's id wins over the body's).
    std::string body = request.body;
    try {
      auto object = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Object::Ptr>();
      object->set("id", id);
      std::ostringstream out;
      object->stringify(out);
      body = out.str();
    } catch (const Poco::Exception&) {
    }
    auto parsed = parseApp(body, now);
    if (auto* error = std::get_if<AppError>(&parsed)) {
      return respond(jsonAnswer(error->status, error->toJson()));
    }
    app = std::get<App>(std::move(parsed));
  } else {
    // {"version": "<v>"} alone rolls back to that version.
    std::optional<std::string> rollbackTo;
    try {
      auto object = Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Object::Ptr>();
      if (object->size() == 1 && object->has("version")) {
        rollbackTo = object->getValue<std::string>("version");
      }
    } catch (const Poco::Exception&) {
    }
    if (rollbackTo) {
      auto wanted = parseIsoTimestamp(*rollbackTo);
      const App* found = nullptr;
      for (const auto& version : it->second.versions) {
        if (wanted && version.version == *wanted) found = &version;
      }
      if (found == nullptr) {
        return respond(errorAnswer(
            404, fmt::format("App '{}' does not exist in version {}", id, *rollbackTo)));
      }
      app = *found;
      app.version = app.lastConfigChangeAt = app.lastScalingAt = now;
    } else {
      auto updated = updateApp(it->second.current, request.body, now);
      if (auto* error = std::get_if<AppError>(&updated)) {
        return respond(jsonAnswer(error->status, error->toJson()));
      }
      app = std::get<App>(std::move(updated));
    }
  }
  const std::string uri = request.path;
  const std::string ip = remoteIp(request);
  storeAndDeploy(
      {app}, {}, {}, force,
      [this, app, create, uri, ip,
       respond = std::move(respond)](api::Result<Deployment> deployment) {
        if (!deployment) {
          if (deployment.status().code() == api::StatusCode::kAborted) {
            return respond(
                jsonAnswer(409, lockedMessage(splitOn(deployment.status().message(), ','))));
          }
          return respond(errorAnswer(503, deployment.status().message()));
        }
        auto answer = jsonAnswer(create ? 201 : 200, deploymentResult(*deployment));
        answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
        if (create) answer.headers.emplace_back("Location", "/v2/apps" + app.id);
        respond(std::move(answer));
        publish("api_post_event", fmt::format(R"({{"clientIp":{},"uri":{},"appDefinition":{},)"
                                              R"("eventType":"api_post_event","timestamp":{}}})",
                                              jsonQuote(ip), jsonQuote(uri), appToJson(app),
                                              jsonQuote(isoTimestamp(Clock::now()))));
      });
}

void MarathonFramework::deleteApp(const HttpRequest& request, const std::string& id,
                                  HttpResponder respond) {
  storeAndDeploy({}, {id}, {}, boolParam(request, "force"),
                 [this, id, respond = std::move(respond)](api::Result<Deployment> deployment) {
                   if (!deployment) {
                     if (deployment.status().code() == api::StatusCode::kAborted) {
                       return respond(jsonAnswer(
                           409, lockedMessage(splitOn(deployment.status().message(), ','))));
                     }
                     return respond(errorAnswer(503, deployment.status().message()));
                   }
                   auto answer = jsonAnswer(200, deploymentResult(*deployment));
                   answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
                   respond(std::move(answer));
                   publish("app_terminated_event",
                           fmt::format(R"({{"appId":{},"eventType":"app_terminated_event",)"
                                       R"("timestamp":{}}})",
                                       jsonQuote(id), jsonQuote(isoTimestamp(Clock::now()))));
                 });
}

void MarathonFramework::restartApp(const HttpRequest& request, const std::string& id,
                                   HttpResponder respond) {
  App app = apps_.at(id).current;
  storeAndDeploy({app}, {}, {id}, boolParam(request, "force"),
                 [this, respond = std::move(respond)](api::Result<Deployment> deployment) {
                   if (!deployment) {
                     if (deployment.status().code() == api::StatusCode::kAborted) {
                       return respond(jsonAnswer(
                           409, lockedMessage(splitOn(deployment.status().message(), ','))));
                     }
                     return respond(errorAnswer(503, deployment.status().message()));
                   }
                   auto answer = jsonAnswer(200, deploymentResult(*deployment));
                   answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
                   respond(std::move(answer));
                 });
}

void MarathonFramework::appTasks(const HttpRequest& request, const std::string& id,
                                 HttpResponder respond) {
  if (request.method == "GET") {
    std::string list = "[";
    for (const auto& task : scheduler_->tasks(id)) {
      if (list.size() > 1) list += ",";
      list += taskJson(task);
    }
    return respond(jsonAnswer(200, R"({"tasks":)" + list + "]}"));
  }
  if (request.method != "DELETE") return respond(errorAnswer(405, "Method not allowed"));
  auto host = request.queryParam("host");
  std::vector<std::string> ids;
  for (const auto& task : scheduler_->tasks(id)) {
    if (!host || task.host == *host) ids.push_back(task.id);
  }
  killTasks(request, std::move(ids), std::move(respond));
}

void MarathonFramework::killTasks(const HttpRequest& request, std::vector<std::string> ids,
                                  HttpResponder respond, bool single) {
  const bool scale = boolParam(request, "scale");
  const bool wipe = boolParam(request, "wipe");
  std::string killed = "[";
  for (const auto& task : scheduler_->tasks()) {
    if (std::find(ids.begin(), ids.end(), task.id) == ids.end()) continue;
    if (killed.size() > 1) killed += ",";
    killed += taskJson(task);
  }
  killed += "]";
  auto result = scheduler_->killTasks(ids, scale, wipe);
  if (!result) {
    if (result.status().code() == api::StatusCode::kNotFound) {
      return respond(errorAnswer(404, result.status().message()));
    }
    return respond(errorAnswer(503, result.status().message()));
  }
  if (!scale) {
    if (single)
      return respond(jsonAnswer(200, R"({"task":)" + killed.substr(1, killed.size() - 2) + "}"));
    return respond(jsonAnswer(200, R"({"tasks":)" + killed + "}"));
  }
  // Scaled down: the changed apps are new versions, stored before the answer.
  const auto now = Clock::now();
  auto pending = std::make_shared<size_t>(result->size() + 1);
  auto failed = std::make_shared<api::Status>(api::Status::ok());
  auto finish = [pending, failed, now, respond](api::Status status) {
    if (!status && failed->isOk()) *failed = status;
    if (--*pending > 0) return;
    if (!failed->isOk()) return respond(errorAnswer(503, failed->message()));
    auto answer = jsonAnswer(200, fmt::format(R"({{"version":{},"deploymentId":{}}})",
                                              jsonQuote(isoTimestamp(now)), jsonQuote(newUuid())));
    respond(std::move(answer));
  };
  for (App app : *result) {
    app.version = app.lastScalingAt = now;
    auto& record = apps_[app.id];
    record.versions.insert(record.versions.begin(), app);
    if (record.versions.size() > kMaxVersions) record.versions.resize(kMaxVersions);
    record.current = app;
    persist(app.id, finish);
  }
  finish(api::Status::ok());
}

void MarathonFramework::handleDeployments(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path);
  if (segments.size() == 2) {
    if (request.method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    std::string list = "[";
    for (const auto& deployment : scheduler_->deployments()) {
      if (list.size() > 1) list += ",";
      list += deploymentJson(deployment);
    }
    return respond(jsonAnswer(200, list + "]"));
  }
  if (segments.size() != 3 || request.method != "DELETE") {
    return respond(errorAnswer(405, "Method not allowed"));
  }
  const std::string id = segments[2];
  auto cancelled = scheduler_->cancel(id);
  if (!cancelled) {
    return respond(errorAnswer(404, fmt::format("DeploymentPlan {} does not exist", id)));
  }
  if (boolParam(request, "force")) return respond(jsonAnswer(202, "{}"));
  // A rollback: the versions from before the deployment again; apps it created go away.
  std::vector<App> original;
  for (App app : cancelled->original) original.push_back(std::move(app));
  std::vector<std::string> removed;
  for (const auto& app : cancelled->target) {
    bool existed = false;
    for (const auto& before : cancelled->original) existed |= before.id == app.id;
    if (!existed) removed.push_back(app.id);
  }
  storeAndDeploy(std::move(original), std::move(removed), {}, true,
                 [respond = std::move(respond)](api::Result<Deployment> deployment) {
                   if (!deployment) return respond(errorAnswer(503, deployment.status().message()));
                   auto answer = jsonAnswer(200, deploymentResult(*deployment));
                   answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
                   respond(std::move(answer));
                 });
}

void MarathonFramework::handleQueue(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path);
  if (segments.size() == 2 && request.method == "GET") {
    std::string list = "[";
    for (const auto& entry : scheduler_->queue()) {
      auto it = apps_.find(entry.appId);
      if (it == apps_.end()) continue;
      if (list.size() > 1) list += ",";
      list += fmt::format(
          R"({{"app":{},"count":{},"delay":{{"timeLeftSeconds":{},"overdue":{}}},"since":{}}})",
          fullAppJson(it->second.current, false, true, true), entry.count, entry.delaySecondsLeft,
          entry.overdue, jsonQuote(isoTimestamp(entry.since)));
    }
    return respond(jsonAnswer(200, R"({"queue":)" + list + "]}"));
  }
  // DELETE /v2/queue/{app id}/delay
  if (segments.size() >= 4 && segments.back() == "delay" && request.method == "DELETE") {
    std::vector<std::string> idSegments(segments.begin() + 2, segments.end() - 1);
    auto id = normaliseAppId(joinId(idSegments, idSegments.size()));
    if (!id || !apps_.contains(*id)) return respond(appNotFound(id.value_or("")));
    if (!scheduler_->resetDelay(*id)) {
      return respond(
          errorAnswer(404, fmt::format("Application {} not found in tasks queue.", *id)));
    }
    return respond(HttpResponse{204, "application/json", {}, ""});
  }
  respond(errorAnswer(405, "Method not allowed"));
}

void MarathonFramework::putApps(const HttpRequest& request, HttpResponder respond) {
  // PUT /v2/apps: a list of apps, each created or partially updated, as one deployment.
  const auto now = Clock::now();
  Poco::JSON::Array::Ptr list;
  try {
    list = Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Array::Ptr>();
  } catch (const Poco::Exception& e) {
    return respond(jsonAnswer(
        400, AppError{400, "Invalid JSON", {Violation{"/", {e.displayText()}}}}.toJson()));
  }
  std::vector<App> apps;
  for (size_t i = 0; i < list->size(); ++i) {
    std::ostringstream text;
    Poco::JSON::Stringifier::stringify(list->get(i), text);
    std::optional<std::string> id;
    if (auto object = list->getObject(i);
        object && object->has("id") && object->get("id").isString()) {
      id = normaliseAppId(object->getValue<std::string>("id"));
    }
    auto it = id ? apps_.find(*id) : apps_.end();
    auto result = it == apps_.end() ? parseApp(text.str(), now)
                                    : updateApp(it->second.current, text.str(), now);
    if (auto* error = std::get_if<AppError>(&result)) {
      for (auto& violation : error->details) {
        violation.path = fmt::format("/({}){}", i, violation.path == "/" ? "" : violation.path);
      }
      return respond(jsonAnswer(error->status, error->toJson()));
    }
    apps.push_back(std::get<App>(std::move(result)));
  }
  storeAndDeploy(std::move(apps), {}, {}, boolParam(request, "force"),
                 [respond = std::move(respond)](api::Result<Deployment> deployment) {
                   if (!deployment) {
                     if (deployment.status().code() == api::StatusCode::kAborted) {
                       return respond(jsonAnswer(
                           409, lockedMessage(splitOn(deployment.status().message(), ','))));
                     }
                     return respond(errorAnswer(503, deployment.status().message()));
                   }
                   auto answer = jsonAnswer(200, deploymentResult(*deployment));
                   answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
                   respond(std::move(answer));
                 });
}

void MarathonFramework::handleGroups(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path.substr(std::string_view("/v2/groups").size()));
  auto root = normaliseAppId(joinId(segments, segments.size()));
  if (request.method == "DELETE" && root) {
    // Removes every app under the group (the groups themselves follow the app ids).
    std::vector<std::string> removed;
    for (const auto& [id, record] : apps_) {
      if (*root == "/" || id.starts_with(*root + "/")) removed.push_back(id);
    }
    if (removed.empty()) {
      return respond(errorAnswer(404, fmt::format("Group '{}' does not exist", *root)));
    }
    return storeAndDeploy(
        {}, removed, {}, boolParam(request, "force"),
        [respond = std::move(respond)](api::Result<Deployment> deployment) {
          if (!deployment) {
            if (deployment.status().code() == api::StatusCode::kAborted) {
              return respond(
                  jsonAnswer(409, lockedMessage(splitOn(deployment.status().message(), ','))));
            }
            return respond(errorAnswer(503, deployment.status().message()));
          }
          auto answer = jsonAnswer(200, deploymentResult(*deployment));
          answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
          respond(std::move(answer));
        });
  }
  if (request.method != "GET") {
    return respond(
        errorAnswer(405, "Only GET and DELETE of groups are supported; groups follow the app ids"));
  }
  if (!root) return respond(errorAnswer(404, "Group does not exist"));
  std::set<std::string> groups = {"/"};
  for (const auto& [id, record] : apps_) {
    for (size_t slash = id.find('/', 1); slash != std::string::npos;
         slash = id.find('/', slash + 1)) {
      groups.insert(id.substr(0, slash));
    }
  }
  if (!groups.contains(*root)) {
    return respond(errorAnswer(404, fmt::format("Group '{}' does not exist", *root)));
  }
  auto parentOf = [](const std::string& id) {
    auto slash = id.rfind('/');
    return slash == 0 ? std::string("/") : id.substr(0, slash);
  };
  std::function<std::string(const std::string&)> groupJson = [&](const std::string& group) {
    std::string apps = "[";
    Clock::time_point version{};
    for (const auto& [id, record] : apps_) {
      if (parentOf(id) != group) continue;
      if (apps.size() > 1) apps += ",";
      apps += fullAppJson(record.current, false, true, true);
      version = std::max(version, record.current.version);
    }
    std::string children = "[";
    for (const auto& child : groups) {
      if (child == "/" || parentOf(child) != group) continue;
      if (children.size() > 1) children += ",";
      children += groupJson(child);
    }
    return fmt::format(
        R"({{"id":{},"apps":{}],"groups":{}],"pods":[],"dependencies":[],"version":{}}})",
        jsonQuote(group), apps, children,
        jsonQuote(isoTimestamp(version == Clock::time_point{} ? Clock::now() : version)));
  };
  respond(jsonAnswer(200, groupJson(*root)));
}

}  // namespace tessera::modules::marathon

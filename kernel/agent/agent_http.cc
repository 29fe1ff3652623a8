// The agent's HTTP endpoints: /state, /monitor/statistics, /files/*.

#include <fmt/format.h>

#include <optional>
#include <set>
#include <span>

#include "kernel/agent/agent_core.h"
#include "kernel/agent/agent_files.h"
#include "kernel/http/authorization.h"
#include "kernel/http/http_status.h"
#include "kernel/http/mesos_json.h"

namespace tessera::kernel::agent {

using detail::kAgentVersion;
using http::JsonWriter;

namespace {

// CORS for the agent's read-only data (docs/design.md, "Agents elsewhere"): the master's web UI,
// served from the master's origin, reads an agent on another host:port. Any origin may read
// them, never with credentials (no Access-Control-Allow-Credentials: a browser sends none), and
// authentication and the sandbox ACLs still decide each request.
using Headers = std::vector<std::pair<std::string, std::string>>;
constexpr const char* kAllowOrigin = "Access-Control-Allow-Origin";

bool crossOrigin(const api::HttpRequest& request) { return request.header("Origin").has_value(); }

api::HttpResponder sharing(const api::HttpRequest& request, api::HttpResponder respond) {
  if (!crossOrigin(request)) return respond;
  return [respond = std::move(respond)](api::HttpResponse response) {
    response.headers.emplace_back(kAllowOrigin, "*");
    respond(std::move(response));
  };
}

// A download's stream whose head carries Access-Control-Allow-Origin.
class SharedStream final : public net::HttpStream {
 public:
  explicit SharedStream(std::shared_ptr<net::HttpStream> inner) : inner_(std::move(inner)) {}
  void start(int status, std::string contentType, Headers headers) override {
    headers.emplace_back(kAllowOrigin, "*");
    inner_->start(status, std::move(contentType), std::move(headers));
  }
  void startSized(int status, std::string contentType, uint64_t length, Headers headers) override {
    headers.emplace_back(kAllowOrigin, "*");
    inner_->startSized(status, std::move(contentType), length, std::move(headers));
  }
  void respond(api::HttpResponse response) override {
    response.headers.emplace_back(kAllowOrigin, "*");
    inner_->respond(std::move(response));
  }
  bool write(std::string data) override { return inner_->write(std::move(data)); }
  void whenWritten(std::function<void()> fn) override { inner_->whenWritten(std::move(fn)); }
  void setMaxQueuedBytes(size_t bytes) override { inner_->setMaxQueuedBytes(bytes); }
  void end() override { inner_->end(); }
  bool open() const override { return inner_->open(); }
  void onClose(std::function<void()> fn) override { inner_->onClose(std::move(fn)); }

 private:
  std::shared_ptr<net::HttpStream> inner_;
};

// A CORS preflight of a GET: answered without credentials (browsers send none with it; the
// HTTP authentication gate lets it through) and revealing nothing.
void preflight(const api::HttpRequest& request, const api::HttpResponder& respond) {
  const std::optional<std::string> method = request.header("Access-Control-Request-Method");
  if (!crossOrigin(request) || (method != "GET" && method != "HEAD")) {
    return respond(api::HttpResponse::error(
        405,
        "OPTIONS here is a CORS preflight of a GET or HEAD (with Origin and "
        "Access-Control-Request-Method)"));
  }
  api::HttpResponse response;
  response.status = 204;
  response.contentType.clear();
  response.headers = {{kAllowOrigin, "*"},
                      {"Access-Control-Allow-Methods", "GET, HEAD"},
                      {"Access-Control-Allow-Headers", "Authorization, Accept"},
                      {"Access-Control-Max-Age", "600"}};
  respond(std::move(response));
}

}  // namespace

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
    return [weak, keep, fn](const api::HttpRequest& request, api::HttpResponder plain) {
      api::HttpResponder respond = sharing(request, std::move(plain));
      auto self = weak.lock();
      if (!self || self->stopped_) {
        respond(http::errorResponse(api::unavailable("the agent is stopping")));
        return;
      }
      fn(*self, request, std::move(respond));
    };
  };
  auto files = [](api::HttpResponse (*serve)(const fs::path&, const api::HttpRequest&)) {
    return [serve](AgentCore& self, const api::HttpRequest& request,
                   const api::HttpResponder& respond) {
      self.authorizeSandbox(request, respond, [serve, request, respond](AgentCore& self) {
        auto root = self.sandboxRoot();
        auto status = self.strand_->runBlocking(
            [root, request, respond, serve] { respond(serve(root, request)); }, [] {});
        // A full blocking pool is the agent being unavailable for now (503), not the client's
        // rate (429).
        if (!status) respond(http::errorResponse(api::unavailable("{}", status.message())));
      });
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
      {"/files/debug",
       [](AgentCore& self, const api::HttpRequest&, const api::HttpResponder& respond) {
         respond(api::HttpResponse::json(200, self.debugJson()));
       }},
  };
  // Downloads stream: the file goes out a chunk at a time, never whole in memory.
  auto download = [weak, keep](const api::HttpRequest& request,
                               std::shared_ptr<net::HttpStream> stream) {
    if (crossOrigin(request)) stream = std::make_shared<SharedStream>(std::move(stream));
    auto refuse = [stream](api::HttpResponse response) { stream->respond(std::move(response)); };
    auto self = weak.lock();
    if (!self || self->stopped_) {
      return refuse(http::errorResponse(api::unavailable("the agent is stopping")));
    }
    self->authorizeSandbox(request, refuse, [keep, request, stream](AgentCore& self) {
      filesDownload(self.sandboxRoot(), keep, request, stream);
    });
  };
  for (const auto& prefix : prefixes) {
    for (const auto& [path, fn] : routes) {
      auto added = services_.router->addRoute("GET", prefix + path, strand_.get(), handler(fn));
      if (!added) return added.withContext("adding the agent's route '{}{}'", prefix, path);
    }
    for (const char* path : {"/files/download", "/files/download.json"}) {
      auto added = services_.router->addStreamRoute("GET", prefix + path, strand_.get(), download);
      if (!added) return added.withContext("adding the agent's route '{}{}'", prefix, path);
    }
    // Every GET above shares its answers cross-origin; its preflight is answered here.
    std::vector<std::string> shared = {"/files/download", "/files/download.json"};
    for (const auto& [path, fn] : routes) shared.push_back(path);
    for (const auto& path : shared) {
      auto added = services_.router->addRoute("OPTIONS", prefix + path, strand_.get(), &preflight);
      if (!added) return added.withContext("adding the agent's route OPTIONS '{}{}'", prefix, path);
    }
  }
  return api::Status::ok();
}

std::optional<std::string> AgentCore::sandboxUser(std::string_view path) const {
  // <root>/<agent id>/frameworks/<framework id>/executors/<executor id>/...
  const fs::path relative = fs::path(path).lexically_normal().lexically_relative(sandboxRoot());
  std::vector<std::string> parts;
  for (const auto& part : relative) parts.push_back(part.string());
  if (parts.size() < 3 || parts[0] == ".." || parts[1] != "frameworks") return std::nullopt;
  const std::string& frameworkId = parts[2];
  if (parts.size() >= 5 && parts[3] == "executors") {
    // A lone task's executor id is its task id; a group's tasks share the group's user.
    if (auto task = tasks_.find({frameworkId, parts[4]}); task != tasks_.end()) {
      const v1::TaskInfo& info = task->second->record.info();
      if (info.has_command() && info.command().has_user()) return info.command().user();
    }
    for (const auto& completed : completed_) {
      if (completed.frameworkId != frameworkId || completed.task->taskId != parts[4]) continue;
      const v1::TaskInfo& info = completed.task->record.info();
      if (info.has_command() && info.command().has_user()) return info.command().user();
    }
  }
  if (auto framework = frameworks_.find(frameworkId); framework != frameworks_.end()) {
    return framework->second.user();
  }
  if (auto framework = completedFrameworks_.find(frameworkId);
      framework != completedFrameworks_.end()) {
    return framework->second.user();
  }
  return std::nullopt;
}

void AgentCore::authorizeSandbox(const api::HttpRequest& request,
                                 std::function<void(api::HttpResponse)> refuse,
                                 std::function<void(AgentCore&)> proceed) {
  if (!services_.authorizer) return proceed(*this);
  api::AuthorizationRequest question;
  question.subject = request.header(net::kAuthenticatedPrincipalHeader);
  question.action = "ACCESS_SANDBOX";
  if (auto path = request.queryParam("path")) question.value = sandboxUser(*path);
  std::weak_ptr<AgentCore> weak = weak_from_this();
  auto keep = strand_;
  http::askAuthorizerOne(
      services_.authorizer, std::move(question), "agent",
      [weak, keep, refuse = std::move(refuse),
       proceed = std::move(proceed)](std::optional<std::string> refusal) {
        if (refusal) return refuse(http::forbidden(*refusal));
        keep->post([weak, refuse, proceed] {
          auto self = weak.lock();
          if (!self || self->stopped_) {
            return refuse(http::errorResponse(api::unavailable("the agent is stopping")));
          }
          proceed(*self);
        });
      });
}

namespace {

api::Resources taskResources(const v1::TaskInfo& info) {
  auto parsed = api::Resources::fromProto(info.resources());
  return parsed ? std::move(parsed).value() : api::Resources();
}

}  // namespace

void AgentCore::writeExecutor(JsonWriter& w, const Task& task, bool completed) const {
  const v1::TaskInfo& info = task.record.info();
  const api::Resources resources = taskResources(info);
  const http::TaskView view{
      info,      task.frameworkId, info_.id().value(), task.record.state(), task.record.role(),
      resources, task.statuses};
  const std::string command = info.has_command() ? info.command().value() : std::string();
  const std::string name =
      fmt::format("Command Executor (Task: {}) (Command: sh -c '{}')", task.taskId, command);
  const http::ExecutorView executor{
      task.taskId,      name,     task.taskId, task.record.container_id(), task.sandbox,
      task.frameworkId, resources};
  std::span<const http::TaskView> one(&view, 1);
  http::writeExecutor(w, executor, completed ? std::span<const http::TaskView>() : one,
                      completed ? one : std::span<const http::TaskView>());
}

void AgentCore::writeFramework(JsonWriter& w, const std::string& id,
                               const v1::FrameworkInfo& info) const {
  const std::vector<std::string> roles(info.roles().begin(), info.roles().end());
  w.beginObject();
  http::writeFrameworkFields(w, id, info, roles);
  w.key("executors").beginArray();
  for (const auto& [key, task] : tasks_) {
    if (task->frameworkId == id) writeExecutor(w, *task, false);
  }
  w.endArray();
  w.key("completed_executors").beginArray();
  for (const auto& done : completed_) {
    if (done.frameworkId == id) writeExecutor(w, *done.task, true);
  }
  w.endArray();
  w.endObject();
}

std::string AgentCore::stateJson() const {
  JsonWriter w;
  w.beginObject();
  w.field("version", kAgentVersion);
  w.field("start_time", startTime_);
  http::writeAgentFields(w, info_.id().value(), pid(), info_);
  w.key("resources");
  http::writeResources(w, resources_);
  http::writeReservationFields(w, resources_);
  w.field("master_hostname", masterHostname_);
  w.field("registered", link_ == LinkState::kRegistered);
  w.key("flags").beginObject();
  if (options_.flags) {
    for (const auto& [name, value] : options_.flags()) w.field(name, value);
  }
  w.endObject();
  std::set<std::string> live;
  for (const auto& [key, task] : tasks_) live.insert(task->frameworkId);
  w.key("frameworks").beginArray();
  for (const auto& id : live) {
    auto it = frameworks_.find(id);
    writeFramework(w, id, it == frameworks_.end() ? v1::FrameworkInfo() : it->second);
  }
  w.endArray();
  w.key("completed_frameworks").beginArray();
  for (const auto& [id, info] : completedFrameworks_) {
    if (!live.count(id)) writeFramework(w, id, info);
  }
  w.endArray();
  writeGc(w);
  w.endObject();
  return w.take();
}

std::string AgentCore::debugJson() const {
  JsonWriter w;
  w.beginObject();
  for (const auto& [key, task] : tasks_) {
    if (!task->sandbox.empty()) w.field(task->sandbox, task->sandbox);
  }
  w.endObject();
  return w.take();
}

void AgentCore::monitorStatistics(api::HttpResponder respond) {
  // One entry per running container; those whose usage call failed are left out.
  struct Entry {
    std::string taskId;
    std::string frameworkId;
    std::optional<v1::ResourceStatistics> statistics;
  };
  struct Gather {
    std::vector<Entry> entries;
    size_t waiting = 0;
    api::HttpResponder respond;
    void finish() {
      JsonWriter w;
      w.beginArray();
      for (const auto& entry : entries) {
        if (!entry.statistics) continue;
        w.beginObject();
        w.field("executor_id", entry.taskId);
        w.field("executor_name", fmt::format("Command Executor (Task: {})", entry.taskId));
        w.field("framework_id", entry.frameworkId);
        w.field("source", entry.taskId);
        w.key("statistics");
        http::writeV1(w, *entry.statistics);
        w.endObject();
      }
      w.endArray();
      respond(api::HttpResponse::json(200, w.take()));
    }
  };
  auto gather = std::make_shared<Gather>();
  gather->respond = std::move(respond);
  std::vector<TaskPtr> running;
  for (const auto& [key, task] : tasks_) {
    if (containerLives(task->phase()) && task->slot && task->container) running.push_back(task);
  }
  if (running.empty()) {
    gather->finish();
    return;
  }
  gather->waiting = running.size();
  for (const TaskPtr& task : running) {
    gather->entries.push_back({task->taskId, task->frameworkId, std::nullopt});
  }
  for (size_t i = 0; i < running.size(); ++i) {
    const TaskPtr& task = running[i];
    const std::string id = task->container->containerId;
    using Answer = api::Result<v1::ResourceStatistics>;
    onContainerizer<Answer>(
        *task->slot,
        [id](api::Containerizer& c, std::function<void(Answer)> done) {
          c.usage(id, std::move(done));
        },
        [gather, i](AgentCore&, Answer result) {
          if (result) gather->entries[i].statistics = std::move(result).value();
          if (--gather->waiting == 0) gather->finish();
        });
  }
}

}  // namespace tessera::kernel::agent

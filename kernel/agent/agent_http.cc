// The agent's HTTP endpoints: /state, /monitor/statistics, /files/*.

#include <fmt/format.h>

#include <set>

#include "kernel/agent/agent_core.h"
#include "kernel/agent/agent_files.h"
#include "kernel/agent/agent_resources.h"
#include "kernel/net/v1_json.h"
#include "tessera/api/json.h"

namespace tessera::kernel::agent {

using api::jsonQuote;
using detail::kAgentVersion;

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
      link_ == LinkState::kRegistered ? "true" : "false", flags, frameworks, completedFrameworks);
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
    if (containerLives(task->phase()) && task->slot && task->container) running.push_back(task);
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

}  // namespace tessera::kernel::agent

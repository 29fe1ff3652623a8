// The Chronos framework's REST API (Chronos 2.x /scheduler/... and 3.x /v1/scheduler/...).
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cmath>

#include "modules/framework_chronos/chronos_framework.h"
#include "modules/framework_chronos/chronos_util.h"
#include "modules/framework_chronos/ui_routes.h"
#include "tessera/api/json.h"

namespace tessera::modules::chronos {

namespace {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using detail::jobKey;
using detail::orElse;

HttpResponse noContent() { return HttpResponse{204, "application/json", {}, ""}; }

// Chronos's percentiles: `mean`, `median`, `75thPercentile`, `95thPercentile`, ... of `sorted`.
std::optional<double> statistic(std::vector<double> values, std::string_view which) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  if (which == "mean") {
    double sum = 0;
    for (double v : values) sum += v;
    return sum / static_cast<double>(values.size());
  }
  double quantile = 0;
  if (which == "median") {
    quantile = 0.5;
  } else if (which.ends_with("thPercentile")) {
    auto number = which.substr(0, which.size() - std::string_view("thPercentile").size());
    auto parsed = api::parseInt(number);
    if (!parsed || *parsed < 1 || *parsed > 100) return std::nullopt;
    quantile = static_cast<double>(*parsed) / 100.0;
  } else {
    return std::nullopt;
  }
  auto index = static_cast<size_t>(std::ceil(quantile * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, index == 0 ? 0 : index - 1)];
}

}  // namespace

api::Result<std::unique_ptr<api::Module>> ChronosFramework::create(
    const api::Parameters& parameters, api::Context& context) {
  auto options = ChronosOptions::parse(parameters);
  if (!options) return options.status();
  auto module = std::make_unique<ChronosFramework>(context, *options);
  ChronosFramework* self = module.get();
  for (std::string_view prefix : {"/scheduler", "/v1/scheduler"}) {
    auto added = context.http().addRoute(
        "*", prefix,
        [self](const HttpRequest& request, HttpResponder respond) {
          self->handle(request, std::move(respond));
        },
        true);
    if (!added) return added;
  }
  if (auto ui = addUiRoutes(context, uiDirectory(parameters)); !ui) return ui;
  return std::unique_ptr<api::Module>(std::move(module));
}

void ChronosFramework::handle(const HttpRequest& request, HttpResponder respond) {
  std::string_view path = request.path;
  for (std::string_view prefix : {"/v1/scheduler", "/scheduler"}) {
    if (path.starts_with(prefix)) {
      path.remove_prefix(prefix.size());
      break;
    }
  }
  while (path.starts_with("/")) path.remove_prefix(1);
  while (path.ends_with("/")) path.remove_suffix(1);
  const std::string& method = request.method;
  auto after = [&](std::string_view head) -> std::optional<std::string> {
    if (!path.starts_with(head) || path.size() <= head.size()) return std::nullopt;
    return std::string(path.substr(head.size()));
  };
  if (path == "leader" && method == "GET") {
    // Without --zk the one host leads: its advertised address, else the one asked.
    std::string leader;
    if (host_ != nullptr) leader = host_->leaderAddress().value_or(host_->advertisedAddress());
    if (leader.empty()) leader = request.header("host").value_or("");
    return respond(HttpResponse::json(200, R"({"leader":)" + api::jsonQuote(leader) + "}"));
  }
  if (!loaded_) return respond(HttpResponse::error(503, "the jobs are not loaded yet"));
  if ((path == "iso8601" || path == "dependency") && (method == "POST" || method == "PUT")) {
    return upsert(request, path == "iso8601" ? JobKind::kScheduled : JobKind::kDependent,
                  std::move(respond));
  }
  if (path == "jobs" && method == "GET") return respond(HttpResponse::json(200, jobsJson(request)));
  if (path == "jobs/search" && method == "GET") {
    return respond(HttpResponse::json(200, jobsJson(request)));
  }
  if (path == "graph/dot" && method == "GET") return respond(HttpResponse::text(200, dot()));
  if (path == "graph/csv" && method == "GET") return respond(HttpResponse::text(200, csv()));
  if (auto name = after("job/stat/"); name && method == "GET") {
    auto it = jobs_.find(*name);
    if (it == jobs_.end() || it->second->deleted) {
      return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", *name)));
    }
    return respond(HttpResponse::json(200, statJson(*it->second)));
  }
  if (auto which = after("stats/"); which && method == "GET") {
    std::string body = "[";
    for (const auto& [name, entry] : jobs_) {
      auto value = statistic(entry->durations, *which);
      if (!value) continue;
      if (body.size() > 1) body.push_back(',');
      body += R"({"jobNameLabel":)" + api::jsonQuote(name) + fmt::format(R"(,"time":{}}})", *value);
    }
    if (*which != "mean" && *which != "median" && !which->ends_with("thPercentile")) {
      return respond(HttpResponse::error(400, fmt::format("unknown statistic '{}'", *which)));
    }
    return respond(HttpResponse::json(200, body + "]"));
  }
  if (auto name = after("job/"); name && name->find('/') == std::string::npos) {
    if (method == "PUT" || method == "POST") {
      return runNow(*name, request.queryParam("arguments").value_or(""), std::move(respond));
    }
    if (method == "DELETE") return remove(*name, std::move(respond));
    if (method == "GET") {
      auto it = jobs_.find(*name);
      if (it == jobs_.end() || it->second->deleted) {
        return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", *name)));
      }
      return respond(HttpResponse::json(200, toJson(it->second->job)));
    }
  }
  if (auto name = after("task/kill/"); name && method == "DELETE") {
    return kill(*name, std::move(respond));
  }
  if (auto taskId = after("task/");
      taskId && taskId->find('/') == std::string::npos && (method == "PUT" || method == "POST")) {
    return callback(*taskId, request.body, std::move(respond));
  }
  respond(HttpResponse::error(404, fmt::format("no route {} {}", method, request.path)));
}

void ChronosFramework::upsert(const HttpRequest& request, JobKind kind, HttpResponder respond) {
  auto job = parseJob(request.body);
  if (!job) return respond(HttpResponse::error(400, job.status().message()));
  if (auto valid = validateJob(*job, kind); !valid) {
    return respond(HttpResponse::error(400, valid.message()));
  }
  auto existing = jobs_.find(job->name);
  if (existing != jobs_.end() && existing->second->deleted) {
    return respond(HttpResponse::error(409, fmt::format("job '{}' is being deleted", job->name)));
  }
  Entry scratch;
  if (auto prepared = prepareSchedule(*job, scratch, false); !prepared) {
    return respond(HttpResponse::error(400, prepared.message()));
  }
  const std::string name = job->name;
  const bool added = !graph_.contains(name);
  if (added) (void)graph_.addJob(name);
  if (auto linked = graph_.setParents(name, job->parents); !linked) {
    if (added) (void)graph_.removeJob(name);
    return respond(HttpResponse::error(400, linked.message()));
  }
  if (existing == jobs_.end()) {
    auto entry = std::make_unique<Entry>();
    entry->setJob(std::move(*job));
    entry->schedule = std::move(scratch.schedule);
    entry->cronNext = scratch.cronNext;
    jobs_[name] = std::move(entry);
  } else {
    // A replaced job keeps its counters and its runs.
    Entry& entry = *existing->second;
    Job& replaced = *job;
    replaced.successCount = entry.job.successCount;
    replaced.errorCount = entry.job.errorCount;
    replaced.lastSuccess = entry.job.lastSuccess;
    replaced.lastError = entry.job.lastError;
    replaced.errorsSinceLastSuccess = entry.job.errorsSinceLastSuccess;
    entry.setJob(std::move(replaced));
    entry.schedule = std::move(scratch.schedule);
    entry.cronNext = scratch.cronNext;
  }
  persist(name, [respond](api::Status written) {
    if (!written) {
      return respond(
          HttpResponse::error(503, fmt::format("cannot store the job: {}", written.message())));
    }
    respond(noContent());
  });
  arm(name);
}

void ChronosFramework::runNow(const std::string& name, std::string arguments,
                              HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  enqueue(*it->second, Pending{nowMillis(), 0, 0, std::move(arguments)});
  persist(name, [respond](api::Status written) {
    if (!written) return respond(HttpResponse::error(503, written.message()));
    respond(noContent());
  });
}

// Chronos's async jobs report how a run went: PUT task/{task id} with {"statusCode": 0} for a
// success, any other code for a failure. It ends the run whether or not its task has ended yet.
void ChronosFramework::callback(const std::string& taskId, std::string_view body,
                                HttpResponder respond) {
  int64_t code = 0;
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
    if (!object || !object->has("statusCode")) {
      return respond(HttpResponse::error(400, "the body needs 'statusCode'"));
    }
    code = object->getValue<int64_t>("statusCode");
  } catch (const Poco::Exception& e) {
    return respond(HttpResponse::error(400, fmt::format("bad body: {}", e.displayText())));
  }
  auto task = tasks_.find(taskId);
  auto job = task == tasks_.end() ? jobs_.end() : jobs_.find(task->second);
  if (job == jobs_.end() || job->second->deleted || job->second->runs.count(taskId) == 0) {
    return respond(HttpResponse::error(404, fmt::format("task '{}' is not running", taskId)));
  }
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(taskId);
  status.set_state(code == 0 ? v1::TASK_FINISHED : v1::TASK_FAILED);
  status.set_message(fmt::format("async status code {}", code));
  const std::string name = job->first;
  ended(*job->second, taskId, status);
  persist(name, [respond](api::Status written) {
    if (!written) return respond(HttpResponse::error(503, written.message()));
    respond(noContent());
  });
}

void ChronosFramework::kill(const std::string& name, HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  Entry& entry = *it->second;
  entry.queue.clear();
  // Runs whose task already ended (async jobs waiting for their outcome) end here, as errors.
  std::vector<std::string> waiting;
  for (auto& [taskId, run] : entry.runs) {
    if (run.awaitingCallback) waiting.push_back(taskId);
  }
  for (const auto& taskId : waiting) {
    entry.runs.at(taskId).killed = true;
    v1::TaskStatus status;
    status.mutable_task_id()->set_value(taskId);
    status.set_state(v1::TASK_KILLED);
    ended(entry, taskId, status);
  }
  for (auto& [taskId, run] : entry.runs) {
    run.killed = true;
    if (driver_ == nullptr) continue;
    std::optional<v1::AgentID> agent;
    if (!run.agentId.empty()) {
      agent.emplace();
      agent->set_value(run.agentId);
    }
    v1::TaskID id;
    id.set_value(taskId);
    driver_->kill(id, agent, nullptr);
  }
  persist(name, [respond](api::Status written) {
    if (!written) return respond(HttpResponse::error(503, written.message()));
    respond(noContent());
  });
  wantOffers();
}

void ChronosFramework::remove(const std::string& name, HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  drop(name);
  wantOffers();
  respond(noContent());
}

// Deletes a job: kills its runs, forgets it and removes its key. As Chronos does, its children
// lose it as a parent, and a child left without parents is deleted too.
void ChronosFramework::drop(const std::string& name) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) return;
  Entry& entry = *it->second;
  for (auto& [taskId, run] : entry.runs) {
    tasks_.erase(taskId);
    if (driver_ == nullptr) continue;
    std::optional<v1::AgentID> agent;
    if (!run.agentId.empty()) {
      agent.emplace();
      agent->set_value(run.agentId);
    }
    v1::TaskID id;
    id.set_value(taskId);
    driver_->kill(id, agent, nullptr);
  }
  if (entry.timer) entry.timer->cancel();
  if (entry.retryTimer) entry.retryTimer->cancel();
  entry.deleted = true;
  entry.queue.clear();
  std::vector<std::string> children;
  if (auto removed = graph_.removeJob(name); removed) children = std::move(removed).value();
  if (!entry.writing) {
    // Else the write in flight removes the key when it completes (write()).
    const uint64_t version = entry.version;
    jobs_.erase(it);
    if (version > 0) {
      context_.state().remove(
          jobKey(name), version, context_.executor(), [this, name](api::Status removed) {
            if (!removed) {
              context_.logger().error("cannot remove job '{}': {}", name, removed.message());
            }
          });
    }
  }
  context_.logger().info("job '{}' deleted", name);
  for (const auto& child : children) {
    auto found = jobs_.find(child);
    if (found == jobs_.end() || found->second->deleted) continue;
    auto& parents = found->second->job.parents;
    parents.erase(std::remove(parents.begin(), parents.end(), name), parents.end());
    if (parents.empty()) {
      drop(child);
    } else {
      persist(child);
    }
  }
}

std::string ChronosFramework::jobsJson(const HttpRequest& request) const {
  const auto name = request.queryParam("name");
  const auto command = request.queryParam("command");
  const auto any = request.queryParam("any");
  const auto limit = orElse(api::parseInt(request.queryParam("limit").value_or("-1")), -1);
  const auto offset = orElse(api::parseInt(request.queryParam("offset").value_or("0")), 0);
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  auto contains = [&](const std::string& haystack, const std::optional<std::string>& needle) {
    return !needle || lower(haystack).find(lower(*needle)) != std::string::npos;
  };
  std::string body = "[";
  int64_t index = 0;
  int64_t written = 0;
  for (const auto& [jobName, entry] : jobs_) {
    if (entry->deleted) continue;
    const Job& job = entry->job;
    if (!contains(job.name, name) || !contains(job.command, command)) continue;
    if (any && !contains(job.name, any) && !contains(job.command, any) &&
        !contains(job.description, any) && !contains(job.owner, any)) {
      continue;
    }
    if (index++ < offset) continue;
    if (limit >= 0 && written >= limit) break;
    if (written++ > 0) body.push_back(',');
    body += toJson(job);
  }
  return body + "]";
}

std::string ChronosFramework::statJson(const Entry& entry) const {
  std::string histogram;
  for (std::string_view which :
       {"75thPercentile", "95thPercentile", "98thPercentile", "99thPercentile", "median", "mean"}) {
    if (!histogram.empty()) histogram.push_back(',');
    histogram += fmt::format(R"("{}":{})", which, statistic(entry.durations, which).value_or(0.0));
  }
  return fmt::format(R"({{"histogram":{{{},"count":{}}},"taskStatHistory":[]}})", histogram,
                     entry.durations.size());
}

std::string ChronosFramework::dot() const { return graph_.toDot(); }

std::string ChronosFramework::csv() const {
  return graph_.toCsv([this](const std::string& name) {
    auto it = jobs_.find(name);
    if (it == jobs_.end()) return std::make_pair(LastStatus::kFresh, JobState::kIdle);
    const Entry& entry = *it->second;
    auto parsed = [](const std::string& text) -> std::optional<TimePoint> {
      if (text.empty()) return std::nullopt;
      auto time = parseDateTime(text, "");
      if (!time) return std::nullopt;
      return *time;
    };
    const JobState state = !entry.runs.empty()    ? JobState::kRunning
                           : !entry.queue.empty() ? JobState::kQueued
                                                  : JobState::kIdle;
    return std::make_pair(lastStatusOf(parsed(entry.job.lastSuccess), parsed(entry.job.lastError)),
                          state);
  });
}

}  // namespace tessera::modules::chronos

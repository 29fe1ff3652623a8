// The master's HTTP side: the classic JSON endpoints (/state, /tasks, ...), the operator API
// (`POST /api/v1`), `GET /master/transport`, and its metrics. Field names follow Mesos's JSON;
// everything is written once through http::JsonWriter (kernel/http/mesos_json.h), never
// serialised and parsed back.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "kernel/http/http_status.h"
#include "kernel/http/json_body.h"
#include "kernel/http/json_writer.h"
#include "kernel/http/mesos_json.h"
#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/http_server.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/strings.h"
#include "tessera/api/static_files.h"

namespace tessera::kernel::master {

namespace {

using http::JsonWriter;

// --- shared pieces ----------------------------------------------------------------------------

http::TaskView taskView(const TaskEntry& task) {
  return {task.info, task.frameworkId, task.agentId, task.state,
          task.role, task.resources,   task.statuses};
}

/// A task in the v1 operator API's `Task` shape.
void writeV1Task(JsonWriter& w, const TaskEntry& task) {
  w.beginObject();
  w.field("name", task.info.name());
  w.key("task_id");
  http::writeV1(w, task.info.task_id());
  w.key("framework_id").beginObject().field("value", task.frameworkId).endObject();
  w.key("agent_id").beginObject().field("value", task.agentId).endObject();
  w.field("state", v1::TaskState_Name(task.state));
  w.key("resources");
  http::writeResourcesArray(w, task.resources);
  w.key("statuses").beginArray();
  if (task.latestStatus) http::writeV1(w, *task.latestStatus);
  w.endArray();
  if (task.latestStatus && !task.latestStatus->uuid().empty()) {
    w.field("status_update_state", v1::TaskState_Name(task.latestStatus->state()));
    w.field("status_update_uuid", net::base64Encode(task.latestStatus->uuid()));
  }
  w.endObject();
}

/// Mesos's `TimeInfo`: `{"nanoseconds": n}`.
void writeTime(JsonWriter& w, double seconds) {
  w.beginObject().field("nanoseconds", static_cast<int64_t>(seconds * 1e9)).endObject();
}

/// What the tasks use and the offers hold, per agent and per framework.
struct Usage {
  api::Resources used;
  api::Resources offered;
};
struct UsageIndex {
  std::map<std::string, Usage> byAgent;
  std::map<std::string, Usage> byFramework;

  const Usage& agent(const std::string& id) const { return find(byAgent, id); }
  const Usage& framework(const std::string& id) const { return find(byFramework, id); }

 private:
  static const Usage& find(const std::map<std::string, Usage>& map, const std::string& id) {
    static const Usage kNone;
    auto it = map.find(id);
    return it == map.end() ? kNone : it->second;
  }
};

UsageIndex usageOf(const Core& core) {
  UsageIndex usage;
  for (const auto& [key, task] : core.tasks) {
    if (task.recovered) continue;
    usage.byAgent[task.agentId].used += task.resources;
    usage.byFramework[task.frameworkId].used += task.resources;
  }
  for (const auto& [id, offer] : core.offers) {
    usage.byAgent[offer.agentId].offered += offer.resources;
    usage.byFramework[offer.frameworkId].offered += offer.resources;
  }
  return usage;
}

/// Agents admitted in the registry that have not re-registered since this master started.
void writeRecoveredAgents(JsonWriter& w, const Core& core) {
  w.beginArray();
  for (const auto& [id, entry] : core.registry) {
    if (entry.state == RegistryState::kAdmitted && !core.agents.count(id)) {
      http::writeV1(w, entry.info);
    }
  }
  w.endArray();
}

// --- /state, step by step ---------------------------------------------------------------------

void writeMasterFields(JsonWriter& w, const Core& core) {
  w.field("version", core.masterInfo.version());
  w.field("build_date", core.options.version.buildDate);
  w.field("build_time", core.options.version.buildTime);
  w.field("build_user", core.options.version.buildUser);
  w.field("start_time", core.startTime);
  w.field("elected_time", core.startTime);
  w.field("id", core.masterId);
  w.field("pid", core.pid());
  w.field("hostname", core.options.hostname);
  w.field("cluster", core.options.cluster);
  w.field("leader", core.pid());
  w.key("leader_info");
  http::writeV1(w, core.masterInfo);
}

void writeAgentCounts(JsonWriter& w, const Core& core) {
  int64_t active = 0, deactivated = 0, unreachable = 0;
  for (const auto& [id, agent] : core.agents) {
    if (agent.status == AgentStatus::kActive) ++active;
    if (agent.status == AgentStatus::kDisconnected) ++deactivated;
  }
  for (const auto& [id, entry] : core.registry) {
    if (entry.state == RegistryState::kUnreachable) ++unreachable;
  }
  w.field("activated_slaves", active);
  w.field("deactivated_slaves", deactivated);
  w.field("unreachable_slaves", unreachable);
}

void writeFlags(JsonWriter& w, const Core& core) {
  w.key("flags").beginObject();
  if (core.options.flags && (core.view == nullptr || core.view->flags)) {
    for (const auto& [name, value] : core.options.flags()) w.field(name, value);
  }
  w.endObject();
}

// `running`: the agent's TASK_RUNNING count, written only for /state-summary.
void writeSlave(JsonWriter& w, const AgentEntry& agent, const Usage& usage,
                std::optional<int64_t> running) {
  w.beginObject();
  http::writeAgentFields(w, agent.id, agent.pid, agent.info);
  w.field("registered_time", agent.registeredTime);
  if (agent.reregisteredTime > 0) w.field("reregistered_time", agent.reregisteredTime);
  w.key("resources");
  http::writeResources(w, agent.total);
  w.key("used_resources");
  http::writeResources(w, usage.used);
  w.key("offered_resources");
  http::writeResources(w, usage.offered);
  // Static and dynamic reservations by role, as an object and as v1 `Resource` arrays.
  http::writeReservationFields(w, agent.total);
  w.field("active", agent.status == AgentStatus::kActive);
  w.field("version", agent.version);
  if (running) w.field("TASK_RUNNING", *running);
  w.endObject();
}

void writeSlaves(JsonWriter& w, const Core& core, const UsageIndex& usage, bool summary) {
  // The summary's running counts in one pass over the tasks, not one pass per agent (that was
  // agents × tasks: minutes at 20,000 agents and 400,000 tasks, all on the master's strand).
  std::unordered_map<std::string_view, int64_t> running;
  if (summary) {
    for (const auto& [key, task] : core.tasks) {
      if (task.state == v1::TASK_RUNNING) ++running[task.agentId];
    }
  }
  w.beginArray();
  for (const auto& [id, agent] : core.agents) {
    if (agent.status == AgentStatus::kUnreachable) continue;
    std::optional<int64_t> count;
    if (summary) {
      auto found = running.find(agent.id);
      count = found == running.end() ? 0 : found->second;
    }
    writeSlave(w, agent, usage.agent(id), count);
  }
  w.endArray();
}

void writeFrameworkTaskCounts(JsonWriter& w, const Core& core, const FrameworkEntry& framework) {
  int64_t running = 0, staging = 0;
  for (const auto& [key, task] : core.tasks) {
    if (task.frameworkId != framework.id) continue;
    if (task.state == v1::TASK_RUNNING) ++running;
    if (task.state == v1::TASK_STAGING) ++staging;
  }
  w.field("TASK_RUNNING", running);
  w.field("TASK_STAGING", staging);
}

// A framework's tasks, completed tasks and offers; a completed framework has only the former.
void writeFrameworkTasks(JsonWriter& w, const Core& core, const FrameworkEntry& framework,
                         bool completed) {
  std::vector<const TaskEntry*> active, unreachable;
  if (!completed) {
    for (const auto& [key, task] : core.tasks) {
      if (task.frameworkId != framework.id || !core.visible(task)) continue;
      (task.state == v1::TASK_UNREACHABLE ? unreachable : active).push_back(&task);
    }
  }
  w.key("tasks").beginArray();
  for (const TaskEntry* task : active) http::writeTask(w, taskView(*task));
  w.endArray();
  w.key("unreachable_tasks").beginArray();
  for (const TaskEntry* task : unreachable) http::writeTask(w, taskView(*task));
  w.endArray();
  w.key("completed_tasks").beginArray();
  for (const auto& task : framework.completedTasks) {
    if (core.visible(task)) http::writeTask(w, taskView(task));
  }
  w.endArray();
  w.key("offers").beginArray();
  if (!completed) {
    for (const auto& [id, offer] : core.offers) {
      if (offer.frameworkId != framework.id) continue;
      w.beginObject();
      w.field("id", id);
      w.field("framework_id", framework.id);
      w.field("slave_id", offer.agentId);
      w.key("resources");
      http::writeResources(w, offer.resources);
      w.endObject();
    }
  }
  w.endArray();
  w.key("executors").beginArray().endArray();
}

void writeFramework(JsonWriter& w, const Core& core, const FrameworkEntry& framework,
                    const Usage& usage, bool summary, bool completed) {
  w.beginObject();
  http::writeFrameworkFields(w, framework.id, framework.info, framework.roles);
  w.field("active", framework.active);
  w.field("connected", framework.connected);
  w.field("recovered", framework.recovered);
  w.field("registered_time", framework.registeredTime);
  w.field("reregistered_time", framework.reregisteredTime);
  w.field("unregistered_time", framework.unregisteredTime);
  w.key("used_resources");
  http::writeResources(w, usage.used);
  w.key("offered_resources");
  http::writeResources(w, usage.offered);
  w.key("resources");
  http::writeResources(w, usage.used + usage.offered);
  if (summary) {
    writeFrameworkTaskCounts(w, core, framework);
  } else {
    writeFrameworkTasks(w, core, framework, completed);
  }
  w.endObject();
}

// "frameworks", and without `summary` "completed_frameworks" and "unregistered_frameworks".
void writeFrameworkLists(JsonWriter& w, const Core& core, const UsageIndex& usage, bool summary) {
  w.key("frameworks").beginArray();
  for (const auto& [id, framework] : core.frameworks) {
    if (!core.visible(framework)) continue;
    writeFramework(w, core, framework, usage.framework(id), summary, false);
  }
  w.endArray();
  if (summary) return;
  w.key("completed_frameworks").beginArray();
  for (const auto& framework : core.completedFrameworks) {
    if (!core.visible(framework)) continue;
    writeFramework(w, core, framework, usage.framework(framework.id), false, true);
  }
  w.endArray();
  w.key("unregistered_frameworks").beginArray().endArray();
}

/// /tasks's query (Mesos's): `limit` (default 100), `offset`, `order` (asc|desc, default desc,
/// by the time each task was first reported), `framework_id`, `task_id`.
struct TasksQuery {
  size_t limit = 100;
  size_t offset = 0;
  bool ascending = false;
  std::optional<std::string> frameworkId;
  std::optional<std::string> taskId;
};

/// The query of `request`, or InvalidArgument naming the bad parameter.
api::Result<TasksQuery> tasksQuery(const api::HttpRequest& request) {
  TasksQuery query;
  auto count = [&](const char* name, size_t& out) -> api::Status {
    std::optional<std::string> text = request.queryParam(name);
    if (!text) return api::Status::ok();
    size_t value = 0;
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (text->empty() || error != std::errc() || end != text->data() + text->size()) {
      return api::invalidArgument("query parameter '{}': '{}' is not a non-negative integer", name,
                                  runtime::printable(*text));
    }
    out = value;
    return api::Status::ok();
  };
  if (api::Status ok = count("limit", query.limit); !ok) return ok;
  if (api::Status ok = count("offset", query.offset); !ok) return ok;
  if (std::optional<std::string> order = request.queryParam("order")) {
    if (*order != "asc" && *order != "desc") {
      return api::invalidArgument("query parameter 'order': '{}' is neither 'asc' nor 'desc'",
                                  runtime::printable(*order));
    }
    query.ascending = *order == "asc";
  }
  query.frameworkId = request.queryParam("framework_id");
  query.taskId = request.queryParam("task_id");
  return query;
}

std::string writeTasks(const Core& core, const TasksQuery& query) {
  // Active, then completed tasks, then those of frameworks that are gone (Mesos lists them
  // too); filtered, ordered by when each was first reported (a task with no status first in
  // ascending order, as Mesos's TaskComparator has it), then the page.
  std::vector<const TaskEntry*> listed;
  auto consider = [&](const TaskEntry& task) {
    if (query.frameworkId && task.frameworkId != *query.frameworkId) return;
    if (query.taskId && task.info.task_id().value() != *query.taskId) return;
    if (core.visible(task)) listed.push_back(&task);
  };
  for (const auto& [key, task] : core.tasks) consider(task);
  for (const auto& [id, framework] : core.frameworks) {
    for (const auto& task : framework.completedTasks) consider(task);
  }
  for (const auto& framework : core.completedFrameworks) {
    for (const auto& task : framework.completedTasks) consider(task);
  }
  auto started = [](const TaskEntry* task) {
    return task->statuses.empty() ? -1.0 : task->statuses.front().second;
  };
  std::stable_sort(listed.begin(), listed.end(), [&](const TaskEntry* a, const TaskEntry* b) {
    return query.ascending ? started(a) < started(b) : started(a) > started(b);
  });
  JsonWriter w;
  w.beginObject().key("tasks").beginArray();
  const size_t begin = std::min(query.offset, listed.size());
  const size_t end = begin + std::min(query.limit, listed.size() - begin);
  for (size_t i = begin; i < end; ++i) http::writeTask(w, taskView(*listed[i]));
  w.endArray().endObject();
  return w.take();
}

}  // namespace

// --- JSON views -------------------------------------------------------------------------------

std::string Core::stateJson(bool summary) const {
  const UsageIndex usage = usageOf(*this);
  JsonWriter w;
  w.beginObject();
  writeMasterFields(w, *this);
  writeAgentCounts(w, *this);
  if (!summary) writeFlags(w, *this);
  w.key("slaves");
  writeSlaves(w, *this, usage, summary);
  writeFrameworkLists(w, *this, usage, summary);
  if (!summary) w.key("orphan_tasks").beginArray().endArray();
  w.endObject();
  return w.take();
}

std::string Core::tasksJson() const {
  TasksQuery all;
  all.limit = std::numeric_limits<size_t>::max();
  return writeTasks(*this, all);
}

std::string Core::frameworksJson() const {
  // The same framework objects as /state, without the cluster-wide fields.
  JsonWriter w;
  w.beginObject();
  writeFrameworkLists(w, *this, usageOf(*this), false);
  w.endObject();
  return w.take();
}

std::string Core::agentsJson() const {
  JsonWriter w;
  w.beginObject();
  w.key("slaves");
  writeSlaves(w, *this, usageOf(*this), false);
  w.key("recovered_slaves");
  writeRecoveredAgents(w, *this);
  w.endObject();
  return w.take();
}

// --- operator API -----------------------------------------------------------------------------

namespace {

using Poco::JSON::Object;

// The `get_agents` object of GET_AGENTS and GET_STATE.
void writeGetAgents(JsonWriter& w, const Core& core) {
  const UsageIndex usage = usageOf(core);
  w.beginObject().key("agents").beginArray();
  for (const auto& [id, agent] : core.agents) {
    if (agent.status == AgentStatus::kUnreachable) continue;
    const Usage& used = usage.agent(id);
    w.beginObject();
    w.key("agent_info");
    http::writeV1(w, agent.info);
    w.field("active", agent.status == AgentStatus::kActive);
    w.field("pid", agent.pid);
    w.field("version", agent.version);
    w.key("registered_time");
    writeTime(w, agent.registeredTime);
    w.key("total_resources");
    http::writeResourcesArray(w, agent.total);
    w.key("allocated_resources");
    http::writeResourcesArray(w, used.used);
    w.key("offered_resources");
    http::writeResourcesArray(w, used.offered);
    w.endObject();
  }
  w.endArray();
  w.key("recovered_agents");
  writeRecoveredAgents(w, core);
  w.endObject();
}

// The `get_frameworks` object of GET_FRAMEWORKS and GET_STATE.
void writeGetFrameworks(JsonWriter& w, const Core& core) {
  auto one = [&](const FrameworkEntry& framework) {
    w.beginObject();
    w.key("framework_info");
    http::writeV1(w, framework.info);
    w.field("active", framework.active);
    w.field("connected", framework.connected);
    w.field("recovered", framework.recovered);
    w.key("registered_time");
    writeTime(w, framework.registeredTime);
    if (framework.reregisteredTime > 0) {
      w.key("reregistered_time");
      writeTime(w, framework.reregisteredTime);
    }
    w.endObject();
  };
  w.beginObject();
  w.key("frameworks").beginArray();
  for (const auto& [id, framework] : core.frameworks) {
    if (core.visible(framework)) one(framework);
  }
  w.endArray();
  w.key("completed_frameworks").beginArray();
  for (const auto& framework : core.completedFrameworks) {
    if (core.visible(framework)) one(framework);
  }
  w.endArray();
  w.endObject();
}

// The `get_tasks` object of GET_TASKS and GET_STATE.
void writeGetTasks(JsonWriter& w, const Core& core) {
  w.beginObject();
  w.key("tasks").beginArray();
  for (const auto& [key, task] : core.tasks) {
    if (task.state != v1::TASK_UNREACHABLE && core.visible(task)) writeV1Task(w, task);
  }
  w.endArray();
  w.key("completed_tasks").beginArray();
  for (const auto& [id, framework] : core.frameworks) {
    for (const auto& task : framework.completedTasks) {
      if (core.visible(task)) writeV1Task(w, task);
    }
  }
  for (const auto& framework : core.completedFrameworks) {
    for (const auto& task : framework.completedTasks) {
      if (core.visible(task)) writeV1Task(w, task);
    }
  }
  w.endArray();
  w.key("unreachable_tasks").beginArray();
  for (const auto& [key, task] : core.tasks) {
    if (task.state == v1::TASK_UNREACHABLE && core.visible(task)) writeV1Task(w, task);
  }
  w.endArray();
  w.endObject();
}

void writeGetHealth(JsonWriter& w, const Core&) {
  w.beginObject().field("healthy", true).endObject();
}

void writeGetVersion(JsonWriter& w, const Core& core) {
  w.beginObject().key("version_info").beginObject();
  w.field("version", core.masterInfo.version());
  w.field("build_date", core.options.version.buildDate);
  w.field("build_time", core.options.version.buildTime);
  w.field("build_user", core.options.version.buildUser);
  w.endObject().endObject();
}

void writeGetFlags(JsonWriter& w, const Core& core) {
  w.beginObject().key("flags").beginArray();
  if (core.options.flags && (core.view == nullptr || core.view->flags)) {
    for (const auto& [name, value] : core.options.flags()) {
      w.beginObject().field("name", name).field("value", value).endObject();
    }
  }
  w.endArray().endObject();
}

void writeGetMaster(JsonWriter& w, const Core& core) {
  w.beginObject();
  w.key("master_info");
  http::writeV1(w, core.masterInfo);
  w.field("start_time", core.startTime);
  w.field("elected_time", core.startTime);
  w.endObject();
}

void writeGetState(JsonWriter& w, const Core& core) {
  w.beginObject();
  w.key("get_tasks");
  writeGetTasks(w, core);
  w.key("get_executors").beginObject().endObject();
  w.key("get_frameworks");
  writeGetFrameworks(w, core);
  w.key("get_agents");
  writeGetAgents(w, core);
  w.endObject();
}

/// `{"<field>": ..., "type": type}`, the answer of every GET_* call (keys in the sorted order
/// the master has always written them in).
std::string callResponse(std::string_view type, std::string_view field,
                         const std::function<void(JsonWriter&)>& body) {
  JsonWriter w;
  w.beginObject().key(field);
  body(w);
  w.field("type", type).endObject();
  return w.take();
}

void markAgentGone(Core& core, const Object& call, api::HttpResponder respond) {
  std::string agentId;
  try {
    auto mark = call.getObject("mark_agent_gone");
    auto id = mark ? mark->getObject("agent_id") : nullptr;
    if (id) agentId = id->optValue<std::string>("value", "");
  } catch (const std::exception&) {
    // A field of the wrong type: the same 400 as a missing one.
  }
  if (agentId.empty()) {
    respond(http::errorResponse(
        api::invalidArgument("expecting 'mark_agent_gone.agent_id' to be present")));
    return;
  }
  // Answered once the registry holds the mark, as Mesos does: 200 with an empty body. A failed
  // registry write leaves the master unable to do the call now: 503, whatever the store said.
  core.markGone(agentId, [respond](const api::Status& marked) {
    if (marked) return respond(api::HttpResponse::text(200, ""));
    respond(http::errorResponse(marked.code() == api::StatusCode::kNotFound
                                    ? marked
                                    : api::unavailable("{}", marked.message())));
  });
}

void getMetrics(Core& core, const Object&, api::HttpResponder respond) {
  // Gauges are read on this strand: answer from the snapshot's own thread, never wait here.
  core.services.metrics->snapshot(std::chrono::seconds(5), [respond](runtime::MetricsSnapshot s) {
    respond(api::HttpResponse::json(
        200, callResponse("GET_METRICS", "get_metrics", [&](JsonWriter& w) {
          w.beginObject().key("metrics").beginArray();
          for (const auto& [name, value] : s.flat()) {
            w.beginObject().field("name", name).field("value", value).endObject();
          }
          w.endArray().endObject();
        })));
  });
}

/// A GET_* call answered at once from the master's state.
struct QueryCall {
  std::string_view field;  ///< the response's member: "get_agents"
  void (*write)(JsonWriter&, const Core&);
};
/// A call that answers later (it writes, or waits for another component).
using ActionCall = void (*)(Core&, const Object& call, api::HttpResponder respond);

const std::map<std::string, QueryCall, std::less<>>& queryCalls() {
  static const std::map<std::string, QueryCall, std::less<>> kCalls = {
      {"GET_HEALTH", {"get_health", writeGetHealth}},
      {"GET_VERSION", {"get_version", writeGetVersion}},
      {"GET_FLAGS", {"get_flags", writeGetFlags}},
      {"GET_AGENTS", {"get_agents", writeGetAgents}},
      {"GET_FRAMEWORKS", {"get_frameworks", writeGetFrameworks}},
      {"GET_TASKS", {"get_tasks", writeGetTasks}},
      {"GET_MASTER", {"get_master", writeGetMaster}},
      {"GET_STATE", {"get_state", writeGetState}},
  };
  return kCalls;
}

const std::map<std::string, ActionCall, std::less<>>& actionCalls() {
  static const std::map<std::string, ActionCall, std::less<>> kCalls = {
      {"MARK_AGENT_GONE", markAgentGone},
      {"GET_METRICS", getMetrics},
  };
  return kCalls;
}

}  // namespace

namespace {

/// The media type of a Content-Type header, lower-cased, without parameters or spaces.
std::string mediaType(std::string_view header) {
  std::string_view type = header.substr(0, header.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  std::string lower(type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

/// Mesos's operator API takes JSON or protobuf bodies: no Content-Type is 400, any other type
/// 415. Tessera reads JSON only, so a protobuf body is 415 too, saying so. nullopt: JSON.
std::optional<api::HttpResponse> checkOperatorContentType(const api::HttpRequest& request) {
  std::optional<std::string> header = request.header("Content-Type");
  if (!header) {
    return api::HttpResponse::error(400, "expecting 'Content-Type' to be present");
  }
  std::string type = mediaType(*header);
  if (type == "application/json") return std::nullopt;
  if (type == "application/x-protobuf") {
    return api::HttpResponse::error(
        415,
        "'Content-Type' application/x-protobuf is not supported by this master; expecting "
        "application/json");
  }
  return api::HttpResponse::error(
      415, fmt::format("expecting 'Content-Type' of application/json or application/x-protobuf, "
                       "not '{}'",
                       runtime::printable(*header, 100)));
}

}  // namespace

void Core::operatorCall(const api::HttpRequest& request, api::HttpResponder respond) {
  if (auto refused = checkOperatorContentType(request)) return respond(std::move(*refused));
  std::string type;
  Object::Ptr call;
  // Depth-bounded and UTF-8-checked before Poco's recursive parser sees it (kernel/http).
  api::Result<Poco::Dynamic::Var> parsed = http::parseJsonBody(request.body);
  if (!parsed) return respond(http::errorResponse(parsed.status().withContext("malformed call")));
  try {
    if (parsed->type() != typeid(Object::Ptr)) {
      return respond(http::errorResponse(
          api::invalidArgument("malformed call: the body is not a JSON object")));
    }
    call = parsed->extract<Object::Ptr>();
    const Poco::Dynamic::Var& typeValue = call->get("type");
    if (call->has("type") && !typeValue.isString()) {
      return respond(
          http::errorResponse(api::invalidArgument("malformed call: 'type' is not a string")));
    }
    type = call->optValue<std::string>("type", "");
  } catch (const Poco::Exception& e) {
    // Poco's what() is only an exception name; message() says what is wrong.
    return respond(http::errorResponse(
        api::invalidArgument("malformed call: {}", runtime::printable(e.message()))));
  } catch (const std::exception& e) {
    return respond(http::errorResponse(
        api::invalidArgument("malformed call: {}", runtime::printable(e.what()))));
  }
  std::optional<std::string> principal = request.header(net::kAuthenticatedPrincipalHeader);
  if (auto query = queryCalls().find(type); query != queryCalls().end()) {
    const QueryCall& handler = query->second;
    auto render = [type, handler](const Core& core) {
      return callResponse(type, handler.field, [&](JsonWriter& w) { handler.write(w, core); });
    };
    if (type != "GET_FLAGS") return renderFiltered(request, std::move(render), std::move(respond));
    api::AuthorizationRequest question;
    question.subject = principal;
    question.action = "VIEW_FLAGS";
    authorizeOne(std::move(question), [render, respond = std::move(respond)](
                                          Core& core, std::optional<std::string> refusal) {
      if (refusal) return respond(api::HttpResponse::error(403, *refusal));
      respond(api::HttpResponse::json(200, render(core)));
    });
    return;
  }
  if (auto action = actionCalls().find(type); action != actionCalls().end()) {
    // Operator calls that change things are authorized first (Mesos's ACL per call type).
    api::AuthorizationRequest question;
    question.subject = principal;
    question.action = type;
    if (type == "GET_METRICS") return action->second(*this, *call, std::move(respond));
    authorizeOne(std::move(question),
                 [handler = action->second, call, respond = std::move(respond)](
                     Core& core, std::optional<std::string> refusal) {
                   if (refusal) return respond(api::HttpResponse::error(403, *refusal));
                   handler(core, *call, std::move(respond));
                 });
    return;
  }
  respond(http::errorResponse(api::invalidArgument(
      "{}", type.empty() ? std::string("expecting 'type' to be present")
                         : fmt::format("unknown or unsupported call type '{}'", type))));
}

// --- routes and metrics ---------------------------------------------------------------------

// The web UI: `/` is its index.html, `/static/...` its other files. Reading them is blocking
// file I/O, so it runs on the blocking pool and answers from there; the strand is not held.
api::Status Core::addWebuiRoutes() {
  if (options.webuiDir.empty()) return api::Status::ok();
  auto serve = [dir = options.webuiDir, executor = strand.get()](std::string path,
                                                                 api::HttpResponder respond) {
    auto shared = std::make_shared<api::HttpResponder>(std::move(respond));
    api::Status queued = executor->runBlocking(
        [dir, path, shared] {
          api::HttpResponse response = api::serveStaticFile(dir, path);
          if (response.status == 404 && path.empty()) {
            response = api::HttpResponse::error(
                404, fmt::format("no web UI in '{}' (see --webui_dir)", dir.string()));
          }
          (*shared)(std::move(response));
        },
        [] {});
    if (!queued) (*shared)(http::errorResponse(queued));
  };
  net::Router& router = *services.router;
  if (api::Status added =
          router.addRoute("GET", "/", strand.get(),
                          [serve](const api::HttpRequest&, api::HttpResponder respond) {
                            serve("", std::move(respond));
                          });
      !added) {
    return added;
  }
  return router.addRoute(
      "GET", "/static/", strand.get(),
      [serve](const api::HttpRequest& request, api::HttpResponder respond) {
        serve(request.path.substr(std::string_view("/static/").size()), std::move(respond));
      },
      /*prefix=*/true);
}

api::Status Core::addRoutes() {
  net::Router& router = *services.router;
  std::weak_ptr<Core> weak = weak_from_this();
  auto json = [weak](std::function<std::string(const Core&)> render) {
    return [weak, render](const api::HttpRequest&, api::HttpResponder respond) {
      auto core = weak.lock();
      if (!core || core->stopped) {
        respond(http::errorResponse(api::unavailable("the master is stopping")));
        return;
      }
      respond(api::HttpResponse::json(200, render(*core)));
    };
  };
  // What a principal may see of the frameworks and tasks (VIEW_* ACLs), when authorizing.
  auto filtered = [weak](std::function<std::string(const Core&)> render) {
    return [weak, render](const api::HttpRequest& request, api::HttpResponder respond) {
      auto core = weak.lock();
      if (!core || core->stopped) {
        respond(http::errorResponse(api::unavailable("the master is stopping")));
        return;
      }
      core->renderFiltered(request, render, std::move(respond));
    };
  };
  // /tasks: its query is checked before anything is rendered or authorized.
  api::HttpHandler tasksRoute = [weak](const api::HttpRequest& request,
                                       api::HttpResponder respond) {
    auto core = weak.lock();
    if (!core || core->stopped) {
      return respond(http::errorResponse(api::unavailable("the master is stopping")));
    }
    api::Result<TasksQuery> query = tasksQuery(request);
    if (!query) return respond(http::errorResponse(query.status()));
    core->renderFiltered(
        request, [query = *query](const Core& core) { return writeTasks(core, query); },
        std::move(respond));
  };
  std::vector<std::pair<std::string, api::HttpHandler>> gets = {
      {"/master/transport", json([](const Core& core) {
         return http::writeJson([&](JsonWriter& w) {
           w.beginObject().field("port", core.transportPortValue).endObject();
         });
       })},
      {"/state", filtered([](const Core& core) { return core.stateJson(false); })},
      {"/master/state", filtered([](const Core& core) { return core.stateJson(false); })},
      {"/state.json", filtered([](const Core& core) { return core.stateJson(false); })},
      {"/master/state.json", filtered([](const Core& core) { return core.stateJson(false); })},
      {"/state-summary", filtered([](const Core& core) { return core.stateJson(true); })},
      {"/master/state-summary", filtered([](const Core& core) { return core.stateJson(true); })},
      {"/tasks", tasksRoute},
      {"/master/tasks", tasksRoute},
      {"/frameworks", filtered([](const Core& core) { return core.frameworksJson(); })},
      {"/master/frameworks", filtered([](const Core& core) { return core.frameworksJson(); })},
      {"/slaves", json([](const Core& core) { return core.agentsJson(); })},
      {"/master/slaves", json([](const Core& core) { return core.agentsJson(); })},
      {"/agents", json([](const Core& core) { return core.agentsJson(); })},
      {"/master/agents", json([](const Core& core) { return core.agentsJson(); })},
  };
  for (auto& [path, handler] : gets) {
    if (api::Status added = router.addRoute("GET", path, strand.get(), std::move(handler));
        !added) {
      return added;
    }
  }
  api::HttpHandler redirect = [weak](const api::HttpRequest&, api::HttpResponder respond) {
    auto core = weak.lock();
    if (!core) return respond(http::errorResponse(api::unavailable("the master is stopping")));
    api::HttpResponse response;
    response.status = 307;
    response.headers.emplace_back(
        "Location", fmt::format("//{}:{}", core->options.hostname, core->options.httpPort));
    respond(std::move(response));
  };
  if (api::Status added = router.addRoute("GET", "/master/redirect", strand.get(), redirect);
      !added) {
    return added;
  }
  if (api::Status added = router.addRoute("GET", "/redirect", strand.get(), redirect); !added) {
    return added;
  }
  if (api::Status added = addWebuiRoutes(); !added) return added;
  if (api::Status added = addPolicyRoutes(); !added) return added;
  if (api::Status added = addTeardownRoutes(); !added) return added;
  if (api::Status added = router.addRoute(
          "POST", "/api/v1", strand.get(),
          [weak](const api::HttpRequest& request, api::HttpResponder respond) {
            auto core = weak.lock();
            if (!core || core->stopped) {
              return respond(http::errorResponse(api::unavailable("the master is stopping")));
            }
            core->operatorCall(request, std::move(respond));
          });
      !added) {
    return added;
  }
  return router.addStreamRoute(
      "POST", "/api/v1/scheduler", strand.get(),
      [weak](const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
        auto core = weak.lock();
        if (!core || core->stopped) {
          return detail::answer(stream, 503, "the master is stopping");
        }
        core->schedulerCall(request, std::move(stream));
      });
}

void Core::addMetrics() {
  runtime::MetricsRegistry& registry = *services.metrics;
  std::weak_ptr<Core> weak = weak_from_this();
  auto gauge = [&](const std::string& name, std::function<double(const Core&)> read) {
    registry.gauge(
        fmt::format("master/{}", name), strand.get(),
        [weak, read] {
          auto core = weak.lock();
          return core ? read(*core) : 0.0;
        },
        this);
  };
  gauge("elected", [](const Core&) { return 1.0; });
  gauge("uptime_secs", [](const Core& core) { return nowSeconds() - core.startTime; });
  auto agentsIn = [](AgentStatus status) {
    return [status](const Core& core) {
      double n = 0;
      for (const auto& [id, agent] : core.agents) n += agent.status == status ? 1 : 0;
      return n;
    };
  };
  gauge("slaves_active", agentsIn(AgentStatus::kActive));
  gauge("agents_active", agentsIn(AgentStatus::kActive));
  gauge("slaves_inactive", agentsIn(AgentStatus::kDisconnected));
  gauge("agents_inactive", agentsIn(AgentStatus::kDisconnected));
  gauge("agents_connected", agentsIn(AgentStatus::kActive));
  gauge("agents_disconnected", agentsIn(AgentStatus::kDisconnected));
  auto unreachable = [](const Core& core) {
    double n = 0;
    for (const auto& [id, entry] : core.registry) {
      n += entry.state == RegistryState::kUnreachable ? 1 : 0;
    }
    return n;
  };
  gauge("slaves_unreachable", unreachable);
  gauge("agents_unreachable", unreachable);
  auto frameworksActive = [](bool active) {
    return [active](const Core& core) {
      double n = 0;
      for (const auto& [id, framework] : core.frameworks) n += framework.active == active ? 1 : 0;
      return n;
    };
  };
  gauge("frameworks_active", frameworksActive(true));
  gauge("frameworks_inactive", frameworksActive(false));
  gauge("frameworks_connected", [](const Core& core) {
    double n = 0;
    for (const auto& [id, framework] : core.frameworks) n += framework.connected ? 1 : 0;
    return n;
  });
  gauge("outstanding_offers", [](const Core& core) { return double(core.offers.size()); });
  const std::vector<std::pair<std::string, v1::TaskState>> states = {
      {"staging", v1::TASK_STAGING},
      {"starting", v1::TASK_STARTING},
      {"running", v1::TASK_RUNNING},
      {"killing", v1::TASK_KILLING},
      {"finished", v1::TASK_FINISHED},
      {"failed", v1::TASK_FAILED},
      {"killed", v1::TASK_KILLED},
      {"lost", v1::TASK_LOST},
      {"error", v1::TASK_ERROR},
      {"dropped", v1::TASK_DROPPED},
      {"unreachable", v1::TASK_UNREACHABLE},
      {"gone", v1::TASK_GONE}};
  for (const auto& [name, state] : states) {
    gauge(fmt::format("tasks_{}", name), [state = state](const Core& core) {
      double n = 0;
      for (const auto& [key, task] : core.tasks) n += task.state == state ? 1 : 0;
      if (isTerminal(state)) {
        for (const auto& [id, framework] : core.frameworks) {
          for (const auto& task : framework.completedTasks) n += task.state == state ? 1 : 0;
        }
      }
      return n;
    });
  }
  // Counters exist from the start, at zero, so dashboards see them.
  for (const char* name :
       {"messages_register_agent", "messages_reregister_agent", "messages_status_update",
        "messages_launch_tasks", "messages_decline_offers", "messages_revive_offers",
        "messages_suppress_offers", "messages_kill_task", "messages_status_update_acknowledgement",
        "messages_reconcile_tasks", "messages_framework_to_executor", "messages_register_framework",
        "messages_unregister_framework", "offers_sent", "offers_declined", "offers_accepted",
        "offers_rescinded", "slave_removals", "invalid_messages"}) {
    counter(name);
  }
}

}  // namespace tessera::kernel::master

// The master's HTTP side: the classic JSON endpoints (/state, /tasks, ...), the operator API
// (`POST /api/v1`), `GET /master/transport`, and its metrics. Field names follow Mesos's JSON.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <sstream>

#include "kernel/master/master_core.h"
#include "kernel/net/v1_json.h"

namespace tessera::kernel::master {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string stringify(const Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

/// A v1 message as a Poco value, for embedding.
Poco::Dynamic::Var v1Value(const google::protobuf::Message& message) {
  Poco::JSON::Parser parser;
  return parser.parse(net::messageToV1Json(message));
}

/// Mesos's resources-as-object form: `{"cpus":1,"mem":128,"disk":0,"gpus":0,"ports":"[1-2]"}`.
Object::Ptr resourcesObject(const api::Resources& resources) {
  Object::Ptr object = new Object;
  object->set("cpus", 0.0);
  object->set("mem", 0.0);
  object->set("disk", 0.0);
  object->set("gpus", 0.0);
  const api::Resources flat = resources.flatten();
  for (const auto& entry : flat.entries()) {
    switch (entry.type) {
      case api::ResourceType::kScalar:
        object->set(entry.name, flat.scalar(entry.name));
        break;
      case api::ResourceType::kRanges: {
        std::string text = "[";
        for (size_t i = 0; i < entry.ranges.size(); ++i) {
          if (i > 0) text += ", ";
          text += fmt::format("{}-{}", entry.ranges[i].begin, entry.ranges[i].end);
        }
        object->set(entry.name, text + "]");
        break;
      }
      case api::ResourceType::kSet: {
        std::string text = "{";
        for (size_t i = 0; i < entry.items.size(); ++i) {
          if (i > 0) text += ", ";
          text += entry.items[i];
        }
        object->set(entry.name, text + "}");
        break;
      }
    }
  }
  return object;
}

Object::Ptr attributesObject(const v1::AgentInfo& info) {
  Object::Ptr object = new Object;
  for (const auto& attribute : info.attributes()) {
    switch (attribute.type()) {
      case v1::Value::SCALAR:
        object->set(attribute.name(), attribute.scalar().value());
        break;
      case v1::Value::TEXT:
        object->set(attribute.name(), attribute.text().value());
        break;
      default:
        object->set(attribute.name(), v1Value(attribute));
    }
  }
  return object;
}

std::string stateName(v1::TaskState state) { return v1::TaskState_Name(state); }

Object::Ptr taskObject(const TaskEntry& task) {
  Object::Ptr object = new Object;
  object->set("id", task.info.task_id().value());
  object->set("name", task.info.name());
  object->set("framework_id", task.frameworkId);
  object->set("executor_id", task.info.executor().executor_id().value());
  object->set("slave_id", task.agentId);
  object->set("agent_id", task.agentId);
  object->set("state", stateName(task.state));
  object->set("role", task.role);
  object->set("resources", resourcesObject(task.resources));
  Array::Ptr statuses = new Array;
  for (const auto& [state, timestamp] : task.statuses) {
    Object::Ptr status = new Object;
    status->set("state", stateName(state));
    status->set("timestamp", timestamp);
    statuses->add(status);
  }
  object->set("statuses", statuses);
  if (task.info.has_labels()) object->set("labels", v1Value(task.info.labels()));
  return object;
}

/// A task in the v1 operator API's `Task` shape.
Object::Ptr v1TaskObject(const TaskEntry& task) {
  Object::Ptr object = new Object;
  object->set("name", task.info.name());
  object->set("task_id", v1Value(task.info.task_id()));
  Object::Ptr framework = new Object;
  framework->set("value", task.frameworkId);
  object->set("framework_id", framework);
  Object::Ptr agent = new Object;
  agent->set("value", task.agentId);
  object->set("agent_id", agent);
  object->set("state", stateName(task.state));
  Poco::JSON::Parser parser;
  object->set("resources", parser.parse(task.resources.toJson()));
  Array::Ptr statuses = new Array;
  if (task.latestStatus) statuses->add(v1Value(*task.latestStatus));
  object->set("statuses", statuses);
  if (task.latestStatus && !task.latestStatus->uuid().empty()) {
    object->set("status_update_state", stateName(task.latestStatus->state()));
    object->set("status_update_uuid", net::base64Encode(task.latestStatus->uuid()));
  }
  return object;
}

Object::Ptr timeObject(double seconds) {
  Object::Ptr object = new Object;
  object->set("nanoseconds", static_cast<int64_t>(seconds * 1e9));
  return object;
}

}  // namespace

// --- JSON views -------------------------------------------------------------------------------

namespace {

struct Usage {
  api::Resources used;
  api::Resources offered;
};

}  // namespace

std::string Core::stateJson(bool summary) const {
  std::map<std::string, Usage> byAgent;
  std::map<std::string, Usage> byFramework;
  for (const auto& [key, task] : tasks) {
    if (task.recovered) continue;
    byAgent[task.agentId].used += task.resources;
    byFramework[task.frameworkId].used += task.resources;
  }
  for (const auto& [id, offer] : offers) {
    byAgent[offer.agentId].offered += offer.resources;
    byFramework[offer.frameworkId].offered += offer.resources;
  }

  Object::Ptr state = new Object;
  state->set("version", masterInfo.version());
  state->set("build_date", options.version.buildDate);
  state->set("build_time", options.version.buildTime);
  state->set("build_user", options.version.buildUser);
  state->set("start_time", startTime);
  state->set("elected_time", startTime);
  state->set("id", masterId);
  state->set("pid", pid());
  state->set("hostname", options.hostname);
  state->set("cluster", options.cluster);
  state->set("leader", pid());
  state->set("leader_info", v1Value(masterInfo));
  int64_t active = 0, deactivated = 0, unreachable = 0;
  for (const auto& [id, agent] : agents) {
    if (agent.status == AgentStatus::kActive) ++active;
    if (agent.status == AgentStatus::kDisconnected) ++deactivated;
  }
  for (const auto& [id, entry] : registry) {
    if (entry.state == RegistryState::kUnreachable) ++unreachable;
  }
  state->set("activated_slaves", active);
  state->set("deactivated_slaves", deactivated);
  state->set("unreachable_slaves", unreachable);
  if (!summary) {
    Object::Ptr flags = new Object;
    if (options.flags) {
      for (const auto& [name, value] : options.flags()) flags->set(name, value);
    }
    state->set("flags", flags);
  }

  Array::Ptr slaves = new Array;
  for (const auto& [id, agent] : agents) {
    if (agent.status == AgentStatus::kUnreachable) continue;
    Object::Ptr slave = new Object;
    const Usage& usage = byAgent[id];
    slave->set("id", id);
    slave->set("pid", agent.pid);
    slave->set("hostname", agent.info.hostname());
    slave->set("port", agent.info.port());
    slave->set("registered_time", agent.registeredTime);
    if (agent.reregisteredTime > 0) slave->set("reregistered_time", agent.reregisteredTime);
    slave->set("resources", resourcesObject(agent.total));
    slave->set("used_resources", resourcesObject(usage.used));
    slave->set("offered_resources", resourcesObject(usage.offered));
    slave->set("reserved_resources", Object::Ptr(new Object));
    slave->set("unreserved_resources", resourcesObject(agent.total.unreserved()));
    slave->set("attributes", attributesObject(agent.info));
    slave->set("active", agent.status == AgentStatus::kActive);
    slave->set("version", agent.version);
    if (summary) {
      int64_t running = 0;
      for (const auto& [key, task] : tasks) {
        if (task.agentId == id && task.state == v1::TASK_RUNNING) ++running;
      }
      slave->set("TASK_RUNNING", running);
    }
    slaves->add(slave);
  }
  state->set("slaves", slaves);

  auto frameworkObject = [&](const FrameworkEntry& framework, bool completed) {
    Object::Ptr object = new Object;
    const Usage& usage = byFramework[framework.id];
    object->set("id", framework.id);
    object->set("name", framework.info.name());
    object->set("user", framework.info.user());
    object->set("hostname", framework.info.hostname());
    object->set("principal", framework.info.principal());
    object->set("webui_url", framework.info.webui_url());
    object->set("failover_timeout", framework.info.failover_timeout());
    object->set("checkpoint", framework.info.checkpoint());
    object->set("active", framework.active);
    object->set("connected", framework.connected);
    object->set("recovered", framework.recovered);
    Array::Ptr roles = new Array;
    for (const auto& role : framework.roles) roles->add(role);
    object->set("roles", roles);
    object->set("role", framework.roles.empty() ? std::string("*") : framework.roles.front());
    object->set("registered_time", framework.registeredTime);
    object->set("reregistered_time", framework.reregisteredTime);
    object->set("unregistered_time", framework.unregisteredTime);
    Array::Ptr capabilities = new Array;
    for (const auto& capability : framework.info.capabilities()) {
      capabilities->add(v1::FrameworkInfo::Capability::Type_Name(capability.type()));
    }
    object->set("capabilities", capabilities);
    object->set("used_resources", resourcesObject(usage.used));
    object->set("offered_resources", resourcesObject(usage.offered));
    object->set("resources", resourcesObject(usage.used + usage.offered));
    if (summary) {
      int64_t running = 0, staging = 0;
      for (const auto& [key, task] : tasks) {
        if (task.frameworkId != framework.id) continue;
        if (task.state == v1::TASK_RUNNING) ++running;
        if (task.state == v1::TASK_STAGING) ++staging;
      }
      object->set("TASK_RUNNING", running);
      object->set("TASK_STAGING", staging);
      return object;
    }
    Array::Ptr active = new Array;
    Array::Ptr unreachableTasks = new Array;
    if (!completed) {
      for (const auto& [key, task] : tasks) {
        if (task.frameworkId != framework.id) continue;
        (task.state == v1::TASK_UNREACHABLE ? unreachableTasks : active)->add(taskObject(task));
      }
    }
    object->set("tasks", active);
    object->set("unreachable_tasks", unreachableTasks);
    Array::Ptr done = new Array;
    for (const auto& task : framework.completedTasks) done->add(taskObject(task));
    object->set("completed_tasks", done);
    Array::Ptr offered = new Array;
    if (!completed) {
      for (const auto& [id, offer] : offers) {
        if (offer.frameworkId != framework.id) continue;
        Object::Ptr entry = new Object;
        entry->set("id", id);
        entry->set("framework_id", framework.id);
        entry->set("slave_id", offer.agentId);
        entry->set("resources", resourcesObject(offer.resources));
        offered->add(entry);
      }
    }
    object->set("offers", offered);
    object->set("executors", Array::Ptr(new Array));
    return object;
  };

  Array::Ptr current = new Array;
  for (const auto& [id, framework] : frameworks) current->add(frameworkObject(framework, false));
  state->set("frameworks", current);
  if (!summary) {
    Array::Ptr completed = new Array;
    for (const auto& framework : completedFrameworks) {
      completed->add(frameworkObject(framework, true));
    }
    state->set("completed_frameworks", completed);
    Array::Ptr unregistered = new Array;
    state->set("unregistered_frameworks", unregistered);
    state->set("orphan_tasks", Array::Ptr(new Array));
  }
  return stringify(state);
}

std::string Core::tasksJson() const {
  Array::Ptr array = new Array;
  for (const auto& [key, task] : tasks) array->add(taskObject(task));
  for (const auto& [id, framework] : frameworks) {
    for (const auto& task : framework.completedTasks) array->add(taskObject(task));
  }
  // Mesos lists the tasks of frameworks that are gone too.
  for (const auto& framework : completedFrameworks) {
    for (const auto& task : framework.completedTasks) array->add(taskObject(task));
  }
  Object::Ptr object = new Object;
  object->set("tasks", array);
  return stringify(object);
}

std::string Core::frameworksJson() const {
  // The same framework objects as /state, without the cluster-wide fields.
  Poco::JSON::Parser parser;
  auto state = parser.parse(stateJson(false)).extract<Object::Ptr>();
  Object::Ptr object = new Object;
  object->set("frameworks", state->get("frameworks"));
  object->set("completed_frameworks", state->get("completed_frameworks"));
  object->set("unregistered_frameworks", state->get("unregistered_frameworks"));
  return stringify(object);
}

std::string Core::agentsJson() const {
  Poco::JSON::Parser parser;
  auto state = parser.parse(stateJson(false)).extract<Object::Ptr>();
  Object::Ptr object = new Object;
  object->set("slaves", state->get("slaves"));
  Array::Ptr recovered = new Array;
  for (const auto& [id, entry] : registry) {
    if (entry.state == RegistryState::kAdmitted && !agents.count(id)) {
      recovered->add(v1Value(entry.info));
    }
  }
  object->set("recovered_slaves", recovered);
  return stringify(object);
}

// --- operator API -----------------------------------------------------------------------------

void Core::operatorCall(const api::HttpRequest& request, api::HttpResponder respond) {
  std::string type;
  Object::Ptr call;
  try {
    Poco::JSON::Parser parser;
    call = parser.parse(request.body).extract<Object::Ptr>();
    type = call->optValue<std::string>("type", "");
  } catch (const std::exception& e) {
    respond(api::HttpResponse::error(400, fmt::format("malformed call: {}", e.what())));
    return;
  }
  Object::Ptr response = new Object;
  response->set("type", type);
  auto reply = [&] { respond(api::HttpResponse::json(200, stringify(response))); };
  Poco::JSON::Parser parser;

  auto getAgents = [&] {
    std::map<std::string, Usage> byAgent;
    for (const auto& [key, task] : tasks) {
      if (!task.recovered) byAgent[task.agentId].used += task.resources;
    }
    for (const auto& [id, offer] : offers) byAgent[offer.agentId].offered += offer.resources;
    Object::Ptr object = new Object;
    Array::Ptr array = new Array;
    for (const auto& [id, agent] : agents) {
      if (agent.status == AgentStatus::kUnreachable) continue;
      Object::Ptr entry = new Object;
      entry->set("agent_info", v1Value(agent.info));
      entry->set("active", agent.status == AgentStatus::kActive);
      entry->set("pid", agent.pid);
      entry->set("version", agent.version);
      entry->set("registered_time", timeObject(agent.registeredTime));
      entry->set("total_resources", parser.parse(agent.total.toJson()));
      entry->set("allocated_resources", parser.parse(byAgent[id].used.toJson()));
      entry->set("offered_resources", parser.parse(byAgent[id].offered.toJson()));
      array->add(entry);
    }
    object->set("agents", array);
    Array::Ptr recovered = new Array;
    for (const auto& [id, entry] : registry) {
      if (entry.state == RegistryState::kAdmitted && !agents.count(id)) {
        recovered->add(v1Value(entry.info));
      }
    }
    object->set("recovered_agents", recovered);
    return object;
  };
  auto getFrameworks = [&] {
    auto one = [&](const FrameworkEntry& framework) {
      Object::Ptr entry = new Object;
      entry->set("framework_info", v1Value(framework.info));
      entry->set("active", framework.active);
      entry->set("connected", framework.connected);
      entry->set("recovered", framework.recovered);
      entry->set("registered_time", timeObject(framework.registeredTime));
      if (framework.reregisteredTime > 0) {
        entry->set("reregistered_time", timeObject(framework.reregisteredTime));
      }
      return entry;
    };
    Object::Ptr object = new Object;
    Array::Ptr current = new Array;
    for (const auto& [id, framework] : frameworks) current->add(one(framework));
    object->set("frameworks", current);
    Array::Ptr completed = new Array;
    for (const auto& framework : completedFrameworks) completed->add(one(framework));
    object->set("completed_frameworks", completed);
    return object;
  };
  auto getTasks = [&] {
    Object::Ptr object = new Object;
    Array::Ptr current = new Array;
    Array::Ptr unreachable = new Array;
    for (const auto& [key, task] : tasks) {
      (task.state == v1::TASK_UNREACHABLE ? unreachable : current)->add(v1TaskObject(task));
    }
    Array::Ptr completed = new Array;
    for (const auto& [id, framework] : frameworks) {
      for (const auto& task : framework.completedTasks) completed->add(v1TaskObject(task));
    }
    for (const auto& framework : completedFrameworks) {
      for (const auto& task : framework.completedTasks) completed->add(v1TaskObject(task));
    }
    object->set("tasks", current);
    object->set("completed_tasks", completed);
    object->set("unreachable_tasks", unreachable);
    return object;
  };

  if (type == "GET_HEALTH") {
    Object::Ptr health = new Object;
    health->set("healthy", true);
    response->set("get_health", health);
    return reply();
  }
  if (type == "GET_VERSION") {
    Object::Ptr info = new Object;
    info->set("version", masterInfo.version());
    info->set("build_date", options.version.buildDate);
    info->set("build_time", options.version.buildTime);
    info->set("build_user", options.version.buildUser);
    Object::Ptr version = new Object;
    version->set("version_info", info);
    response->set("get_version", version);
    return reply();
  }
  if (type == "GET_FLAGS") {
    Array::Ptr flags = new Array;
    if (options.flags) {
      for (const auto& [name, value] : options.flags()) {
        Object::Ptr flag = new Object;
        flag->set("name", name);
        flag->set("value", value);
        flags->add(flag);
      }
    }
    Object::Ptr object = new Object;
    object->set("flags", flags);
    response->set("get_flags", object);
    return reply();
  }
  if (type == "GET_AGENTS") {
    response->set("get_agents", getAgents());
    return reply();
  }
  if (type == "GET_FRAMEWORKS") {
    response->set("get_frameworks", getFrameworks());
    return reply();
  }
  if (type == "GET_TASKS") {
    response->set("get_tasks", getTasks());
    return reply();
  }
  if (type == "GET_MASTER") {
    Object::Ptr object = new Object;
    object->set("master_info", v1Value(masterInfo));
    object->set("start_time", startTime);
    object->set("elected_time", startTime);
    response->set("get_master", object);
    return reply();
  }
  if (type == "GET_STATE") {
    Object::Ptr object = new Object;
    object->set("get_tasks", getTasks());
    object->set("get_executors", Object::Ptr(new Object));
    object->set("get_frameworks", getFrameworks());
    object->set("get_agents", getAgents());
    response->set("get_state", object);
    return reply();
  }
  if (type == "MARK_AGENT_GONE") {
    std::string agentId;
    try {
      auto mark = call->getObject("mark_agent_gone");
      auto id = mark ? mark->getObject("agent_id") : nullptr;
      if (id) agentId = id->optValue<std::string>("value", "");
    } catch (const std::exception&) {
      // A field of the wrong type: the same 400 as a missing one.
    }
    if (agentId.empty()) {
      respond(api::HttpResponse::error(400, "expecting 'mark_agent_gone.agent_id' to be present"));
      return;
    }
    // Answered once the registry holds the mark, as Mesos does: 200 with an empty body.
    markGone(agentId, [respond](const api::Status& marked) {
      if (marked) {
        respond(api::HttpResponse::text(200, ""));
      } else if (marked.code() == api::StatusCode::kNotFound) {
        respond(api::HttpResponse::error(404, marked.message()));
      } else {
        respond(api::HttpResponse::error(503, marked.message()));
      }
    });
    return;
  }
  if (type == "GET_METRICS") {
    // Gauges are read on this strand: answer from the snapshot's own thread, never wait here.
    services.metrics->snapshot(std::chrono::seconds(5), [respond](runtime::MetricsSnapshot s) {
      Array::Ptr metrics = new Array;
      for (const auto& [name, value] : s.flat()) {
        Object::Ptr metric = new Object;
        metric->set("name", name);
        metric->set("value", value);
        metrics->add(metric);
      }
      Object::Ptr object = new Object;
      object->set("metrics", metrics);
      Object::Ptr response = new Object;
      response->set("type", std::string("GET_METRICS"));
      response->set("get_metrics", object);
      respond(api::HttpResponse::json(200, stringify(response)));
    });
    return;
  }
  respond(api::HttpResponse::error(
      400, type.empty() ? std::string("expecting 'type' to be present")
                        : fmt::format("unknown or unsupported call type '{}'", type)));
}

// --- routes and metrics ---------------------------------------------------------------------

api::Status Core::addRoutes() {
  net::Router& router = *services.router;
  std::weak_ptr<Core> weak = weak_from_this();
  auto json = [weak](std::function<std::string(const Core&)> render) {
    return [weak, render](const api::HttpRequest&, api::HttpResponder respond) {
      auto core = weak.lock();
      if (!core || core->stopped) {
        respond(api::HttpResponse::error(503, "the master is stopping"));
        return;
      }
      respond(api::HttpResponse::json(200, render(*core)));
    };
  };
  std::vector<std::pair<std::string, api::HttpHandler>> gets = {
      {"/master/transport", json([](const Core& core) {
         return fmt::format(R"({{"port":{}}})", core.transportPortValue);
       })},
      {"/state", json([](const Core& core) { return core.stateJson(false); })},
      {"/master/state", json([](const Core& core) { return core.stateJson(false); })},
      {"/state.json", json([](const Core& core) { return core.stateJson(false); })},
      {"/master/state.json", json([](const Core& core) { return core.stateJson(false); })},
      {"/state-summary", json([](const Core& core) { return core.stateJson(true); })},
      {"/master/state-summary", json([](const Core& core) { return core.stateJson(true); })},
      {"/tasks", json([](const Core& core) { return core.tasksJson(); })},
      {"/master/tasks", json([](const Core& core) { return core.tasksJson(); })},
      {"/frameworks", json([](const Core& core) { return core.frameworksJson(); })},
      {"/master/frameworks", json([](const Core& core) { return core.frameworksJson(); })},
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
    if (!core) return respond(api::HttpResponse::error(503, "the master is stopping"));
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
  if (api::Status added = addPolicyRoutes(); !added) return added;
  if (api::Status added = router.addRoute(
          "POST", "/api/v1", strand.get(),
          [weak](const api::HttpRequest& request, api::HttpResponder respond) {
            auto core = weak.lock();
            if (!core || core->stopped) {
              return respond(api::HttpResponse::error(503, "the master is stopping"));
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
          stream->start(503, "application/json");
          stream->write(R"({"message":"the master is stopping"})");
          stream->end();
          return;
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

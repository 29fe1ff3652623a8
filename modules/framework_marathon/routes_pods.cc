// The /v2/pods routes (Marathon 1.4): create, list, read, replace, delete, `::status`,
// `::versions` and `::instances`.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <sstream>

#include "modules/framework_marathon/pod_service.h"
#include "modules/framework_marathon/routes_util.h"
#include "tessera/api/json.h"

namespace tessera::modules::marathon {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using api::jsonQuote;

namespace {

HttpResponse podNotFound(std::string_view id) {
  return errorAnswer(404, fmt::format("Pod '{}' does not exist", id));
}

HttpResponse validationAnswer(const AppError& error) {
  return jsonAnswer(error.status, error.toJson());
}

HttpResponse storeFailed(const api::Status& status) {
  return errorAnswer(503, fmt::format("cannot store the pod: {}", status.message()));
}

// A pod answer with the deployment that carries the change out.
HttpResponse changed(int status, std::string body, const std::string& podId) {
  auto answer = jsonAnswer(status, std::move(body));
  answer.headers.emplace_back("Marathon-Deployment-Id", newUuid());
  answer.headers.emplace_back("Location", "/v2/pods" + podId);
  return answer;
}

std::string resourcesJson(const PodResources& r) {
  return fmt::format(R"({{"cpus":{},"mem":{},"disk":{},"gpus":{}}})", r.cpus, r.mem, r.disk,
                     r.gpus);
}

// Marathon's `healthy` condition of a container with a health check, once it ran: "true" or
// "false", with whether the agent has reported its health yet.
std::string conditionsJson(const PodContainerStatus& container, const std::string& since) {
  if (!container.checked || container.state == "TASK_STAGING" ||
      container.state == "TASK_STARTING") {
    return "[]";
  }
  return fmt::format(
      R"([{{"name":"healthy","lastChanged":{},"lastUpdated":{},"value":{},"reason":{}}}])", since,
      since, jsonQuote(container.healthy.value_or(false) ? "true" : "false"),
      jsonQuote(container.healthy ? "health-reported-by-mesos" : "health-unreported-by-mesos"));
}

std::string instanceJson(const Pod& pod, const PodInstance& instance) {
  std::string containers = "[";
  for (const auto& container : instance.containers) {
    const PodContainer* spec = nullptr;
    for (const auto& candidate : pod.containers) {
      if (candidate.name == container.name) spec = &candidate;
    }
    // The endpoint a http or tcp check probes carries the health too (while the task is up).
    std::string checkedEndpoint;
    if (spec && spec->healthCheck && spec->healthCheck->type != "exec" && container.healthy &&
        container.state == "TASK_RUNNING") {
      checkedEndpoint = spec->healthCheck->endpoint;
    }
    std::string endpoints = "[";
    for (const auto& [name, port] : container.endpoints) {
      if (endpoints.size() > 1) endpoints += ",";
      endpoints += fmt::format(R"({{"name":{},"allocatedHostPort":{})", jsonQuote(name), port);
      if (name == checkedEndpoint) endpoints += fmt::format(R"(,"healthy":{})", *container.healthy);
      endpoints += "}";
    }
    endpoints += "]";
    const PodResources resources = spec ? spec->resources : PodResources{};
    const std::string since = jsonQuote(isoTimestamp(container.since));
    if (containers.size() > 1) containers += ",";
    containers += fmt::format(
        R"({{"name":{},"containerId":{},"status":{},"statusSince":{},"message":{},)"
        R"("conditions":{},"endpoints":{},"resources":{},"lastUpdated":{},"lastChanged":{}}})",
        jsonQuote(container.name), jsonQuote(container.taskId), jsonQuote(container.state), since,
        container.message.empty() ? "null" : jsonQuote(container.message),
        conditionsJson(container, since), endpoints, resourcesJson(resources), since, since);
  }
  containers += "]";
  const std::string since = jsonQuote(isoTimestamp(instance.statusSince));
  const std::string status = instance.status();
  const bool unhealthy = status == "DEGRADED" && instance.unhealthy();
  return fmt::format(
      R"({{"id":{},"status":{},"statusSince":{},{}"agentHostname":{},"agentId":{},)"
      R"("conditions":[],"containers":{},"specReference":{},"resources":{},"networks":[],)"
      R"("lastUpdated":{},"lastChanged":{}}})",
      jsonQuote(instance.id), jsonQuote(status), since,
      unhealthy ? R"("message":"at least one container is not healthy",)" : "",
      jsonQuote(instance.hostname), jsonQuote(instance.agentId), containers,
      jsonQuote(
          fmt::format("/v2/pods{}::versions/{}", instance.podId, isoTimestamp(instance.version))),
      resourcesJson(pod.instanceResources()), since, since);
}

}  // namespace

api::Status PodService::addRoutes() {
  return context_.http().addRoute(
      "*", "/v2/pods",
      [this](const HttpRequest& request, HttpResponder respond) {
        if (!ready_) {
          return respond(errorAnswer(503, "Marathon is not ready: still loading its state"));
        }
        handle(request, std::move(respond));
      },
      true);
}

std::string PodService::statusJson(const Record& record) const {
  const Pod& pod = record.current;
  const auto instances = scheduler_->instances(pod.id);
  std::string list = "[";
  int stable = 0;
  Clock::time_point since = pod.version;
  for (const auto& instance : instances) {
    if (list.size() > 1) list += ",";
    list += instanceJson(pod, instance);
    stable += instance.status() == "STABLE";
    since = std::max(since, instance.statusSince);
  }
  list += "]";
  std::string status = "DEGRADED";
  if (pod.instances == 0 && instances.empty()) {
    status = "TERMINAL";
  } else if (stable >= pod.instances && static_cast<int>(instances.size()) == pod.instances) {
    status = "STABLE";
  }
  const std::string at = jsonQuote(isoTimestamp(since));
  return fmt::format(R"({{"id":{},"spec":{},"status":{},"statusSince":{},"instances":{},)"
                     R"("terminationHistory":[],"lastUpdated":{},"lastChanged":{}}})",
                     jsonQuote(pod.id), podToJson(pod), jsonQuote(status), at, list,
                     jsonQuote(isoTimestamp(Clock::now())), at);
}

void PodService::handle(const HttpRequest& request, HttpResponder respond) {
  std::string rest = request.path.substr(std::string_view("/v2/pods").size());
  const std::string& method = request.method;
  if (splitPath(rest).empty()) {
    if (method == "POST") return create(request, std::move(respond));
    if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    std::string list = "[";
    for (const auto& [id, record] : pods_) {
      if (list.size() > 1) list += ",";
      list += podToJson(record.current);
    }
    return respond(jsonAnswer(200, list + "]"));
  }
  // /v2/pods/{id}[::status|::versions[/{v}]|::instances[/{instance}]]; /v2/pods/::status.
  std::string action;
  if (const size_t colons = rest.find("::"); colons != std::string::npos) {
    action = rest.substr(colons + 2);
    rest = rest.substr(0, colons);
  }
  if (splitPath(rest).empty()) {
    if (action != "status") return respond(errorAnswer(404, "Not found"));
    if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    std::string list = "[";
    for (const auto& [id, record] : pods_) {
      if (list.size() > 1) list += ",";
      list += statusJson(record);
    }
    return respond(jsonAnswer(200, list + "]"));
  }
  auto id = normaliseAppId(rest);
  if (!id) return respond(podNotFound(rest));
  if (action.empty()) {
    if (method == "PUT") return replace(request, *id, std::move(respond));
    auto it = pods_.find(*id);
    if (it == pods_.end()) return respond(podNotFound(*id));
    if (method == "GET") return respond(jsonAnswer(200, podToJson(it->second.current)));
    if (method == "DELETE") return remove(request, *id, std::move(respond));
    return respond(errorAnswer(405, "Method not allowed"));
  }
  auto it = pods_.find(*id);
  if (it == pods_.end()) return respond(podNotFound(*id));
  const auto parts = splitPath(action);
  const std::string verb = parts.empty() ? "" : parts[0];
  if (verb == "status" && parts.size() == 1) {
    if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    return respond(jsonAnswer(200, statusJson(it->second)));
  }
  if (verb == "versions") {
    if (method != "GET") return respond(errorAnswer(405, "Method not allowed"));
    if (parts.size() == 1) {
      std::vector<std::string> versions;
      for (const auto& pod : it->second.versions) versions.push_back(isoTimestamp(pod.version));
      return respond(jsonAnswer(200, stringArray(versions)));
    }
    auto wanted = parseIsoTimestamp(parts[1]);
    for (const auto& pod : it->second.versions) {
      if (wanted && pod.version == *wanted) return respond(jsonAnswer(200, podToJson(pod)));
    }
    return respond(
        errorAnswer(404, fmt::format("Pod '{}' does not exist in version {}", *id, parts[1])));
  }
  if (verb == "instances") {
    if (method != "DELETE") return respond(errorAnswer(405, "Method not allowed"));
    if (parts.size() == 2) return killInstances(request, *id, {parts[1]}, true, std::move(respond));
    // DELETE /v2/pods/{id}::instances with a JSON array of instance ids.
    std::vector<std::string> ids;
    try {
      auto array = Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Array::Ptr>();
      for (size_t i = 0; i < array->size(); ++i) ids.push_back(array->getElement<std::string>(i));
    } catch (const Poco::Exception& e) {
      return respond(errorAnswer(400, fmt::format("Invalid JSON: {}", e.displayText())));
    }
    return killInstances(request, *id, std::move(ids), false, std::move(respond));
  }
  respond(errorAnswer(404, "Not found"));
}

void PodService::create(const HttpRequest& request, HttpResponder respond) {
  auto parsed = parsePod(request.body, Clock::now());
  if (auto* error = std::get_if<AppError>(&parsed)) return respond(validationAnswer(*error));
  Pod pod = std::get<Pod>(std::move(parsed));
  if (pods_.contains(pod.id)) {
    return respond(errorAnswer(409, fmt::format("A pod with id [{}] already exists.", pod.id)));
  }
  if (appExists_ && appExists_(pod.id)) {
    return respond(errorAnswer(409, fmt::format("An app with id [{}] already exists.", pod.id)));
  }
  persist(pod, [this, pod, respond = std::move(respond)](api::Status status) {
    if (!status) return respond(storeFailed(status));
    scheduler_->setPod(pod);
    respond(changed(201, podToJson(pod), pod.id));
  });
}

void PodService::replace(const HttpRequest& request, const std::string& id, HttpResponder respond) {
  // The path's id wins over the body's (as for PUT of an app).
  auto parsed = parsePod(withPathId(request.body, id), Clock::now());
  if (auto* error = std::get_if<AppError>(&parsed)) return respond(validationAnswer(*error));
  Pod pod = std::get<Pod>(std::move(parsed));
  const bool created = !pods_.contains(id);
  if (created && appExists_ && appExists_(id)) {
    return respond(errorAnswer(409, fmt::format("An app with id [{}] already exists.", id)));
  }
  persist(pod, [this, pod, created, respond = std::move(respond)](api::Status status) {
    if (!status) return respond(storeFailed(status));
    scheduler_->setPod(pod);
    respond(changed(created ? 201 : 200, podToJson(pod), pod.id));
  });
}

void PodService::remove(const HttpRequest&, const std::string& id, HttpResponder respond) {
  forget(id, [this, id, respond = std::move(respond)](api::Status status) {
    if (!status && status.code() != api::StatusCode::kNotFound) {
      return respond(storeFailed(status));
    }
    scheduler_->removePod(id);
    auto answer = jsonAnswer(202, "");
    answer.headers.emplace_back("Marathon-Deployment-Id", newUuid());
    respond(std::move(answer));
  });
}

void PodService::killInstances(const HttpRequest&, const std::string& id,
                               std::vector<std::string> instanceIds, bool single,
                               HttpResponder respond) {
  const Pod& pod = pods_.at(id).current;
  std::map<std::string, PodInstance> known;
  for (auto& instance : scheduler_->instances(id)) known.emplace(instance.id, instance);
  for (const auto& instanceId : instanceIds) {
    if (!known.contains(instanceId)) {
      return respond(errorAnswer(
          404, fmt::format("Instance '{}' of pod '{}' does not exist", instanceId, id)));
    }
  }
  std::string list = "[";
  for (const auto& instanceId : instanceIds) {
    scheduler_->killInstance(id, instanceId);
    if (list.size() > 1) list += ",";
    list += instanceJson(pod, known.at(instanceId));
  }
  list += "]";
  respond(jsonAnswer(200, single ? list.substr(1, list.size() - 2) : list));
}

}  // namespace tessera::modules::marathon

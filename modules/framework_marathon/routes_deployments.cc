// The /v2/deployments and /v2/groups routes.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "modules/framework_marathon/marathon_framework.h"
#include "modules/framework_marathon/routes_util.h"
#include "tessera/api/json.h"

namespace tessera::modules::marathon {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using api::jsonQuote;

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
                   respond(deploymentAnswer(deployment));
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
    return storeAndDeploy({}, removed, {}, boolParam(request, "force"),
                          [respond = std::move(respond)](api::Result<Deployment> deployment) {
                            respond(deploymentAnswer(deployment));
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

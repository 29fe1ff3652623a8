// The /v2/deployments routes: list, roll back, stop.
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

}  // namespace tessera::modules::marathon

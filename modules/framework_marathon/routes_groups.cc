// The /v2/groups routes. Groups follow the app ids (`/prod/web/api` is in `/prod/web`, in
// `/prod`): a group exists while an app is under it. POST and PUT take Marathon's group JSON
// (id, apps, groups; ids relative to the enclosing group) and deploy its apps as one deployment.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>
#include <sstream>

#include "modules/framework_marathon/marathon_framework.h"
#include "modules/framework_marathon/routes_util.h"
#include "tessera/api/json.h"

namespace tessera::modules::marathon {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using api::jsonQuote;
using Poco::JSON::Object;

namespace {

std::string parentOf(const std::string& id) {
  auto slash = id.rfind('/');
  return slash == 0 ? std::string("/") : id.substr(0, slash);
}

bool under(const std::string& id, const std::string& group) {
  return group == "/" || id.starts_with(group + "/");
}

// What a group definition asks for: the apps it defines (absolute ids) and, for PUT, the apps
// under it that it no longer lists.
struct GroupChange {
  std::vector<App> apps;
  std::vector<std::string> removed;
};

}  // namespace

void MarathonFramework::writeGroup(const HttpRequest& request, const std::string& pathId,
                                   HttpResponder respond) {
  const bool create = request.method == "POST";
  const auto now = Clock::now();
  Object::Ptr body;
  try {
    body = Poco::JSON::Parser().parse(request.body).extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return respond(jsonAnswer(
        400, AppError{400, "Invalid JSON", {Violation{"/", {e.displayText()}}}}.toJson()));
  }
  if (!body) {
    return respond(jsonAnswer(
        422, AppError{422, "Object is not valid", {Violation{"/", {"error.expected.jsobject"}}}}
                 .toJson()));
  }
  std::optional<std::string> groupId = pathId;
  if (body->has("id") && body->get("id").isString()) {
    groupId = normaliseAppId(body->getValue<std::string>("id"), pathId);
  }
  if (!groupId) {
    return respond(jsonAnswer(
        422,
        AppError{422, "Object is not valid", {Violation{"/id", {"invalid group id"}}}}.toJson()));
  }
  const bool groupExists =
      *groupId == "/" || std::any_of(apps_.begin(), apps_.end(), [&](const auto& entry) {
        return under(entry.first, *groupId) && entry.first != *groupId;
      });
  if (create && groupExists) {
    return respond(errorAnswer(
        409, fmt::format("Group {} is already created. Use PUT to change this group.", *groupId)));
  }
  if (apps_.contains(*groupId)) {
    return respond(
        errorAnswer(409, fmt::format("An app with the path {} already exists.", *groupId)));
  }

  GroupChange change;
  std::vector<Violation> violations;
  std::set<std::string> listed;
  // Reads one group level: its apps and subgroups, ids relative to `id`. With `replace` (PUT),
  // the apps a level that names `apps` (or `groups`) no longer lists are removed.
  std::function<void(const Object::Ptr&, const std::string&, const std::string&)> walk =
      [&](const Object::Ptr& group, const std::string& id, const std::string& path) {
        if (auto apps = group->getArray("apps")) {
          for (size_t i = 0; i < apps->size(); ++i) {
            const std::string where = fmt::format("{}/apps({})", path, i);
            auto app = apps->getObject(i);
            if (!app) {
              violations.push_back({where, {"error.expected.jsobject"}});
              continue;
            }
            std::optional<std::string> appId;
            if (app->has("id") && app->get("id").isString()) {
              appId = normaliseAppId(app->getValue<std::string>("id"), id);
            }
            if (!appId || *appId == "/" || !under(*appId, id)) {
              violations.push_back({where + "/id", {"invalid app id"}});
              continue;
            }
            app->set("id", *appId);
            std::ostringstream text;
            app->stringify(text);
            auto parsed = parseApp(text.str(), now);
            if (auto* error = std::get_if<AppError>(&parsed)) {
              for (auto& violation : error->details) {
                violations.push_back(
                    {where + (violation.path == "/" ? "" : violation.path), violation.errors});
              }
              continue;
            }
            listed.insert(*appId);
            App parsedApp = std::get<App>(std::move(parsed));
            // An unchanged definition keeps its version (no new deployment step for it).
            if (auto known = apps_.find(*appId);
                known != apps_.end() && !known->second.current.configDiffers(parsedApp) &&
                known->second.current.instances == parsedApp.instances) {
              continue;
            }
            change.apps.push_back(std::move(parsedApp));
          }
        }
        if (auto groups = group->getArray("groups")) {
          for (size_t i = 0; i < groups->size(); ++i) {
            const std::string where = fmt::format("{}/groups({})", path, i);
            auto child = groups->getObject(i);
            std::optional<std::string> childId;
            if (child && child->has("id") && child->get("id").isString()) {
              childId = normaliseAppId(child->getValue<std::string>("id"), id);
            }
            if (!child || !childId || *childId == "/" || !under(*childId, id)) {
              violations.push_back({where + "/id", {"invalid group id"}});
              continue;
            }
            listed.insert(*childId);
            walk(child, *childId, where);
          }
        }
        if (create) return;
        const bool replaceApps = group->has("apps");
        const bool replaceGroups = group->has("groups");
        for (const auto& [existing, record] : apps_) {
          if (!under(existing, id) || listed.contains(existing)) continue;
          const bool direct = parentOf(existing) == id;
          if (direct && !replaceApps) continue;
          if (!direct) {
            if (!replaceGroups) continue;
            // In a subgroup this level lists: that level decides.
            bool inListed = false;
            for (const auto& name : listed) inListed |= under(existing, name) && name != existing;
            if (inListed) continue;
          }
          change.removed.push_back(existing);
        }
      };
  walk(body, *groupId, "");
  if (!violations.empty()) {
    return respond(
        jsonAnswer(422, AppError{422, "Object is not valid", std::move(violations)}.toJson()));
  }
  std::sort(change.removed.begin(), change.removed.end());
  change.removed.erase(std::unique(change.removed.begin(), change.removed.end()),
                       change.removed.end());
  if (change.apps.empty() && change.removed.empty()) {
    // Nothing changes (or an empty group, which is not kept: groups follow the app ids).
    auto answer = jsonAnswer(create ? 201 : 200,
                             fmt::format(R"({{"version":{},"deploymentId":{}}})",
                                         jsonQuote(isoTimestamp(now)), jsonQuote(newUuid())));
    if (create) answer.headers.emplace_back("Location", "/v2/groups" + *groupId);
    return respond(std::move(answer));
  }
  const std::string location = "/v2/groups" + (*groupId == "/" ? std::string() : *groupId);
  storeAndDeploy(
      std::move(change.apps), std::move(change.removed), {}, boolParam(request, "force"),
      [create, location, respond = std::move(respond)](api::Result<Deployment> deployment) {
        auto answer = deploymentAnswer(deployment, create ? 201 : 200);
        if (deployment && create) answer.headers.emplace_back("Location", location);
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
    return storeAndDeploy({}, removed, {}, boolParam(request, "force"),
                          [respond = std::move(respond)](api::Result<Deployment> deployment) {
                            respond(deploymentAnswer(deployment));
                          });
  }
  if (request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    if (!root) {
      return respond(jsonAnswer(
          422,
          AppError{422, "Object is not valid", {Violation{"/id", {"invalid group id"}}}}.toJson()));
    }
    return writeGroup(request, *root, std::move(respond));
  }
  if (request.method != "GET") return respond(errorAnswer(405, "Method not allowed"));
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

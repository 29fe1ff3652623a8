// The /v2/apps routes: create, read, update, delete, restart, versions and an app's tasks.
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
    const bool failure = embedded("apps.lastTaskFailure") || embedded("apps.failures");
    const bool stats = embedded("apps.taskStats");
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
      list += fullAppJson(app, tasks, true, true, failure, stats);
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
    const Record* record = findApp(*id, respond);
    if (record == nullptr) return;
    if (method == "GET") {
      // Marathon always embeds the tasks, counts, deployments and last failure of one app.
      const auto embeds = queryValues(request, "embed");
      const bool stats = std::find(embeds.begin(), embeds.end(), "app.taskStats") != embeds.end();
      return respond(jsonAnswer(
          200, R"({"app":)" + fullAppJson(record->current, true, true, true, true, stats) + "}"));
    }
    if (method == "DELETE") return deleteApp(request, *id, std::move(respond));
    return respond(errorAnswer(405, "Method not allowed"));
  }
  const Record* record = findApp(*id, respond);
  if (record == nullptr) return;
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
  const auto& versions = record->versions;
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
        if (!deployment) return respond(deploymentAnswer(deployment));
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
    auto parsed = parseApp(withPathId(request.body, id), now);
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
  storeAndDeploy({app}, {}, {}, force,
                 [this, app, create, uri, ip,
                  respond = std::move(respond)](api::Result<Deployment> deployment) {
                   auto answer = deploymentAnswer(deployment, create ? 201 : 200);
                   if (!deployment) return respond(std::move(answer));
                   if (create) answer.headers.emplace_back("Location", "/v2/apps" + app.id);
                   respond(std::move(answer));
                   publish("api_post_event",
                           fmt::format(R"({{"clientIp":{},"uri":{},"appDefinition":{},)"
                                       R"("eventType":"api_post_event","timestamp":{}}})",
                                       jsonQuote(ip), jsonQuote(uri), appToJson(app),
                                       jsonQuote(isoTimestamp(Clock::now()))));
                 });
}

void MarathonFramework::deleteApp(const HttpRequest& request, const std::string& id,
                                  HttpResponder respond) {
  storeAndDeploy({}, {id}, {}, boolParam(request, "force"),
                 [this, id, respond = std::move(respond)](api::Result<Deployment> deployment) {
                   respond(deploymentAnswer(deployment));
                   if (!deployment) return;
                   publish("app_terminated_event",
                           fmt::format(R"({{"appId":{},"eventType":"app_terminated_event",)"
                                       R"("timestamp":{}}})",
                                       jsonQuote(id), jsonQuote(isoTimestamp(Clock::now()))));
                 });
}

void MarathonFramework::restartApp(const HttpRequest& request, const std::string& id,
                                   HttpResponder respond) {
  const Record* record = findApp(id, respond);
  if (record == nullptr) return;
  App app = record->current;
  storeAndDeploy({app}, {}, {id}, boolParam(request, "force"),
                 [respond = std::move(respond)](api::Result<Deployment> deployment) {
                   respond(deploymentAnswer(deployment));
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
                   respond(deploymentAnswer(deployment));
                 });
}

}  // namespace tessera::modules::marathon

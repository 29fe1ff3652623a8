// The /v2/tasks and /v2/queue routes and the kills they share with /v2/apps/{id}/tasks.
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

void MarathonFramework::handleTasks(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path);
  if (segments.size() == 3 && segments[2] == "delete" && request.method == "POST") {
    std::vector<std::string> ids;
    try {
      auto object = Poco::JSON::Parser().parse(request.body).extract<Poco::JSON::Object::Ptr>();
      auto list = object->getArray("ids");
      for (size_t i = 0; list && i < list->size(); ++i) {
        ids.push_back(list->getElement<std::string>(i));
      }
    } catch (const Poco::Exception& e) {
      return respond(errorAnswer(400, fmt::format("Invalid JSON: {}", e.displayText())));
    }
    return killTasks(request, std::move(ids), std::move(respond));
  }
  if (segments.size() != 2 || request.method != "GET") {
    return respond(errorAnswer(405, "Method not allowed"));
  }
  auto states = queryValues(request, "status");
  std::string list = "[";
  for (const auto& task : scheduler_->tasks()) {
    if (!states.empty()) {
      bool wanted = false;
      for (const auto& state : states) {
        wanted |= lower(task.state) == "task_" + lower(state);
      }
      if (!wanted) continue;
    }
    if (list.size() > 1) list += ",";
    list += taskJson(task);
  }
  respond(jsonAnswer(200, R"({"tasks":)" + list + "]}"));
}

void MarathonFramework::killTasks(const HttpRequest& request, std::vector<std::string> ids,
                                  HttpResponder respond, bool single) {
  const bool scale = boolParam(request, "scale");
  const bool wipe = boolParam(request, "wipe");
  std::string killed = "[";
  for (const auto& task : scheduler_->tasks()) {
    if (std::find(ids.begin(), ids.end(), task.id) == ids.end()) continue;
    if (killed.size() > 1) killed += ",";
    killed += taskJson(task);
  }
  killed += "]";
  auto result = scheduler_->killTasks(ids, scale, wipe);
  if (!result) {
    if (result.status().code() == api::StatusCode::kNotFound) {
      return respond(errorAnswer(404, result.status().message()));
    }
    return respond(errorAnswer(503, result.status().message()));
  }
  if (!scale) {
    if (single)
      return respond(jsonAnswer(200, R"({"task":)" + killed.substr(1, killed.size() - 2) + "}"));
    return respond(jsonAnswer(200, R"({"tasks":)" + killed + "}"));
  }
  // Scaled down: the changed apps are new versions, stored before the answer.
  const auto now = Clock::now();
  auto pending = std::make_shared<size_t>(result->size() + 1);
  auto failed = std::make_shared<api::Status>(api::Status::ok());
  auto finish = [pending, failed, now, respond](api::Status status) {
    if (!status && failed->isOk()) *failed = status;
    if (--*pending > 0) return;
    if (!failed->isOk()) return respond(errorAnswer(503, failed->message()));
    auto answer = jsonAnswer(200, fmt::format(R"({{"version":{},"deploymentId":{}}})",
                                              jsonQuote(isoTimestamp(now)), jsonQuote(newUuid())));
    respond(std::move(answer));
  };
  for (App app : *result) {
    app.version = app.lastScalingAt = now;
    remember(app);
    persist(app.id, finish);
  }
  finish(api::Status::ok());
}

void MarathonFramework::handleQueue(const HttpRequest& request, HttpResponder respond) {
  auto segments = splitPath(request.path);
  if (segments.size() == 2 && request.method == "GET") {
    std::string list = "[";
    for (const auto& entry : scheduler_->queue()) {
      auto it = apps_.find(entry.appId);
      if (it == apps_.end()) continue;
      if (list.size() > 1) list += ",";
      list += fmt::format(
          R"({{"app":{},"count":{},"delay":{{"timeLeftSeconds":{},"overdue":{}}},"since":{}}})",
          fullAppJson(it->second.current, false, true, true), entry.count, entry.delaySecondsLeft,
          entry.overdue, jsonQuote(isoTimestamp(entry.since)));
    }
    return respond(jsonAnswer(200, R"({"queue":)" + list + "]}"));
  }
  // DELETE /v2/queue/{app id}/delay
  if (segments.size() >= 4 && segments.back() == "delay" && request.method == "DELETE") {
    std::vector<std::string> idSegments(segments.begin() + 2, segments.end() - 1);
    auto id = normaliseAppId(joinId(idSegments, idSegments.size()));
    if (!id) return respond(appNotFound(""));
    if (findApp(*id, respond) == nullptr) return;
    if (!scheduler_->resetDelay(*id)) {
      return respond(
          errorAnswer(404, fmt::format("Application {} not found in tasks queue.", *id)));
    }
    return respond(HttpResponse{204, "application/json", {}, ""});
  }
  respond(errorAnswer(405, "Method not allowed"));
}

}  // namespace tessera::modules::marathon

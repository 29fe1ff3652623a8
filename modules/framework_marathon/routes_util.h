#pragma once

// What the Marathon module's route handlers share (routes_*.cc and marathon_framework.cc):
// query strings, ids from paths, Marathon's JSON answers and error bodies. Plain functions, no
// state; everything runs on the module's executor like the handlers that call them.

#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "modules/framework_marathon/scheduler.h"
#include "tessera/api/http.h"
#include "tessera/api/status.h"

namespace tessera::modules::marathon {

/// `text` in lower case (ASCII).
std::string lower(std::string_view text);

/// Every value of query parameter `key`, percent-decoded (Marathon repeats `embed` and
/// `event_type`).
std::vector<std::string> queryValues(const api::HttpRequest& request, std::string_view key);

/// A query boolean in any case: `force=TRUE` is true.
bool boolParam(const api::HttpRequest& request, std::string_view key);

/// A JSON answer, and Marathon's error body `{"message": text}`.
api::HttpResponse jsonAnswer(int status, std::string body);
api::HttpResponse errorAnswer(int status, std::string_view text);
/// 404 `App '<id>' does not exist`.
api::HttpResponse appNotFound(std::string_view id);

/// A random (version 4) UUID, Marathon's deployment ids.
std::string newUuid();

/// The non-empty segments of `path` (`//a/b/` is `a`, `b`).
std::vector<std::string> splitPath(std::string_view path);
/// `/` + the first `count` segments joined by `/` (`/` when none).
std::string joinId(const std::vector<std::string>& segments, size_t count);
/// The trimmed, non-empty parts of `text` between `separator`s.
std::vector<std::string> splitOn(std::string_view text, char separator);

/// A JSON array of strings.
std::string stringArray(const std::vector<std::string>& items);

/// `{"version", "deploymentId"}`, what a change answers.
std::string deploymentResult(const Deployment& deployment);
/// A deployment as GET /v2/deployments lists it.
std::string deploymentJson(const Deployment& deployment);
/// The 409 body for apps locked by the deployments `ids`.
std::string lockedMessage(const std::vector<std::string>& ids);

/// The answer to a change that deployed (or did not): `okStatus` with `{"version",
/// "deploymentId"}` and the `Marathon-Deployment-Id` header; 409 with the locking deployments
/// (kAborted, their ids comma-joined in the message); else 503 with the message.
api::HttpResponse deploymentAnswer(const api::Result<Deployment>& deployment, int okStatus = 200);

/// Marathon's label selector, the common forms: `key`, `key==value`, `key!=value`, comma-joined.
bool labelsMatch(const App& app, std::string_view selector);

/// The client's IP address (the request's remote address without the port).
std::string remoteIp(const api::HttpRequest& request);

/// A PUT's body with its `id` set to the path's (Marathon: the path's id wins over the body's).
/// A body that is not a JSON object comes back unchanged, for the parser to refuse.
std::string withPathId(const std::string& body, const std::string& id);

}  // namespace tessera::modules::marathon

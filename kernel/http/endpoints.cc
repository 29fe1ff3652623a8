#include "kernel/http/endpoints.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "kernel/http/http_status.h"
#include "kernel/http/json_writer.h"
#include "kernel/runtime/duration.h"

namespace tessera::kernel::http {

namespace {

std::string versionJson(const VersionInfo& info) {
  // Sorted keys, as Mesos's /version; absent git fields are left out.
  return writeJson([&](JsonWriter& w) {
    w.beginObject();
    w.field("build_date", info.buildDate);
    w.field("build_time", info.buildTime);
    w.field("build_user", info.buildUser);
    if (info.gitBranch) w.field("git_branch", *info.gitBranch);
    if (info.gitSha) w.field("git_sha", *info.gitSha);
    if (info.gitTag) w.field("git_tag", *info.gitTag);
    w.field("version", info.version);
    w.endObject();
  });
}

std::string flagsJson(const std::map<std::string, std::string>& flags) {
  return writeJson([&](JsonWriter& w) {
    w.beginObject().key("flags").beginObject();
    for (const auto& [name, value] : flags) w.field(name, value);
    w.endObject().endObject();
  });
}

// How long /health waits for the gauges it reads; one that has not answered by then is not
// counted against health.
constexpr std::chrono::nanoseconds kHealthGaugeTimeout = std::chrono::seconds(1);

api::HttpResponse healthResponse(const runtime::MetricsSnapshot& snapshot) {
  constexpr std::string_view kSuffix = "_reachable";
  std::string unreachable;
  for (const auto& [name, value] : snapshot.gauges) {
    if (name.size() < kSuffix.size() ||
        name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0 || value != 0) {
      continue;
    }
    unreachable += (unreachable.empty() ? "'" : ", '") + name + "'";
  }
  if (unreachable.empty()) return api::HttpResponse::text(200, "");
  return errorResponse(api::unavailable("unreachable: {} is 0", unreachable));
}

// The snapshot timeout of a request: `?timeout=` when given, else the default.
api::Result<std::chrono::nanoseconds> snapshotTimeout(const api::HttpRequest& request,
                                                      const SharedEndpoints& endpoints) {
  auto timeout = request.queryParam("timeout");
  if (!timeout) return endpoints.defaultSnapshotTimeout;
  auto parsed = runtime::parseDuration(*timeout);
  if (!parsed) return parsed.status().withContext("invalid timeout '{}'", *timeout);
  return parsed;
}

}  // namespace

api::Status registerSharedEndpoints(net::Router& router, api::Executor& executor,
                                    SharedEndpoints endpoints) {
  if (endpoints.metrics == nullptr) {
    return api::invalidArgument("the shared endpoints need a metrics registry");
  }
  auto shared = std::make_shared<const SharedEndpoints>(std::move(endpoints));
  api::Executor* home = &executor;

  const std::pair<std::string_view, api::HttpHandler> routes[] = {
      {"/health",
       [shared](const api::HttpRequest&, api::HttpResponder respond) {
         // Mesos answers an empty 200. A module reports a dependency it cannot reach with a
         // gauge named `..._reachable` (the Docker containerizer's
         // `containerizer/docker/daemon_reachable`): one at 0 makes it 503, naming the gauge.
         shared->metrics->snapshot(
             std::min<std::chrono::nanoseconds>(shared->defaultSnapshotTimeout,
                                                kHealthGaugeTimeout),
             [respond](runtime::MetricsSnapshot snapshot) { respond(healthResponse(snapshot)); });
       }},
      {"/version",
       [shared](const api::HttpRequest&, api::HttpResponder respond) {
         respond(api::HttpResponse::json(200, versionJson(shared->version)));
       }},
      {"/flags",
       [shared, home](const api::HttpRequest& request, api::HttpResponder respond) {
         auto answer = [shared, respond](std::optional<std::string> refusal) {
           if (refusal) return respond(forbidden(*refusal));
           respond(api::HttpResponse::json(
               200,
               flagsJson(shared->flags ? shared->flags() : std::map<std::string, std::string>{})));
         };
         AuthorizerRef authorizer =
             shared->authorizer ? shared->authorizer->get() : AuthorizerRef();
         if (!authorizer) return answer(std::nullopt);
         api::AuthorizationRequest question;
         question.subject = request.header(net::kAuthenticatedPrincipalHeader);
         question.action = "VIEW_FLAGS";
         // The flags are read on the endpoints' executor, as without an authorizer.
         askAuthorizerOne(authorizer, std::move(question), "http",
                          [home, answer](std::optional<std::string> refusal) {
                            home->post([answer, refusal] { answer(refusal); });
                          });
       }},
      {"/metrics/snapshot",
       [shared](const api::HttpRequest& request, api::HttpResponder respond) {
         auto timeout = snapshotTimeout(request, *shared);
         if (!timeout) return respond(errorResponse(timeout.status()));
         shared->metrics->snapshot(*timeout, [respond](runtime::MetricsSnapshot snapshot) {
           respond(api::HttpResponse::json(200, snapshot.toJson()));
         });
       }},
      {"/metrics",
       [shared](const api::HttpRequest& request, api::HttpResponder respond) {
         auto timeout = snapshotTimeout(request, *shared);
         if (!timeout) return respond(errorResponse(timeout.status()));
         shared->metrics->snapshot(*timeout, [respond](runtime::MetricsSnapshot snapshot) {
           respond(api::HttpResponse{
               200, "text/plain; version=0.0.4; charset=utf-8", {}, snapshot.toPrometheus()});
         });
       }},
  };
  for (const auto& [path, handler] : routes) {
    if (auto status = router.addRoute("GET", path, &executor, handler); !status) {
      // Leave nothing half-registered.
      for (const auto& [added, unused] : routes) {
        if (added == path) break;
        router.removeRoute("GET", added);
      }
      return status;
    }
  }
  return api::Status::ok();
}

}  // namespace tessera::kernel::http

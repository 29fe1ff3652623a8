#include "kernel/http/endpoints.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <utility>

#include "kernel/runtime/duration.h"
#include "tessera/api/json.h"

namespace tessera::kernel::http {

namespace {

using api::jsonQuote;

std::string versionJson(const VersionInfo& info) {
  std::string out = "{";
  out += "\"build_date\":" + jsonQuote(info.buildDate);
  out += fmt::format(",\"build_time\":{}", info.buildTime);
  out += ",\"build_user\":" + jsonQuote(info.buildUser);
  if (info.gitBranch) out += ",\"git_branch\":" + jsonQuote(*info.gitBranch);
  if (info.gitSha) out += ",\"git_sha\":" + jsonQuote(*info.gitSha);
  if (info.gitTag) out += ",\"git_tag\":" + jsonQuote(*info.gitTag);
  out += ",\"version\":" + jsonQuote(info.version);
  out += "}";
  return out;
}

std::string flagsJson(const std::map<std::string, std::string>& flags) {
  std::string out = "{\"flags\":{";
  bool first = true;
  for (const auto& [name, value] : flags) {
    if (!first) out += ',';
    first = false;
    out += jsonQuote(name) + ":" + jsonQuote(value);
  }
  out += "}}";
  return out;
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

  const std::pair<std::string_view, api::HttpHandler> routes[] = {
      {"/health",
       [](const api::HttpRequest&, api::HttpResponder respond) {
         // Mesos answers an empty 200.
         respond(api::HttpResponse::text(200, ""));
       }},
      {"/version",
       [shared](const api::HttpRequest&, api::HttpResponder respond) {
         respond(api::HttpResponse::json(200, versionJson(shared->version)));
       }},
      {"/flags",
       [shared](const api::HttpRequest&, api::HttpResponder respond) {
         respond(api::HttpResponse::json(
             200,
             flagsJson(shared->flags ? shared->flags() : std::map<std::string, std::string>{})));
       }},
      {"/metrics/snapshot",
       [shared](const api::HttpRequest& request, api::HttpResponder respond) {
         auto timeout = snapshotTimeout(request, *shared);
         if (!timeout) return respond(api::HttpResponse::error(400, timeout.status().message()));
         shared->metrics->snapshot(*timeout, [respond](runtime::MetricsSnapshot snapshot) {
           respond(api::HttpResponse::json(200, snapshot.toJson()));
         });
       }},
      {"/metrics",
       [shared](const api::HttpRequest& request, api::HttpResponder respond) {
         auto timeout = snapshotTimeout(request, *shared);
         if (!timeout) return respond(api::HttpResponse::error(400, timeout.status().message()));
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

#include "kernel/cli/http_auth.h"

#include <memory>
#include <utility>

#include "kernel/http/http_status.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/logging.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/json.h"

namespace tessera::kernel::cli {

namespace {

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The `"type"` of a JSON operator call, found without a full parse (the handler parses it
// again and refuses what is malformed). Empty when not found.
std::string_view operatorCallType(std::string_view body) {
  size_t key = body.find("\"type\"");
  if (key == std::string_view::npos) return {};
  size_t colon = body.find(':', key + 6);
  if (colon == std::string_view::npos) return {};
  size_t open = body.find('"', colon + 1);
  if (open == std::string_view::npos) return {};
  size_t close = body.find('"', open + 1);
  if (close == std::string_view::npos) return {};
  return body.substr(open + 1, close - open - 1);
}

api::HttpResponse unauthorized(const std::string& challenge) {
  auto response = api::HttpResponse::error(
      401, "the request is not authenticated: send valid credentials (Authorization: Basic)");
  if (!challenge.empty()) response.headers.emplace_back("WWW-Authenticate", challenge);
  return response;
}

}  // namespace

void addHttpAuthFlags(runtime::FlagSet& flags, HttpAuthFlags& auth,
                      std::string_view credentialsFlag) {
  flags.add("authenticate_http_readonly", &auth.readonly,
            "Require credentials (HTTP Basic) on the read-only endpoints (GET /state, /tasks, "
            "/metrics/snapshot, ...): 401 without them");
  flags.add("authenticate_http_readwrite", &auth.readwrite,
            "Require credentials (HTTP Basic) on the endpoints that change things (POST, PUT, "
            "DELETE: /teardown, /quota, /weights, /machine/*, operator calls): 401 without them");
  flags.add("http_authenticators", &auth.authenticators,
            "The authenticator module for the HTTP endpoints: basic (HTTP Basic against "
            "--credentials) or a loaded authenticator module's name");
  flags
      .add(std::string(credentialsFlag), &auth.credentials,
           "file:///path (or a path) of the credentials, Mesos's JSON "
           "{\"credentials\":[{\"principal\":..,\"secret\":..}]} or 'principal secret' lines, or "
           "that JSON inline; a file is re-read when it changes and on SIGHUP (a broken file "
           "keeps the previous credentials)")
      .secret();
  flags.add("http_authentication_realm", &auth.realm,
            "The realm in WWW-Authenticate (default: the role, e.g. tessera-master)");
}

api::Result<std::string> resolveHttpAuthenticator(const modules::ModuleManager& manager,
                                                  std::string_view value,
                                                  std::string_view flagName) {
  const auto* module = manager.findOfKind(api::kKindAuthenticator, value);
  if (module == nullptr) {
    std::string loaded;
    for (const auto& m : manager.modules()) {
      if (m.kind != api::kKindAuthenticator) continue;
      if (!loaded.empty()) loaded += ", ";
      loaded += fmt::format("'{}'", m.name);
      for (const auto& alias : m.aliases) loaded += fmt::format(" ({})", alias);
    }
    return api::invalidArgument(
        "flag '--{}': '{}' is not a loaded authenticator module (loaded: {})", flagName, value,
        loaded.empty() ? "none" : loaded);
  }
  return module->name;
}

std::vector<std::pair<std::string, std::string>> authenticatorParameters(
    std::string_view credentials, std::string_view realm) {
  std::vector<std::pair<std::string, std::string>> parameters;
  if (!credentials.empty()) parameters.emplace_back("credentials", credentials);
  parameters.emplace_back("realm", realm);
  return parameters;
}

HttpAccess classifyHttpRequest(const api::HttpRequest& request) {
  const std::string_view path = request.path;
  if (path == "/health" || path == "/master/health" || path == "/redirect" ||
      path == "/master/redirect" || path == "/master/transport" ||
      endsWith(path, "/api/v1/scheduler") || endsWith(path, "/api/v1/executor")) {
    return HttpAccess::kExempt;
  }
  // A CORS preflight: browsers send it without credentials, and the routes that answer one (the
  // agent's shared reads) reveal nothing in it; the GET that follows is authenticated.
  if (request.method == "OPTIONS" && request.header("Access-Control-Request-Method")) {
    return HttpAccess::kExempt;
  }
  if (request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS") {
    return HttpAccess::kReadOnly;
  }
  if (request.method == "POST" && endsWith(path, "/api/v1")) {
    std::string_view type = operatorCallType(request.body);
    if (type.substr(0, 4) == "GET_") return HttpAccess::kReadOnly;
  }
  return HttpAccess::kReadWrite;
}

api::Status installHttpAuthentication(Daemon& daemon, std::string_view role,
                                      const HttpAuthFlags& flags,
                                      std::string_view credentialsFlag) {
  if (!flags.readonly && !flags.readwrite) return api::Status::ok();
  const char* which =
      flags.readwrite ? "authenticate_http_readwrite" : "authenticate_http_readonly";
  auto name =
      resolveHttpAuthenticator(daemon.moduleManager(), flags.authenticators, "http_authenticators");
  if (!name) return name.status();
  auto created = daemon.modules().create<api::Authenticator>(
      *name,
      authenticatorParameters(flags.credentials,
                              flags.realm.empty() ? fmt::format("tessera-{}", role) : flags.realm));
  if (!created) {
    return created.status().withContext(
        "flag '--{}' with authenticator '{}' (its credentials: '--{}')", which,
        flags.authenticators, credentialsFlag);
  }
  api::Authenticator* authenticator = *created;
  api::Executor* executor = daemon.modules().executorOf(authenticator);
  auto& failures = daemon.metrics().counter("http/authentication_failures");
  auto& unauthenticated = daemon.metrics().counter("http/unauthenticated_requests");
  const bool readonly = flags.readonly;
  const bool readwrite = flags.readwrite;
  daemon.routerPtr()->setGate(
      [=, &failures, &unauthenticated](
          api::HttpRequest request,
          std::function<void(api::HttpRequest, std::optional<api::HttpResponse>)> next) {
        // Only the gate says who the principal is.
        request.headers.erase(std::string(net::kAuthenticatedPrincipalHeader));
        const HttpAccess access = classifyHttpRequest(request);
        // Exempt routes never use the gate's principal: the scheduler and executor APIs
        // authenticate their callers themselves (--http_framework_authenticators), so asking
        // here too would authenticate every scheduler call twice.
        if (access == HttpAccess::kExempt) return next(std::move(request), std::nullopt);
        const bool needed = (access == HttpAccess::kReadOnly && readonly) ||
                            (access == HttpAccess::kReadWrite && readwrite);
        if (!needed && !request.header("Authorization")) {
          return next(std::move(request), std::nullopt);
        }
        auto shared = std::make_shared<api::HttpRequest>(std::move(request));
        executor->post([=, &failures, &unauthenticated]() mutable {
          authenticator->authenticate(
              *shared, [=, &failures, &unauthenticated](api::AuthenticationResult result) mutable {
                using Outcome = api::AuthenticationResult::Outcome;
                if (result.outcome == Outcome::kAuthenticated && result.principal) {
                  shared->headers[std::string(net::kAuthenticatedPrincipalHeader)] =
                      *result.principal;
                  return next(std::move(*shared), std::nullopt);
                }
                if (shared->header("Authorization")) failures.increment();
                if (!needed) return next(std::move(*shared), std::nullopt);
                unauthenticated.increment();
                api::HttpResponse refusal =
                    result.outcome == Outcome::kForbidden
                        ? api::HttpResponse::error(403, "the authenticator refused the request")
                        : unauthorized(result.challenge);
                // A page of another origin may read why (the agent's shared reads, docs/design.md
                // "Agents elsewhere"): a refusal holds nothing but its message.
                if (shared->header("Origin")) {
                  refusal.headers.emplace_back("Access-Control-Allow-Origin", "*");
                }
                next(std::move(*shared), std::move(refusal));
              });
        });
      });
  runtime::logger(role)->info("HTTP authentication on ({}{}{}) with '{}'",
                              readonly ? "read-only" : "", readonly && readwrite ? ", " : "",
                              readwrite ? "read-write" : "", *name);
  return api::Status::ok();
}

}  // namespace tessera::kernel::cli

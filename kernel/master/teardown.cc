// POST /master/teardown (Mesos's operator endpoint): removes a framework and kills its tasks,
// once TEARDOWN_FRAMEWORK allows the caller to on the framework's principal.

#include <Poco/JSON/Object.h>
#include <fmt/format.h>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/http/json_body.h"
#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/http_parse.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/strings.h"

namespace tessera::kernel::master {

using namespace detail;

namespace {

// The value of `key` in an application/x-www-form-urlencoded body; nullopt when absent.
std::optional<std::string> formValue(std::string_view body, std::string_view key) {
  while (!body.empty()) {
    const size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    for (char& c : name) c = c == '+' ? ' ' : c;
    for (char& c : value) c = c == '+' ? ' ' : c;
    if (net::percentDecode(name) == key) return net::percentDecode(value);
  }
  return std::nullopt;
}

// The framework id a teardown names: Mesos's form body `frameworkId=<id>`, or a JSON object
// `{"frameworkId": "<id>"}` (clients send either, whatever their Content-Type says).
api::Result<std::string> teardownFrameworkId(std::string_view body) {
  std::string_view trimmed = body;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
    trimmed.remove_prefix(1);
  }
  std::optional<std::string> id;
  if (!trimmed.empty() && trimmed.front() == '{') {
    auto parsed = http::parseJsonBody(trimmed);
    if (!parsed) return parsed.status().withContext("malformed teardown");
    try {
      if (parsed->type() != typeid(Poco::JSON::Object::Ptr)) {
        return api::invalidArgument("malformed teardown: the body is not a JSON object");
      }
      auto object = parsed->extract<Poco::JSON::Object::Ptr>();
      if (object->has("frameworkId")) {
        const Poco::Dynamic::Var& value = object->get("frameworkId");
        if (!value.isString()) {
          return api::invalidArgument("malformed teardown: 'frameworkId' is not a string");
        }
        id = value.extract<std::string>();
      }
    } catch (const std::exception& e) {
      return api::invalidArgument("malformed teardown: {}", runtime::printable(e.what()));
    }
  } else {
    id = formValue(body, "frameworkId");
  }
  if (!id || id->empty()) {
    return api::invalidArgument("expecting 'frameworkId' in the request body");
  }
  return *id;
}

}  // namespace

void Core::teardown(const api::HttpRequest& request, api::HttpResponder respond) {
  auto id = teardownFrameworkId(request.body);
  if (!id) return respond(api::HttpResponse::error(400, id.status().message()));
  auto notFound = [](const std::string& frameworkId) {
    return api::HttpResponse::error(400, fmt::format("no framework with id '{}' is registered",
                                                     runtime::printable(frameworkId, 200)));
  };
  auto framework = frameworks.find(*id);
  if (framework == frameworks.end()) return respond(notFound(*id));
  api::AuthorizationRequest question;
  question.subject = request.header(net::kAuthenticatedPrincipalHeader);
  question.action = "TEARDOWN_FRAMEWORK";
  if (framework->second.info.has_principal()) question.value = framework->second.info.principal();
  authorizeOne(std::move(question), [frameworkId = *id, notFound, respond = std::move(respond)](
                                        Core& core, std::optional<std::string> refusal) {
    if (refusal) return respond(api::HttpResponse::error(403, *refusal));
    // Asked on the authorizer: it may have gone meanwhile.
    if (!core.frameworks.count(frameworkId)) return respond(notFound(frameworkId));
    log()->info("tearing down framework '{}' (POST /master/teardown)", frameworkId);
    core.counter("messages_unregister_framework").increment();
    core.removeFramework(frameworkId);
    respond(api::HttpResponse::text(200, ""));
  });
}

api::Status Core::addTeardownRoutes() {
  std::weak_ptr<Core> weak = weak_from_this();
  for (const char* path : {"/teardown", "/master/teardown"}) {
    api::Status added = services.router->addRoute(
        "POST", path, strand.get(),
        [weak](const api::HttpRequest& request, api::HttpResponder respond) {
          auto core = weak.lock();
          if (!core || core->stopped) {
            return respond(http::errorResponse(api::unavailable("the master is stopping")));
          }
          core->teardown(request, std::move(respond));
        });
    if (!added) return added;
  }
  return api::Status::ok();
}

}  // namespace tessera::kernel::master

#include "modules/framework_marathon/routes_util.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <sstream>

#include "tessera/api/json.h"

namespace tessera::modules::marathon {

using api::HttpRequest;
using api::HttpResponse;
using api::jsonQuote;

namespace {

std::string percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      if (std::sscanf(std::string(text.substr(i + 1, 2)).c_str(), "%2x", &value) == 1) {
        out.push_back(static_cast<char>(value));
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Every value of query parameter `key` (Marathon repeats `embed` and `event_type`).
std::vector<std::string> queryValues(const HttpRequest& request, std::string_view key) {
  std::vector<std::string> out;
  std::string_view query = request.query;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    size_t eq = pair.find('=');
    if (percentDecode(pair.substr(0, eq)) == key) {
      out.push_back(eq == std::string_view::npos ? "" : percentDecode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

// Query booleans in any case: `force=TRUE`.
bool boolParam(const HttpRequest& request, std::string_view key) {
  auto value = request.queryParam(key);
  return value && lower(*value) == "true";
}

HttpResponse jsonAnswer(int status, std::string body) {
  return HttpResponse::json(status, std::move(body));
}

HttpResponse errorAnswer(int status, std::string_view text) {
  return jsonAnswer(status, fmt::format(R"({{"message":{}}})", jsonQuote(text)));
}

HttpResponse appNotFound(std::string_view id) {
  return errorAnswer(404, fmt::format("App '{}' does not exist", id));
}

std::string newUuid() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t a = random();
  const uint64_t b = random();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     ((b >> 48) & 0x3fff) | 0x8000, b & 0xffffffffffffULL);
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view segment = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!segment.empty()) out.emplace_back(segment);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string joinId(const std::vector<std::string>& segments, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += "/" + segments[i];
  return out.empty() ? "/" : out;
}

std::string stringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += jsonQuote(items[i]);
  }
  return out + "]";
}

std::string deploymentResult(const Deployment& deployment) {
  return fmt::format(R"({{"version":{},"deploymentId":{}}})",
                     jsonQuote(isoTimestamp(deployment.version)), jsonQuote(deployment.id));
}

std::string deploymentJson(const Deployment& deployment) {
  std::string steps = "[";
  for (size_t i = 0; i < deployment.steps.size(); ++i) {
    if (i > 0) steps += ",";
    steps += R"({"actions":[)";
    for (size_t j = 0; j < deployment.steps[i].size(); ++j) {
      if (j > 0) steps += ",";
      steps += fmt::format(R"({{"action":{},"app":{}}})", jsonQuote(deployment.steps[i][j].action),
                           jsonQuote(deployment.steps[i][j].app));
    }
    steps += "]}";
  }
  steps += "]";
  std::string current = "[";
  if (deployment.currentStep >= 1 &&
      static_cast<size_t>(deployment.currentStep) <= deployment.steps.size()) {
    const auto& actions = deployment.steps[static_cast<size_t>(deployment.currentStep) - 1];
    for (size_t j = 0; j < actions.size(); ++j) {
      if (j > 0) current += ",";
      current += fmt::format(R"({{"action":{},"app":{},"readinessCheckResults":[]}})",
                             jsonQuote(actions[j].action), jsonQuote(actions[j].app));
    }
  }
  current += "]";
  return fmt::format(R"({{"id":{},"version":{},"affectedApps":{},"affectedPods":[],"steps":{},)"
                     R"("currentActions":{},"currentStep":{},"totalSteps":{}}})",
                     jsonQuote(deployment.id), jsonQuote(isoTimestamp(deployment.version)),
                     stringArray(deployment.affectedApps), steps, current, deployment.currentStep,
                     deployment.steps.size());
}

std::string lockedMessage(const std::vector<std::string>& ids) {
  std::string list = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) list += ",";
    list += fmt::format(R"({{"id":{}}})", jsonQuote(ids[i]));
  }
  list += "]";
  return fmt::format(
      R"({{"message":{},"deployments":{}}})",
      jsonQuote(fmt::format("App is locked by one or more deployments. Override with the option "
                            "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.")),
      list);
}

std::vector<std::string> splitOn(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t at = text.find(separator, start);
    std::string part(
        text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    while (!part.empty() && part.back() == ' ') part.pop_back();
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (!part.empty()) out.push_back(std::move(part));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

bool labelsMatch(const App& app, std::string_view selector) {
  for (const auto& term : splitOn(selector, ',')) {
    if (auto ne = term.find("!="); ne != std::string::npos) {
      auto it = app.labels.find(term.substr(0, ne));
      if (it != app.labels.end() && it->second == term.substr(ne + 2)) return false;
    } else if (auto eq = term.find("=="); eq != std::string::npos) {
      auto it = app.labels.find(term.substr(0, eq));
      if (it == app.labels.end() || it->second != term.substr(eq + 2)) return false;
    } else if (!app.labels.contains(term)) {
      return false;
    }
  }
  return true;
}

std::string remoteIp(const HttpRequest& request) {
  auto colon = request.remoteAddress.rfind(':');
  return colon == std::string::npos ? request.remoteAddress
                                    : request.remoteAddress.substr(0, colon);
}

HttpResponse deploymentAnswer(const api::Result<Deployment>& deployment, int okStatus) {
  if (!deployment) {
    if (deployment.status().code() == api::StatusCode::kAborted) {
      return jsonAnswer(409, lockedMessage(splitOn(deployment.status().message(), ',')));
    }
    return errorAnswer(503, deployment.status().message());
  }
  auto answer = jsonAnswer(okStatus, deploymentResult(*deployment));
  answer.headers.emplace_back("Marathon-Deployment-Id", deployment->id);
  return answer;
}

std::string withPathId(const std::string& body, const std::string& id) {
  try {
    auto object = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Object::Ptr>();
    object->set("id", id);
    std::ostringstream out;
    object->stringify(out);
    return out.str();
  } catch (const Poco::Exception&) {
    return body;
  }
}

}  // namespace tessera::modules::marathon

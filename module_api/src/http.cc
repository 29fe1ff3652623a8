#include "tessera/api/http.h"

#include <Poco/JSON/Object.h>
#include <Poco/URI.h>
#include <strings.h>

#include <sstream>

#include "tessera/api/json.h"

namespace tessera::api {

std::optional<std::string> HttpRequest::queryParam(std::string_view key) const {
  Poco::URI uri;
  try {
    uri.setRawQuery(query);
    for (const auto& [k, v] : uri.getQueryParameters()) {
      if (k == key) return v;
    }
  } catch (const Poco::Exception&) {
    return std::nullopt;  // a malformed query has no parameters
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return std::nullopt;
}

HttpResponse HttpResponse::error(int status, std::string_view message) {
  Poco::JSON::Object object;
  // Poco's writer copies bytes through: an echoed path or name that is not UTF-8 becomes U+FFFD
  // so the body stays valid JSON.
  object.set("message", toValidUtf8(message));
  std::ostringstream out;
  object.stringify(out);
  return json(status, out.str());
}

namespace {

// `value` without CR and LF: a field line cannot carry them.
std::string oneLine(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n') out += c;
  }
  return out;
}

}  // namespace

std::string ServerSentEvent::format() const {
  std::string out;
  out.reserve(data.size() + event.size() + id.size() + 32);
  if (!event.empty()) out += "event: " + oneLine(event) + "\n";
  if (!id.empty()) out += "id: " + oneLine(id) + "\n";
  if (retry.count() > 0) out += "retry: " + std::to_string(retry.count()) + "\n";
  // Every line of the data gets its own field; the client joins them with LF again.
  std::string_view rest = data;
  for (;;) {
    size_t end = rest.find_first_of("\r\n");
    out += "data: ";
    out += rest.substr(0, end);
    out += '\n';
    if (end == std::string_view::npos) break;
    size_t skip = (rest[end] == '\r' && end + 1 < rest.size() && rest[end + 1] == '\n') ? 2 : 1;
    rest.remove_prefix(end + skip);
  }
  out += '\n';
  return out;
}

Status HttpRouter::addStreamingRoute(std::string_view, std::string_view path, HttpStreamingHandler,
                                     bool) {
  return makeStatus(StatusCode::kUnimplemented, "this router cannot serve the streaming route '{}'",
                    path);
}

}  // namespace tessera::api

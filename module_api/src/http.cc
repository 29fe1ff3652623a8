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

}  // namespace tessera::api

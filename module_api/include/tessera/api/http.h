#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// An HTTP request as a route handler sees it; the body is complete.
struct HttpRequest {
  std::string method;                          ///< "GET", "POST", ...
  std::string path;                            ///< decoded path, without the query: "/v2/apps"
  std::string query;                           ///< raw query string without '?': "a=1&b=2"
  std::map<std::string, std::string> headers;  ///< keys lower-case
  std::string body;
  std::string remoteAddress;  ///< "127.0.0.1:53412"

  /// The first value of query parameter `key`, percent-decoded.
  TESSERA_API std::optional<std::string> queryParam(std::string_view key) const;
  /// The value of header `name` (any case).
  TESSERA_API std::optional<std::string> header(std::string_view name) const;
};

/// A complete response.
struct HttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// A JSON response.
  static HttpResponse json(int status, std::string body) {
    return HttpResponse{status, "application/json", {}, std::move(body)};
  }
  /// A plain-text response.
  static HttpResponse text(int status, std::string body) {
    return HttpResponse{status, "text/plain; charset=utf-8", {}, std::move(body)};
  }
  /// An error response: `{"message": "<message>"}` with the given 4xx/5xx status.
  TESSERA_API static HttpResponse error(int status, std::string_view message);
};

/// Completes a request. Call exactly once, from any thread.
using HttpResponder = std::function<void(HttpResponse)>;
/// Handles one request; runs on the executor of the component that registered the route.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

/// Lets a module serve HTTP on the daemon's port.
class TESSERA_API HttpRouter {
 public:
  virtual ~HttpRouter() = default;
  /// Routes `method` (or "*" for any) on `path` to `handler`; with `prefix`, every path
  /// below `path` too (longest prefix wins). Errors: AlreadyExists if the route is taken,
  /// InvalidArgument if `path` does not start with '/'.
  virtual Status addRoute(std::string_view method, std::string_view path, HttpHandler handler,
                          bool prefix = false) = 0;
};

}  // namespace tessera::api

#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tessera/api/http.h"
#include "tessera/api/module.h"

namespace tessera::api {

/// The outcome of authenticating one request (Mesos's HTTP AuthenticationResult).
struct AuthenticationResult {
  enum class Outcome {
    kAuthenticated,  ///< `principal` says who
    kUnauthorized,   ///< no or bad credentials: 401 with `challenge` in WWW-Authenticate
    kForbidden,      ///< credentials fine, access refused: 403
  };
  Outcome outcome = Outcome::kUnauthorized;
  std::optional<std::string> principal;
  std::string challenge;  ///< e.g. `Basic realm="tessera"`
};

/// Decides who sent a request: HTTP endpoints and the scheduler API ask it before acting. The
/// default (no authenticator configured) admits everyone without a principal. Every method
/// runs on the authenticator's executor.
class TESSERA_API Authenticator : public Module {
 public:
  /// The scheme it handles, as in WWW-Authenticate ("Basic").
  virtual std::string scheme() const = 0;

  /// Authenticates `request` (its headers, typically Authorization) and calls `done` once, from
  /// any thread. Errors are outcomes, not Status: a malformed header is kUnauthorized.
  virtual void authenticate(const HttpRequest& request,
                            std::function<void(AuthenticationResult)> done) = 0;
};

}  // namespace tessera::api

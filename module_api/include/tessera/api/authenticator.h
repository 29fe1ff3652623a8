#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/api/http.h"
#include "tessera/api/module.h"
#include "tessera/api/status.h"

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

/// One peer's answer to a challenge on the internal transport (an agent authenticating to the
/// master, Mesos's --authenticate_agents): the master sent `challenge` (random bytes, used
/// once), the peer answered `response` computed by its own authenticator's respond(). The
/// secret itself never crosses the wire.
struct PeerAuthentication {
  std::string mechanism;  ///< the peer's mechanism(), e.g. "HMAC-SHA256"
  std::string principal;  ///< who the peer says it is
  std::string challenge;  ///< what the master sent
  std::string response;   ///< what the peer answered
};

/// Decides who sent a request: HTTP endpoints and the scheduler API ask it before acting. The
/// default (no authenticator configured) admits everyone without a principal. Every method
/// runs on the authenticator's executor, except mechanism(), principal() and respond(), which
/// are const and thread-safe.
///
/// A module may also authenticate peers on the internal transport by challenge-response (both
/// sides load the same module: the master with the `credentials` parameter, a peer with its own
/// `credential`); the defaults below say it does not.
class TESSERA_API Authenticator : public Module {
 public:
  /// The scheme it handles, as in WWW-Authenticate ("Basic").
  virtual std::string scheme() const = 0;

  /// Authenticates `request` (its headers, typically Authorization) and calls `done` once, from
  /// any thread. Errors are outcomes, not Status: a malformed header is kUnauthorized.
  virtual void authenticate(const HttpRequest& request,
                            std::function<void(AuthenticationResult)> done) = 0;

  /// The challenge-response mechanism for the internal transport; empty: not supported.
  virtual std::string mechanism() const { return {}; }

  /// Peer side: the principal of this instance's own credential (parameter `credential`);
  /// nullopt when it was created without one.
  virtual std::optional<std::string> principal() const { return std::nullopt; }

  /// Peer side: the answer to `challenge` that proves the credential's secret without
  /// revealing it. Errors: FailedPrecondition without a credential or mechanism.
  virtual Result<std::string> respond(std::string_view challenge) const {
    (void)challenge;
    return Status(StatusCode::kFailedPrecondition, "no challenge-response mechanism");
  }

  /// Master side: checks `attempt` against the known credentials and calls `done` once, from
  /// any thread: kAuthenticated with the principal, or kUnauthorized (wrong or unknown
  /// credentials, another mechanism). Never logs the response or a secret.
  virtual void verify(const PeerAuthentication& attempt,
                      std::function<void(AuthenticationResult)> done) {
    (void)attempt;
    done(AuthenticationResult{});
  }
};

}  // namespace tessera::api

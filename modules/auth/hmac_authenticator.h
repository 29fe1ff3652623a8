#pragma once

/// Challenge-response authentication of peers on the internal transport (agents, Mesos's
/// --authenticate_agents; the role Mesos gives CRAM-MD5): the master sends a random challenge,
/// the peer answers HMAC-SHA256(secret, mechanism | principal | challenge) in hex, and the
/// master recomputes it from its --credentials. The secret never crosses the wire, and a
/// recorded answer is useless against another challenge.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "modules/auth/credentials.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/module.h"
#include "tessera/api/parameters.h"

namespace tessera::modules::auth {

/// The mechanism's name on the wire.
inline constexpr std::string_view kHmacMechanism = "HMAC-SHA256";

/// The hex HMAC-SHA256 of the peer's answer (both sides compute it the same way).
std::string hmacResponse(std::string_view principal, std::string_view secret,
                         std::string_view challenge);

/// The one credential of an agent's --credential: Mesos's JSON `{"principal":..,"secret":..}`,
/// the `{"credentials":[...]}` form with one entry, or one `principal secret` line. Errors:
/// InvalidArgument (never quoting the secret).
api::Result<std::pair<std::string, std::string>> parseCredential(std::string_view text);

/// Parameters: `credentials` (the master's --credentials: file:///path, a path or the JSON
/// inline; needed to verify peers), `credential` (a peer's own --credential: file:///path, a
/// path or inline; needed to respond). At least one. Counts
/// `authenticator/hmac/{successes,failures,reload_failures}`.
class HmacAuthenticator final : public api::Authenticator {
 public:
  HmacAuthenticator(api::Context* context, std::unique_ptr<CredentialsFile> credentials,
                    std::optional<std::pair<std::string, std::string>> own);

  /// Errors: InvalidArgument without either parameter, or when one cannot be read or parsed.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  void stop() override {}
  api::Status reload() override;
  /// HTTP requests are not its business: always kUnauthorized (no challenge).
  std::string scheme() const override { return "HMAC"; }
  void authenticate(const api::HttpRequest& request,
                    std::function<void(api::AuthenticationResult)> done) override;

  std::string mechanism() const override { return std::string(kHmacMechanism); }
  std::optional<std::string> principal() const override;
  api::Result<std::string> respond(std::string_view challenge) const override;
  void verify(const api::PeerAuthentication& attempt,
              std::function<void(api::AuthenticationResult)> done) override;

  /// verify()'s synchronous core.
  bool verifyNow(const api::PeerAuthentication& attempt);

 private:
  void count(std::string_view name);

  api::Context* context_;  ///< null in unit tests
  std::unique_ptr<CredentialsFile> credentials_;
  const std::optional<std::pair<std::string, std::string>> own_;
};

}  // namespace tessera::modules::auth

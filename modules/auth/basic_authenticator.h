#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "modules/auth/credentials.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/module.h"
#include "tessera/api/parameters.h"

namespace tessera::modules::auth {

/// Strict standard base64 (RFC 4648 §4, padding required); nullopt when malformed.
std::optional<std::string> decodeBase64(std::string_view text);

/// The (principal, secret) an `Authorization: Basic ...` value carries, if well-formed.
std::optional<std::pair<std::string, std::string>> parseBasicAuthorization(std::string_view value);

/// Mesos's `basic` HTTP authenticator: `Authorization: Basic base64(principal:secret)` checked
/// against a credentials file (module parameter `credentials`, `file:///path` or a path, in
/// Mesos's JSON or the `principal secret` lines form), re-read when the file changes. A change
/// that does not parse keeps the previous credentials and is logged (without secrets).
/// Parameters: credentials (required), realm (default "tessera").
/// Counts `authenticator/basic/{successes,failures}` and `authenticator/basic/reload_failures`.
class BasicAuthenticator final : public api::Authenticator {
 public:
  BasicAuthenticator(api::Context& context, std::unique_ptr<CredentialsFile> credentials,
                     std::string realm);

  /// Errors: InvalidArgument without `credentials`, or when the file cannot be read or parsed.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  void stop() override {}
  /// Re-reads the credentials file now (SIGHUP); a broken file keeps the old ones.
  api::Status reload() override;
  std::string scheme() const override { return "Basic"; }
  void authenticate(const api::HttpRequest& request,
                    std::function<void(api::AuthenticationResult)> done) override;

  /// The synchronous core of authenticate() (any thread).
  api::AuthenticationResult authenticateNow(const api::HttpRequest& request);

 private:
  api::Context& context_;
  std::unique_ptr<CredentialsFile> credentials_;
  const std::string challenge_;
};

}  // namespace tessera::modules::auth

#pragma once

/// HTTP authentication of a daemon's endpoints (Mesos's --authenticate_http_readonly and
/// --authenticate_http_readwrite): a gate in front of the daemon's router asks the
/// authenticator module --http_authenticators names (default `basic`, modules/auth) before a
/// request reaches its route, and answers 401 with `WWW-Authenticate` when credentials are
/// missing or wrong. Off (no module created, nothing asked) unless one of the two flags is set.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernel/cli/daemon.h"
#include "kernel/runtime/flags.h"
#include "tessera/api/http.h"

namespace tessera::kernel::cli {

struct HttpAuthFlags {
  bool readonly = false;                 ///< --authenticate_http_readonly
  bool readwrite = false;                ///< --authenticate_http_readwrite
  std::string authenticators = "basic";  ///< --http_authenticators
  std::string credentials;               ///< --credentials (agent: --http_credentials)
  std::string realm;                     ///< the realm in the challenge; default: the role
};

/// Declares the flags; `credentialsFlag` is "credentials" (master, local) or "http_credentials"
/// (agent, as in Mesos).
void addHttpAuthFlags(runtime::FlagSet& flags, HttpAuthFlags& auth,
                      std::string_view credentialsFlag);

/// The authenticator module an --http_authenticators / --http_framework_authenticators value
/// names: a loaded authenticator module's name or an alias its manifest entry declares
/// (`basic` in the default manifest).
/// Errors: InvalidArgument naming `flagName`.
api::Result<std::string> resolveHttpAuthenticator(const modules::ModuleManager& manager,
                                                  std::string_view value,
                                                  std::string_view flagName);

/// The parameters the kernel offers every authenticator it creates, whichever module it is:
/// `credentials` (the --credentials value as given, when set) and `realm`. A module that needs
/// credentials refuses to be created without them.
std::vector<std::pair<std::string, std::string>> authenticatorParameters(
    std::string_view credentials, std::string_view realm);

/// Which requests need credentials.
enum class HttpAccess { kExempt, kReadOnly, kReadWrite };

/// How `request` is classified: GET/HEAD are read-only; other methods read-write, except
/// `POST /api/v1` operator calls whose type starts with GET_ (read-only). Exempt: /health,
/// /master/redirect, /redirect, /master/transport (agents find the transport through it) and
/// the scheduler and executor APIs (--authenticate_http_frameworks covers the first), and CORS
/// preflights (OPTIONS with Access-Control-Request-Method: browsers send them without
/// credentials; the agent answers them for its shared reads, which stay authenticated).
HttpAccess classifyHttpRequest(const api::HttpRequest& request);

/// Installs the gate on the daemon's router when a flag asks for it (creating the
/// authenticator module with `credentials` and `realm` as parameters). Errors: a flag set
/// without --credentials, an unknown authenticator, a credentials file that does not load.
api::Status installHttpAuthentication(Daemon& daemon, std::string_view role,
                                      const HttpAuthFlags& flags, std::string_view credentialsFlag);

}  // namespace tessera::kernel::cli

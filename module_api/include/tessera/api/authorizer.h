#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tessera/api/module.h"

namespace tessera::api {

/// One question to an authorizer, in Mesos's terms: may `subject` do `action` on `object`?
struct AuthorizationRequest {
  std::optional<std::string> subject;  ///< the principal; absent for anonymous callers
  std::string action;                  ///< Mesos's action names: "REGISTER_FRAMEWORK",
                                       ///< "RUN_TASK", "TEARDOWN_FRAMEWORK", "VIEW_FLAGS", ...
  std::optional<std::string> role;     ///< the role concerned, if any
  std::optional<std::string> value;    ///< another object value (a user, a framework id)
};

/// Answers authorization questions (Mesos's ACL authorizer is one implementation). Every method
/// runs on the authorizer's executor.
class TESSERA_API Authorizer : public Module {
 public:
  /// Calls `done` once, from any thread, with true (allowed) or false (denied); an error only
  /// when the question cannot be answered (Unavailable), which callers treat as denied.
  virtual void authorized(const AuthorizationRequest& request,
                          std::function<void(Result<bool>)> done) = 0;
};

}  // namespace tessera::api

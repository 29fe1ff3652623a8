#pragma once

/// Mesos's local authorizer: answers from the ACLs of its `acls` parameter (the master's
/// --acls, a file:// path or the JSON inline). A file is reloaded when its modification time or
/// size or inode changes (checked on every question, on the module's executor); a reload that fails
/// to parse keeps the ACLs in force and logs why.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "modules/auth/acls.h"
#include "tessera/api/authorizer.h"
#include "tessera/api/module.h"

namespace tessera::modules::auth {

class LocalAuthorizer final : public api::Authorizer {
 public:
  /// Parameters: `acls` (required). Errors: InvalidArgument when the ACLs cannot be read or
  /// parsed at start (a daemon with broken ACLs does not start, as in Mesos).
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  LocalAuthorizer(api::Context* context, std::string flag, Acls acls);

  void stop() override {}
  /// Re-reads the ACLs file now (SIGHUP), changed or not; a broken file keeps the ACLs in force.
  api::Status reload() override;
  void authorized(const api::AuthorizationRequest& request,
                  std::function<void(api::Result<bool>)> done) override;

  /// The same answer, synchronously (for tests and the module's own use).
  bool decide(const api::AuthorizationRequest& request);
  /// Rereads the file now when it changed; true if the ACLs in force changed.
  bool reloadIfChanged();

 private:
  /// What tells a changed file: a rename over it changes the inode even within one mtime tick.
  struct Stamp {
    int64_t mtimeNs = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    bool operator==(const Stamp&) const = default;
  };
  std::optional<Stamp> stampOf() const;

  api::Context* context_;  ///< null in unit tests
  std::optional<std::string> path_;
  Acls acls_;
  std::optional<Stamp> stamp_;
};

}  // namespace tessera::modules::auth

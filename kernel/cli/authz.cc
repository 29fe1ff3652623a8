#include "kernel/cli/authz.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"

namespace tessera::kernel::cli {

void addAuthorizationFlags(runtime::FlagSet& flags, AuthorizationFlags& authz) {
  flags.add("acls", &authz.acls,
            "The ACLs the local authorizer answers from (Mesos's ACL JSON): file:///path or the "
            "JSON itself; a file is reloaded when it changes (a broken one keeps the old ACLs). "
            "Unset: everything is allowed");
  flags.add("authorizers", &authz.authorizers,
            "The authorizer module asked before the decisions the ACLs cover: local (Mesos's "
            "local authorizer, with --acls) or a loaded authorizer module's name");
}

api::Result<api::Authorizer*> createAuthorizer(Daemon& daemon, const AuthorizationFlags& authz) {
  bool local = authz.authorizers.empty() || authz.authorizers == "local";
  if (local && authz.acls.empty()) return static_cast<api::Authorizer*>(nullptr);
  // `local` is an alias the manifest gives Mesos's local authorizer (modules/auth).
  const auto* module = daemon.moduleManager().findOfKind(
      api::kKindAuthorizer,
      local ? std::string_view("local") : std::string_view(authz.authorizers));
  if (module == nullptr) {
    std::string loaded;
    for (const auto& m : daemon.moduleManager().modules()) {
      if (m.kind != api::kKindAuthorizer) continue;
      if (!loaded.empty()) loaded += ", ";
      loaded += fmt::format("'{}'", m.name);
    }
    return api::invalidArgument(
        "flag '--authorizers': '{}' is not a loaded authorizer module (loaded: {})",
        authz.authorizers, loaded.empty() ? "none" : loaded);
  }
  std::vector<std::pair<std::string, std::string>> parameters;
  if (!authz.acls.empty()) parameters.emplace_back("acls", authz.acls);
  auto created = daemon.modules().create<api::Authorizer>(module->name, parameters);
  if (!created) return created.status();
  return *created;
}

}  // namespace tessera::kernel::cli

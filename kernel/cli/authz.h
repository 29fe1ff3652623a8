#pragma once

/// Authorization of the master's decisions (Mesos's --acls and --authorizers): the authorizer
/// module is created only when --acls is given (or --authorizers names a module other than
/// `local`); without it the master asks nothing and allows everything.

#include <string>
#include <string_view>

#include "kernel/cli/daemon.h"
#include "kernel/runtime/flags.h"
#include "tessera/api/authorizer.h"

namespace tessera::kernel::cli {

struct AuthorizationFlags {
  std::string acls;                   ///< --acls: file:///path, /path or the JSON inline
  std::string authorizers = "local";  ///< --authorizers: `local` or a loaded module's name
};

void addAuthorizationFlags(runtime::FlagSet& flags, AuthorizationFlags& authz);

/// The authorizer module the flags name, created with `acls` as its parameter; null when no
/// authorization is asked for. Errors: InvalidArgument naming '--authorizers' (not a loaded
/// authorizer module) or '--acls' (unreadable or malformed ACLs: the daemon does not start).
api::Result<api::Authorizer*> createAuthorizer(Daemon& daemon, const AuthorizationFlags& authz);

}  // namespace tessera::kernel::cli

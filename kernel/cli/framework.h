#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/cli/common.h"
#include "kernel/modules/module_manager.h"
#include "kernel/scheduler/framework_host.h"

namespace tessera::kernel::cli {

/// `tessera framework --module=NAME --master=HOST:PORT [--port=8080] [--modules=...]`: a daemon
/// of role "framework" (HTTP port for the module's routes, /health, /metrics, ...) hosting one
/// framework module (kind "framework") against a master through the HTTP scheduler API, until
/// SIGINT or SIGTERM. `args` excludes the subcommand. Returns the exit code.
int runFramework(const std::vector<std::string>& args);

/// Checks what `tessera framework` and the personalities take from flags: --zk, a session
/// timeout of 1secs..10mins, a non-negative --failover_timeout, --secret only with --principal.
/// Errors: InvalidArgument naming the flag.
api::Status validateFrameworkHostFlags(const scheduler::FrameworkHostOptions& options);

/// The full name of the loaded framework module that `value` (a flag's value) names: its full
/// name or an alias its manifest entry gives (`marathon`). State keys use the full name, so
/// state kept before the alias existed is found. Errors: InvalidArgument naming `flag` and the
/// loaded framework modules.
api::Result<std::string> resolveFrameworkModule(const modules::ModuleManager& manager,
                                                std::string_view flag, std::string_view value);

/// Runs a daemon of role `role` hosting the framework module `options.module` (a full name or
/// alias, given as `moduleFlag`) until SIGINT or SIGTERM: sets up logging, starts the daemon
/// (modules from `common`), resolves the module's full name, resolves a zk://
/// `options.master`, starts the FrameworkHost (its store: `options.state`, by default the
/// daemon's; its routes: on the daemon's port unless `options.routerFor`), opens the HTTP port
/// and, with `options.zk`, contends (advertising --hostname or --ip and the port unless
/// `options.advertisedAddress`); a leader whose session is lost exits with status 1, an
/// abdicating one with 0. `flagValues` feeds /flags.
/// Errors are printed as `role`'s. Shared by `tessera framework` and the framework personalities
/// (`marathon`, `chronos`). Returns the exit code.
int hostFramework(std::string_view role, std::string_view moduleFlag, const CommonFlags& common,
                  scheduler::FrameworkHostOptions options,
                  std::function<std::map<std::string, std::string>()> flagValues);

}  // namespace tessera::kernel::cli

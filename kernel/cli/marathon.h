#pragma once

/// The framework personalities: `marathon` and `chronos` as names of the tessera binary (and
/// `tessera marathon`, `tessera chronos`). Each takes the program's own flags, environment
/// variables and config directory, as their Debian packages lay them out, turns them into a
/// FrameworkHostOptions and hosts a framework module with hostFramework(), as `tessera
/// framework` does.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/cli/common.h"
#include "kernel/scheduler/framework_host.h"

namespace tessera::kernel::cli {

/// What a personality's flags resolve to: the daemon's flags, the framework host's options and
/// the effective flags (redacted) for /flags.
struct PersonalityCommand {
  CommonFlags common;
  scheduler::FrameworkHostOptions options;
  std::map<std::string, std::string> flagValues;
};

/// Loads `marathon`'s flags from `args` (after the program or subcommand name), `MARATHON_<FLAG>`
/// environment variables and the config directory (`--config_dir`, else `$MARATHON_CONFIG_DIR`,
/// else /etc/marathon/conf; one file per flag), highest precedence first. Both `--flag value`
/// and `--flag=value` are accepted. Prints the usage for --help and one error line naming the
/// flag for an unknown flag or a bad value (then kExitError). On kRun, `command` is filled:
/// --http_port is the daemon's port, --hostname the advertised host, --zk the leadership and
/// state URL, --framework_name, --mesos_role and --mesos_user module parameters (same names).
LoadOutcome loadMarathonFlags(const std::vector<std::string>& args, PersonalityCommand& command);

/// As loadMarathonFlags() for `chronos`: `CHRONOS_<FLAG>`, /etc/chronos/conf (or
/// `$CHRONOS_CONFIG_DIR`); --zk_hosts and --zk_path make the zk:// URL, --mesos_framework_name
/// is the module parameter `framework_name`, --mesos_role `mesos_role`.
LoadOutcome loadChronosFlags(const std::vector<std::string>& args, PersonalityCommand& command);

/// `marathon [flags]`: loads the flags and hosts the framework module (--framework_module, a
/// full name or alias, default the alias `marathon`) until SIGINT or SIGTERM. Returns the exit
/// code.
int runMarathon(const std::vector<std::string>& args);

/// `chronos [flags]`: as runMarathon(), the module aliased `chronos` by default.
int runChronos(const std::vector<std::string>& args);

}  // namespace tessera::kernel::cli

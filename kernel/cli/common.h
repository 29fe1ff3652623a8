#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kernel/runtime/flags.h"

namespace tessera::kernel::cli {

/// Flags every daemon role takes, with Mesos's names.
struct CommonFlags {
  std::string ip = "127.0.0.1";
  uint16_t port = 5050;
  std::optional<std::string> hostname;
  std::string workDir;
  std::optional<std::string> logDir;
  std::string loggingLevel = "INFO";
  bool quiet = false;
  std::optional<std::string> modules;
  std::optional<std::string> modulesDir;
  std::optional<std::string> modulePath;
  std::optional<std::string> configDir;
};

/// Declares the common flags into `flags`, bound to `common`.
void addCommonFlags(runtime::FlagSet& flags, CommonFlags& common);

/// Declares --modules, --modules_dir and --module_path into `flags`, bound to `common` (part of
/// addCommonFlags(); the framework personalities, which have flags of their own for the rest,
/// take these as they are).
void addModuleFlags(runtime::FlagSet& flags, CommonFlags& common);

/// The check of a flag holding an IP address: InvalidArgument `'999.1.1.1' is not an IP address`.
api::Status checkIpAddress(const runtime::Flag::Value& value);

/// What loadFlags() decided.
enum class LoadOutcome { kRun, kExitOk, kExitError };

/// The exit code when flag loading ends the command (--help: 0, an error: 1), else nothing.
std::optional<int> exitCodeFor(LoadOutcome outcome);

/// Loads `flags` for role `role` from argv (after the subcommand), the environment and the
/// config directory (`$TESSERA_CONFIG_DIR`, else /etc/tessera/<role>). Prints usage for
/// --help, and one error line naming the flag (plus a hint) on bad input. Positional arguments
/// go to `positional` when given, else they are an error.
LoadOutcome loadFlags(std::string_view role, runtime::FlagSet& flags,
                      const std::vector<std::string>& args,
                      std::vector<std::string>* positional = nullptr);

/// Declares the --ssl_* flags (Mesos's LIBPROCESS_SSL_* settings, whose environment values are
/// the flags' defaults) into `flags`. loadFlags() does this for every role; a command loading
/// its flags another way (the framework personalities) calls it, then configureTls().
void addSslFlags(runtime::FlagSet& flags);
/// Installs the process's TLS (net::setProcessTls) from the --ssl_* flags once they are loaded.
/// Errors: a malformed LIBPROCESS_SSL_* boolean, a missing certificate or key setting, or a
/// file OpenSSL cannot load, named with the reason.
api::Status configureTls();

/// The directory holding the running binary.
std::filesystem::path binaryDir();
/// `<prefix>/share/tessera/modules.json` beside the binary.
std::filesystem::path defaultManifestPath();
/// `<prefix>/share/tessera/webui` beside the binary: the web UIs' folders (master, marathon,
/// chronos), in the build tree as in an installed one.
std::filesystem::path defaultWebuiDir();
/// Where `name: "foo"` libraries are looked for: `--module_path` entries, then
/// `<prefix>/lib/tessera`.
std::vector<std::filesystem::path> moduleSearchPath(const CommonFlags& common);

/// Prints `tessera <role>: <message>` on stderr, one line.
void printError(std::string_view role, std::string_view message);

}  // namespace tessera::kernel::cli

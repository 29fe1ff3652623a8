#pragma once

#include <string>
#include <vector>

namespace tessera::kernel::cli {

/// `tessera framework --module=NAME --master=HOST:PORT [--port=8080] [--modules=...]`: a daemon
/// of role "framework" (HTTP port for the module's routes, /health, /metrics, ...) hosting one
/// framework module (kind "framework") against a master through the HTTP scheduler API, until
/// SIGINT or SIGTERM. `args` excludes the subcommand. Returns the exit code.
int runFramework(const std::vector<std::string>& args);

}  // namespace tessera::kernel::cli

#pragma once

namespace tessera::kernel::cli {

/// Runs `tessera <command> [flags]` (or a Mesos alias by argv[0]); returns the exit code.
int run(int argc, char** argv);

}  // namespace tessera::kernel::cli

#include "kernel/cli/cli.h"

#include <cstdio>

namespace tessera::kernel::cli {

int run(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::puts("tessera");
  return 0;
}

}  // namespace tessera::kernel::cli

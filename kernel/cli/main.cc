#include "kernel/cli/cli.h"

int main(int argc, char** argv) { return tessera::kernel::cli::run(argc, argv); }

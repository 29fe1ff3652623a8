// modules.json: the manifest an operator gives with --modules (a path or inline JSON) or drops
// into --modules_dir (kernel/modules/manifest.cc, parseManifest).
//
// Property: parseManifest() never crashes, and every entry it accepts names a library and a
// module. No search path is given, so nothing but the input is read.

#include "fuzz/fuzz_check.h"
#include "kernel/modules/manifest.h"

using tessera::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto entries = tessera::kernel::modules::parseManifest(tessera::fuzz::text(data, size), "fuzz",
                                                         "/nonexistent/fuzz", {});
  if (!entries) return 0;
  for (const auto& entry : *entries) {
    check(!entry.library.empty(), "an accepted manifest entry names no library");
    check(!entry.module.empty(), "an accepted manifest entry names no module");
  }
  return 0;
}

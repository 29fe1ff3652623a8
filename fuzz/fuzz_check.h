#pragma once

/// What the fuzz targets share: a property check that crashes loudly (libFuzzer then saves the
/// input as a reproducer), and the input as a string_view.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tessera::fuzz {

/// Aborts with `what` when `ok` is false: a broken property is a finding like a crash.
inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

/// The fuzzer's bytes as text.
inline std::string_view text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace tessera::fuzz

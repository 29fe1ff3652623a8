#pragma once

/// This process's memory as Linux counts it (/proc/self/status), for tests that assert a
/// bound on what a peer can make a server hold.

#include <cstddef>
#include <fstream>
#include <string>
#include <string_view>

namespace tessera::testing {

/// The value of `field` (`VmRSS`, `VmHWM`, ...) of /proc/self/status in bytes; 0 if absent.
inline size_t processMemoryBytes(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
  }
  return 0;
}

/// False under AddressSanitizer, whose quarantine keeps up to 256 MB of freed memory resident:
/// there a bound on RSS says nothing, and tests assert the other signs of a bound instead.
#if defined(TESSERA_ASAN)
inline constexpr bool kResidentMemoryIsMeaningful = false;
#else
inline constexpr bool kResidentMemoryIsMeaningful = true;
#endif

/// The resident set now, in bytes.
inline size_t residentBytes() { return processMemoryBytes("VmRSS"); }

}  // namespace tessera::testing

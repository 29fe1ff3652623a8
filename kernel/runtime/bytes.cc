#include "kernel/runtime/bytes.h"

#include <fmt/format.h>

#include "tessera/api/parameters.h"

namespace tessera::kernel::runtime {

api::Result<Bytes> parseBytes(std::string_view text) {
  auto value = api::parseBytes(text);
  if (!value) return value.status();
  return Bytes{*value};
}

std::string formatBytes(Bytes bytes) {
  // Only raise the unit when nothing is lost, as stout does.
  const uint64_t b = bytes.value;
  if (b == 0 || b % kKilobyte != 0) return fmt::format("{}B", b);
  if ((b / kKilobyte) % 1024 != 0) return fmt::format("{}KB", b / kKilobyte);
  if ((b / kMegabyte) % 1024 != 0) return fmt::format("{}MB", b / kMegabyte);
  if ((b / kGigabyte) % 1024 != 0) return fmt::format("{}GB", b / kGigabyte);
  return fmt::format("{}TB", b / kTerabyte);
}

}  // namespace tessera::kernel::runtime

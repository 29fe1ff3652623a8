#include "kernel/runtime/bytes.h"

#include <fmt/format.h>

#include <cctype>
#include <limits>

namespace tessera::kernel::runtime {

api::Result<Bytes> parseBytes(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  if (end < text.size() && text[end] == '.') {
    return api::invalidArgument("'{}' is not a valid size: fractions are not allowed", text);
  }
  if (end == 0) {
    return api::invalidArgument(
        "'{}' is not a valid size: expected a number and a unit, e.g. '512MB'", text);
  }

  std::string unit(text.substr(end));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t multiplier = 0;
  if (unit == "B") {
    multiplier = 1;
  } else if (unit == "KB") {
    multiplier = kKilobyte;
  } else if (unit == "MB") {
    multiplier = kMegabyte;
  } else if (unit == "GB") {
    multiplier = kGigabyte;
  } else if (unit == "TB") {
    multiplier = kTerabyte;
  } else if (unit.empty()) {
    return api::invalidArgument("'{}' is not a valid size: missing unit (use B, KB, MB, GB or TB)",
                                text);
  } else {
    return api::invalidArgument(
        "'{}' is not a valid size: unknown unit '{}' (use B, KB, MB, GB or TB)", text,
        text.substr(end));
  }

  constexpr unsigned __int128 kMax = std::numeric_limits<uint64_t>::max();
  unsigned __int128 value = 0;
  for (char c : text.substr(0, end)) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > kMax) break;
  }
  value *= multiplier;
  if (value > kMax) return api::invalidArgument("'{}' is not a valid size: too large", text);
  return Bytes{static_cast<uint64_t>(value)};
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

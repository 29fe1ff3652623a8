#pragma once

/// Sizes as operators write them (stout's syntax): `512MB`, `1GB`, `100B`, 1024-based.

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::runtime {

/// A size in bytes. A distinct type (not a bare integer) so that flags and resources say which
/// unit they mean.
struct Bytes {
  /// The size in bytes.
  uint64_t value = 0;

  /// Three-way comparison by size.
  auto operator<=>(const Bytes&) const = default;
};

/// One kilobyte (1024 bytes); `kKilobyte * 512` etc. in the style of stout's `Kilobytes`.
inline constexpr uint64_t kKilobyte = 1024;
/// One megabyte (1024 KB).
inline constexpr uint64_t kMegabyte = 1024 * kKilobyte;
/// One gigabyte (1024 MB).
inline constexpr uint64_t kGigabyte = 1024 * kMegabyte;
/// One terabyte (1024 GB).
inline constexpr uint64_t kTerabyte = 1024 * kGigabyte;

/// api::parseBytes() (tessera/api/parameters.h, shared with module parameters): `<digits><unit>`
/// with unit `B`, `KB`, `MB`, `GB` or `TB` (any case), 1024-based, as stout's `Bytes::parse`.
/// Errors: InvalidArgument naming the text, e.g. `'1.5GB' is not a valid size: fractions are
/// not allowed`; also when the size does not fit in 64 bits.
[[nodiscard]] api::Result<Bytes> parseBytes(std::string_view text);

/// Prints `bytes` as stout does: the largest unit that loses nothing (`0B`, `100B`, `10KB`,
/// `512MB`, `1536MB`, `2TB`).
std::string formatBytes(Bytes bytes);

}  // namespace tessera::kernel::runtime

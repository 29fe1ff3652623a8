#pragma once

/// Durations as operators write them (stout's syntax): `500ms`, `5secs`, `1.5mins`.

#include <chrono>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::runtime {

/// A span of time, to the nanosecond. Flags, timeouts and intervals all use this type.
using Duration = std::chrono::nanoseconds;

/// Parses `<number><unit>`: a non-negative decimal number (`5`, `1.5`, `.5`) followed by one
/// of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`, with nothing in between, as
/// stout's `Duration::parse` does. Fractions below a nanosecond are dropped. Errors:
/// InvalidArgument naming the text, e.g. `'5parsecs' is not a valid duration: unknown unit
/// 'parsecs' (use ns, us, ms, secs, mins, hrs, days or weeks)`; also when the value does not
/// fit in 64-bit nanoseconds.
[[nodiscard]] api::Result<Duration> parseDuration(std::string_view text);

/// Prints `duration` the way stout's `operator<<(ostream&, Duration)` does: the largest unit
/// the value reaches, unless a whole number in the next smaller unit reads better (`90secs`,
/// not `1.5mins`; `500ms`; `2mins`; `10days`), up to 15 significant digits. Negative values
/// get a leading `-`.
std::string formatDuration(Duration duration);

}  // namespace tessera::kernel::runtime

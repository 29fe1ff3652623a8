#pragma once

/// Durations as operators write them (stout's syntax): `500ms`, `5secs`, `1.5mins`. The grammar
/// lives once, in module_api (tessera/api/duration.h), so flags and module parameters agree.

#include <chrono>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::runtime {

/// A span of time, to the nanosecond. Flags, timeouts and intervals all use this type.
using Duration = std::chrono::nanoseconds;

/// api::parseDuration(): `<number><unit>` with unit `ns`, `us`, `ms`, `secs`, `mins`, `hrs`,
/// `days` or `weeks`. Errors: InvalidArgument naming the text.
[[nodiscard]] api::Result<Duration> parseDuration(std::string_view text);

/// api::formatDuration(): stout's printing (`90secs`, `500ms`, `10days`).
std::string formatDuration(Duration duration);

}  // namespace tessera::kernel::runtime

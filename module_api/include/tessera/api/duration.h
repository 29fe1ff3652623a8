#pragma once

/// Durations as Mesos operators write them: stout's `Duration::parse` grammar, shared by the
/// kernel's flags and every module's parameters.

#include <chrono>
#include <string>
#include <string_view>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// Parses `<number><unit>`: a non-negative decimal number (`5`, `1.5`, `.5`) followed, with
/// nothing in between, by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`.
/// These are exactly the units stout's `Duration::parse` accepts: it has no singular (`sec`,
/// `min`, `hr`, `day`, `week`) and no short (`s`, `m`, `h`, `d`) forms, so neither do we.
/// Fractions below a nanosecond are dropped. Errors: InvalidArgument naming the text, e.g.
/// `'5s' is not a valid duration: unknown unit 's' (use ns, us, ms, secs, mins, hrs, days or
/// weeks)`; also when the value does not fit in 64-bit nanoseconds.
[[nodiscard]] TESSERA_API Result<std::chrono::nanoseconds> parseDuration(std::string_view text);

/// Prints `duration` the way stout's `operator<<(ostream&, Duration)` does: the largest unit
/// the value reaches, unless a whole number in the next smaller unit reads better (`90secs`,
/// not `1.5mins`; `500ms`; `2mins`; `10days`), up to 15 significant digits. Negative values
/// get a leading `-`. parseDuration() reads back what this prints.
TESSERA_API std::string formatDuration(std::chrono::nanoseconds duration);

/// The wall clock in seconds since the epoch, as Mesos's statistics `timestamp` carries it.
TESSERA_API double nowSeconds();

}  // namespace tessera::api

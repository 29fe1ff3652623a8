#include "kernel/runtime/duration.h"

#include "tessera/api/duration.h"

namespace tessera::kernel::runtime {

api::Result<Duration> parseDuration(std::string_view text) { return api::parseDuration(text); }

std::string formatDuration(Duration duration) { return api::formatDuration(duration); }

}  // namespace tessera::kernel::runtime

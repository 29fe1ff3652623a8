#pragma once

// Private to allocator_drf_lib: what its .cc files share.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tessera::modules::drf::detail {

/// Every metric key the allocator registers starts with this.
inline constexpr std::string_view kPrefix = "allocator/drf/";

/// values[index], 0 past the end (the per-name scalar vectors grow on demand).
inline int64_t at(const std::vector<int64_t>& values, size_t index) {
  return index < values.size() ? values[index] : 0;
}

}  // namespace tessera::modules::drf::detail

#pragma once

/// Small string helpers the kernel's parsers share (flags, the modules manifest).

#include <string_view>

namespace tessera::kernel::runtime {

/// ASCII whitespace, as `std::isspace` in the C locale: space, \t, \r, \n, \f, \v.
inline constexpr std::string_view kWhitespace = " \t\r\n\f\v";

/// `text` without leading and trailing whitespace (kWhitespace); a view into `text`, so it lives
/// no longer than `text`.
constexpr std::string_view trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kWhitespace);
  return text.substr(begin, end - begin + 1);
}

}  // namespace tessera::kernel::runtime

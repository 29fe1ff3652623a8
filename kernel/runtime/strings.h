#pragma once

/// Small string helpers the kernel's parsers share (flags, the modules manifest, HTTP bodies).

#include <cstdint>
#include <optional>
#include <string>
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

/// The value of the four hex digits `text` starts with (a JSON `\uXXXX` escape's), or nullopt
/// when it is shorter or one of them is not a hex digit.
constexpr std::optional<uint32_t> parseHex4(std::string_view text) {
  if (text.size() < 4) return std::nullopt;
  uint32_t value = 0;
  for (char c : text.substr(0, 4)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      value |= static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      value |= static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
  }
  return value;
}

/// `text` with every byte outside printable ASCII (and the backslash) written `\xNN`, cut after
/// `limit` bytes with "...": safe to put in a message or a log whatever a client or a file held.
inline std::string printable(std::string_view text, size_t limit = 200) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      out += static_cast<char>(byte);
    } else {
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 0xf]};
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

}  // namespace tessera::kernel::runtime

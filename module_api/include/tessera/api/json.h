#pragma once

/// Small helpers for writing JSON by hand where no schema (protobuf) describes the output, and
/// the UTF-8 checks every JSON reader and writer of the project shares.

#include <cstddef>
#include <string>
#include <string_view>

#include "tessera/api/visibility.h"

namespace tessera::api {

/// Appends `text` to `out` as a JSON string literal, quotes included: `"`, `\` and control
/// characters are escaped (`\n`, `\r`, `\t`, else `\u00XX`); valid UTF-8 passes through as is,
/// and every ill-formed UTF-8 sequence is written as U+FFFD, so the result is always valid JSON.
TESSERA_API void appendJsonString(std::string& out, std::string_view text);

/// `text` as a JSON string literal, quotes included (as appendJsonString()).
TESSERA_API std::string jsonQuote(std::string_view text);

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF). NUL and other control characters are valid UTF-8.
TESSERA_API bool isValidUtf8(std::string_view text);

/// The offset of the first byte of the first ill-formed UTF-8 sequence in `text`, or
/// `std::string_view::npos` when there is none.
TESSERA_API size_t findInvalidUtf8(std::string_view text);

/// `text` with every ill-formed UTF-8 sequence (each maximal ill-formed subpart, as Unicode's
/// "U+FFFD substitution of maximal subparts" recommends) replaced by U+FFFD.
TESSERA_API std::string toValidUtf8(std::string_view text);

}  // namespace tessera::api

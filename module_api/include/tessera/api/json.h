#pragma once

/// Small helpers for writing JSON by hand where no schema (protobuf) describes the output.

#include <string>
#include <string_view>

#include "tessera/api/visibility.h"

namespace tessera::api {

/// Appends `text` to `out` as a JSON string literal, quotes included: `"`, `\` and control
/// characters are escaped (`\n`, `\r`, `\t`, else `\u00XX`); other bytes pass through, so UTF-8
/// stays UTF-8.
TESSERA_API void appendJsonString(std::string& out, std::string_view text);

/// `text` as a JSON string literal, quotes included.
TESSERA_API std::string jsonQuote(std::string_view text);

}  // namespace tessera::api

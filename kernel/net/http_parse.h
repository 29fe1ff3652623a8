#pragma once

/// The pure parts of reading an HTTP request, apart from the server's sockets so that tests and
/// fuzzers (fuzz/http_request_fuzz.cc) can call them on any input.

#include <boost/beast/http/fields.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/api/http.h"

namespace tessera::kernel::net {

/// Decodes `%XX` escapes (either case); a `%` not followed by two hex digits stays as it is.
std::string percentDecode(std::string_view in);

/// RFC 9112 §6: the only transfer coding served is `chunked`, and it must come last; a request
/// carrying Transfer-Encoding with Content-Length, or several differing Content-Lengths, is
/// refused. Returns the answer for a refused request (400, or 501 for a coding other than
/// chunked), nullopt when the framing is acceptable.
std::optional<api::HttpResponse> checkFraming(const boost::beast::http::fields& headers);

}  // namespace tessera::kernel::net

#include "kernel/net/http_parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "kernel/runtime/strings.h"

namespace tessera::kernel::net {

namespace http = boost::beast::http;

std::string percentDecode(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hex(in[i + 1]);
      int lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

std::optional<api::HttpResponse> checkFraming(const http::fields& headers) {
  std::vector<std::string> codings;
  const auto encodings = headers.equal_range(http::field::transfer_encoding);
  for (auto field = encodings.first; field != encodings.second; ++field) {
    const std::string_view value(field->value().data(), field->value().size());
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string_view::npos) comma = value.size();
      std::string coding(runtime::trim(value.substr(start, comma - start)));
      std::transform(coding.begin(), coding.end(), coding.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!coding.empty()) codings.push_back(std::move(coding));
      start = comma + 1;
    }
  }
  std::optional<std::string_view> contentLength;
  const auto lengths = headers.equal_range(http::field::content_length);
  for (auto field = lengths.first; field != lengths.second; ++field) {
    const std::string_view value(field->value().data(), field->value().size());
    if (contentLength && *contentLength != value) {
      return api::HttpResponse::error(400, "the request has differing Content-Length fields");
    }
    contentLength = value;
  }
  if (headers.count(http::field::transfer_encoding) == 0) return std::nullopt;
  if (contentLength) {
    return api::HttpResponse::error(400,
                                    "the request has both Transfer-Encoding and Content-Length");
  }
  if (codings.empty() || codings.back() != "chunked") {
    return api::HttpResponse::error(400,
                                    "the request's Transfer-Encoding does not end with 'chunked'");
  }
  for (size_t i = 0; i + 1 < codings.size(); ++i) {
    if (codings[i] == "chunked") {
      return api::HttpResponse::error(400, "the request is chunked more than once");
    }
    return api::HttpResponse::error(
        501, fmt::format("transfer coding '{}' is not implemented", codings[i]));
  }
  return std::nullopt;
}

}  // namespace tessera::kernel::net

// HTTP requests as the server reads them (kernel/net/http_server.cc): Boost.Beast's request
// parser with the server's default limits, fed in chunks, then the framing check (RFC 9112,
// net::checkFraming), the path's percent-decoding and query parameters, for every request of a
// pipelined stream.
//
// Properties: nothing crashes; a request the framing check refuses is answered 400 or 501; the
// decoded path is never longer than the target.

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>

#include "fuzz/fuzz_check.h"
#include "kernel/net/http_parse.h"
#include "kernel/net/http_server.h"
#include "tessera/api/http.h"

namespace http = boost::beast::http;
using tessera::fuzz::check;

namespace {

// One request, as dispatch() turns it into an api::HttpRequest.
void dispatch(http::request<http::string_body>& request) {
  std::string_view target(request.target().data(), request.target().size());
  if (target.empty() || target.front() != '/') return;  // answered 400
  tessera::api::HttpRequest apiRequest;
  apiRequest.method = std::string(request.method_string());
  auto question = target.find('?');
  apiRequest.path = tessera::kernel::net::percentDecode(target.substr(0, question));
  check(apiRequest.path.size() <= target.size(), "percent-decoding made a path longer");
  if (question != std::string_view::npos) apiRequest.query = target.substr(question + 1);
  for (const auto& field : request) {
    apiRequest.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  apiRequest.body = std::move(request.body());
  for (std::string_view key : {"path", "offset", "length", "jsonp", ""}) {
    (void)apiRequest.queryParam(key);
  }
  (void)apiRequest.header("content-type");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how many bytes arrive at a time; the rest is the stream.
  const size_t chunk = data[0] % 64 + 1;
  std::string_view stream = tessera::fuzz::text(data + 1, size - 1);
  const tessera::kernel::net::HttpServerOptions defaults;
  // Each request of the stream, as the server reads one after the other on a connection.
  while (!stream.empty()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(defaults.maxHeaderBytes));
    parser.body_limit(defaults.maxBodyBytes);
    parser.eager(false);
    boost::beast::error_code ec;
    std::string buffered;
    size_t offered = 0;
    bool framingChecked = false;
    while (true) {
      if (parser.is_header_done() && !framingChecked) {
        framingChecked = true;
        if (auto refused = tessera::kernel::net::checkFraming(parser.get())) {
          check(refused->status == 400 || refused->status == 501,
                "a refused framing is neither 400 nor 501");
          return 0;  // the connection closes
        }
        parser.eager(true);
      }
      if (parser.is_done()) break;
      size_t used = buffered.empty() ? 0 : parser.put(boost::asio::buffer(buffered), ec);
      buffered.erase(0, used);
      if (ec == http::error::need_more || (!ec && used == 0)) {
        ec = {};
        if (offered == stream.size()) return 0;  // the stream ends inside a request
        size_t take = std::min(chunk, stream.size() - offered);
        // Boost 1.74's chunk parser asserts (wrongly: boostorg/beast#2861, fixed in 1.86) when a
        // put() after the last chunk's size line has fewer than 5 bytes; the code after the
        // assert is right and Release builds have no asserts, so such puts are not made. With
        // fewer than 5 bytes left, a chunked body cannot end ("0\r\n\r\n") anyway.
        if (parser.is_header_done() && parser.chunked()) {
          take = std::max(take, std::min(size_t{5}, stream.size() - offered));
          if (buffered.size() + take < 5) return 0;
        }
        buffered.append(stream.substr(offered, take));
        offered += take;
        continue;
      }
      if (ec) return 0;  // answered 400, 413 or 431; the connection closes
    }
    if (!framingChecked) {
      if (auto refused = tessera::kernel::net::checkFraming(parser.get())) return 0;
    }
    dispatch(parser.get());
    if (!parser.get().keep_alive()) return 0;
    // What the parser did not use belongs to the next request.
    stream = stream.substr(offered - buffered.size());
  }
  return 0;
}

#include "kernel/net/http_client.h"

#include <strings.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>
#include <variant>

#include "kernel/net/tls.h"

namespace tessera::kernel::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

std::optional<std::string> ClientResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), key.size()) == 0) {
      return value;
    }
  }
  return std::nullopt;
}

struct HttpClient::Impl {
  asio::io_context io;
  std::shared_ptr<TlsContext> tls;  // null: plain
  std::variant<std::monostate, tcp::socket, unix_socket::socket, TlsStream> socket;
  beast::flat_buffer buffer;
  std::string host = "localhost";

  // Runs the io_context until `done` or `timeout`; on timeout closes the socket (cancelling
  // everything) and drains the handlers so none outlives this call.
  bool runFor(std::chrono::milliseconds timeout, const bool& done) {
    io.restart();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done && !io.stopped()) {
      if (io.run_one_until(deadline) == 0 && std::chrono::steady_clock::now() >= deadline) break;
    }
    if (done) return true;
    closeSocket();
    io.restart();
    io.run();  // the cancelled handlers complete now
    return false;
  }

  void closeSocket() {
    std::visit(
        [](auto& s) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>) {
            beast::error_code ignored;
            s.shutdown(asio::socket_base::shutdown_both, ignored);
            s.close(ignored);
          }
        },
        socket);
    socket = std::monostate{};
    buffer.clear();
  }
};

HttpClient::HttpClient(std::shared_ptr<TlsContext> tls) : impl_(std::make_unique<Impl>()) {
  impl_->tls = std::move(tls);
}
HttpClient::~HttpClient() { close(); }

bool HttpClient::connected() const {
  return !std::holds_alternative<std::monostate>(impl_->socket);
}

void HttpClient::close() { impl_->closeSocket(); }

api::Status HttpClient::connect(std::string_view host, uint16_t port,
                                std::chrono::milliseconds timeout) {
  close();
  tcp::resolver resolver(impl_->io);
  tcp::socket socket(impl_->io);
  bool done = false;
  beast::error_code error;
  resolver.async_resolve(std::string(host), std::to_string(port),
                         [&](beast::error_code ec, const tcp::resolver::results_type& results) {
                           if (ec) {
                             error = ec;
                             done = true;
                             return;
                           }
                           asio::async_connect(socket, results,
                                               [&](beast::error_code ec, const tcp::endpoint&) {
                                                 error = ec;
                                                 done = true;
                                               });
                         });
  impl_->io.restart();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && impl_->io.run_one_until(deadline) > 0) {
  }
  if (!done) {
    resolver.cancel();
    beast::error_code ignored;
    socket.close(ignored);
    impl_->io.restart();
    impl_->io.run();
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "connecting to {}:{} timed out",
                           host, port);
  }
  if (error) return api::unavailable("cannot connect to {}:{}: {}", host, port, error.message());
  impl_->host = std::string(host) + ":" + std::to_string(port);
  if (!impl_->tls) {
    impl_->socket = std::move(socket);
    return api::Status::ok();
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  api::Status handshake =
      api::unavailable("the TLS handshake with {}:{} did not finish", host, port);
  std::optional<TlsStream> secured;
  done = false;
  connectTls(TlsStream(std::move(socket)), impl_->tls, std::string(host),
             std::max(left, std::chrono::milliseconds(1)),
             [&](api::Status status, TlsStream stream) {
               handshake = std::move(status);
               if (handshake) secured.emplace(std::move(stream));
               done = true;
             });
  impl_->io.restart();
  while (!done && impl_->io.run_one() > 0) {
  }
  if (!handshake) return handshake;
  impl_->socket.emplace<TlsStream>(std::move(*secured));
  return api::Status::ok();
}

api::Status HttpClient::connectUnix(std::string_view path, std::chrono::milliseconds timeout) {
  close();
  unix_socket::socket socket(impl_->io);
  bool done = false;
  beast::error_code error;
  socket.async_connect(unix_socket::endpoint(std::string(path)), [&](beast::error_code ec) {
    error = ec;
    done = true;
  });
  impl_->io.restart();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && impl_->io.run_one_until(deadline) > 0) {
  }
  if (!done) {
    beast::error_code ignored;
    socket.close(ignored);
    impl_->io.restart();
    impl_->io.run();
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "connecting to '{}' timed out",
                           path);
  }
  if (error) return api::unavailable("cannot connect to '{}': {}", path, error.message());
  impl_->socket = std::move(socket);
  impl_->host = "localhost";
  return api::Status::ok();
}

api::Result<ClientResponse> HttpClient::request(const ClientRequest& request,
                                                std::chrono::milliseconds timeout) {
  if (!connected()) return api::failedPrecondition("the http client is not connected");
  http::request<http::string_body> message;
  message.method_string(request.method);
  message.target(request.target);
  message.version(11);
  bool hasHost = false;
  for (const auto& [name, value] : request.headers) {
    message.insert(name, value);
    if (beast::iequals(name, "host")) hasHost = true;
  }
  if (!hasHost) message.set(http::field::host, impl_->host);
  message.body() = request.body;
  if (message.find(http::field::content_length) == message.end() &&
      message.find(http::field::transfer_encoding) == message.end()) {
    message.prepare_payload();
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  bool done = false;
  beast::error_code error;
  std::visit(
      [&](auto& socket) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(socket)>, std::monostate>) {
          http::async_write(socket, message, [&](beast::error_code ec, size_t) {
            if (ec) {
              error = ec;
              done = true;
              return;
            }
            http::async_read(socket, impl_->buffer, parser, [&](beast::error_code ec, size_t) {
              error = ec;
              done = true;
            });
          });
        }
      },
      impl_->socket);
  if (!impl_->runFor(timeout, done)) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "{} {} timed out after {}ms",
                           request.method, request.target, timeout.count());
  }
  if (error) {
    close();
    return api::unavailable("{} {} failed: {}", request.method, request.target, error.message());
  }
  auto& response = parser.get();
  ClientResponse result;
  result.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    result.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  result.body = std::move(response.body());
  result.keepAlive = response.keep_alive();
  if (!result.keepAlive) close();
  return result;
}

api::Result<ClientResponse> httpRequest(std::string_view method, std::string_view host,
                                        uint16_t port, std::string_view target,
                                        std::vector<std::pair<std::string, std::string>> headers,
                                        std::string body, std::chrono::milliseconds timeout,
                                        std::shared_ptr<TlsContext> tls) {
  HttpClient client(std::move(tls));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (auto status = client.connect(host, port, timeout); !status) return status;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  ClientRequest request{std::string(method), std::string(target), std::move(headers),
                        std::move(body)};
  return client.request(request, std::max(left, std::chrono::milliseconds(1)));
}

}  // namespace tessera::kernel::net

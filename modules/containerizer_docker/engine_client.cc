#include "modules/containerizer_docker/engine_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <future>

namespace tessera::modules::containerizer_docker {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;

struct EngineClient::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
};

namespace {

http::request<http::string_body> makeRequest(const std::string& method, const std::string& target,
                                             std::string body, const std::string& contentType) {
  http::request<http::string_body> request;
  request.method(http::string_to_verb(method));
  request.target(fmt::format("/{}{}", kEngineApiVersion, target));
  request.version(11);
  request.set(http::field::host, "docker");
  request.set(http::field::user_agent, "tessera");
  if (!body.empty() || method == "POST") {
    request.set(http::field::content_type, contentType);
    request.body() = std::move(body);
    request.prepare_payload();
  }
  return request;
}

api::Status connectError(const std::string& socketPath, const boost::system::error_code& ec) {
  return api::unavailable("cannot reach the Docker daemon at '{}': {}", socketPath, ec.message());
}

// Connects and writes the request; an error names the socket.
asio::awaitable<api::Status> connectAndSend(Socket& socket, const std::string& socketPath,
                                            http::request<http::string_body>& request) {
  boost::system::error_code ec;
  co_await socket.async_connect(asio::local::stream_protocol::endpoint(socketPath),
                                asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return connectError(socketPath, ec);
  co_await http::async_write(socket, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return api::unavailable("writing to the Docker daemon at '{}': {}", socketPath,
                               ec.message());
  co_return api::Status::ok();
}

asio::awaitable<void> runRequest(std::string socketPath, http::request<http::string_body> request,
                                 EngineClient::Done done, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  auto socket = std::make_shared<Socket>(executor);
  auto timedOut = std::make_shared<bool>(false);
  asio::steady_timer timer(executor, timeout);
  timer.async_wait([socket, timedOut](const boost::system::error_code& ec) {
    if (ec) return;
    *timedOut = true;
    boost::system::error_code ignored;
    socket->close(ignored);
  });
  const std::string what =
      fmt::format("{} {}", std::string(request.method_string()), std::string(request.target()));
  api::Status sent = co_await connectAndSend(*socket, socketPath, request);
  if (!sent) {
    timer.cancel();
    if (*timedOut) {
      done(api::makeStatus(api::StatusCode::kDeadlineExceeded,
                           "the Docker daemon at '{}' did not answer {} within {}ms", socketPath,
                           what, timeout.count()));
    } else {
      done(sent);
    }
    co_return;
  }
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  boost::system::error_code ec;
  co_await http::async_read(*socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec) {
    if (*timedOut) {
      done(api::makeStatus(api::StatusCode::kDeadlineExceeded,
                           "the Docker daemon at '{}' did not answer {} within {}ms", socketPath,
                           what, timeout.count()));
    } else {
      done(api::unavailable("reading the answer of the Docker daemon at '{}' to {}: {}", socketPath,
                            what, ec.message()));
    }
    co_return;
  }
  auto response = parser.release();
  done(EngineResponse{response.result_int(), std::move(response.body())});
}

asio::awaitable<void> runStream(std::string socketPath, http::request<http::string_body> request,
                                std::function<void(std::string_view)> onData,
                                EngineClient::Done done) {
  auto executor = co_await asio::this_coro::executor;
  Socket socket(executor);
  const std::string what =
      fmt::format("{} {}", std::string(request.method_string()), std::string(request.target()));
  api::Status sent = co_await connectAndSend(socket, socketPath, request);
  if (!sent) {
    done(sent);
    co_return;
  }
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  boost::system::error_code ec;
  co_await http::async_read_header(socket, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    done(api::unavailable("reading the answer of the Docker daemon at '{}' to {}: {}", socketPath,
                          what, ec.message()));
    co_return;
  }
  const unsigned status = parser.get().result_int();
  const bool success = status >= 200 && status < 300;
  std::string errorBody;
  char chunk[16 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    // read_some: hand over what arrived (a followed log line) without waiting to fill `chunk`.
    co_await http::async_read_some(socket, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      // The daemon closing the stream mid-body (container removed, daemon stopping).
      done(api::unavailable("the Docker daemon at '{}' broke off {}: {}", socketPath, what,
                            ec.message()));
      co_return;
    }
    const size_t got = sizeof(chunk) - parser.get().body().size;
    if (got == 0) continue;
    if (success) {
      onData(std::string_view(chunk, got));
    } else if (errorBody.size() < 64 * 1024) {
      errorBody.append(chunk, got);
    }
  }
  done(EngineResponse{status, std::move(errorBody)});
}

}  // namespace

EngineClient::EngineClient(std::string socketPath)
    : socketPath_(std::move(socketPath)), impl_(std::make_unique<Impl>()) {
  thread_ = std::thread([impl = impl_.get()] { impl->io.run(); });
}

EngineClient::~EngineClient() { stop(); }

void EngineClient::stop() {
  std::call_once(stopped_, [this] {
    impl_->work.reset();
    impl_->io.stop();
    if (thread_.joinable()) thread_.join();
  });
}

void EngineClient::request(std::string method, std::string target, std::string body, Done done,
                           std::chrono::milliseconds timeout, std::string contentType) {
  auto request = makeRequest(method, target, std::move(body), contentType);
  asio::co_spawn(impl_->io, runRequest(socketPath_, std::move(request), std::move(done), timeout),
                 asio::detached);
}

void EngineClient::stream(std::string method, std::string target,
                          std::function<void(std::string_view)> onData, Done done) {
  auto request = makeRequest(method, target, "", "application/json");
  asio::co_spawn(impl_->io,
                 runStream(socketPath_, std::move(request), std::move(onData), std::move(done)),
                 asio::detached);
}

api::Result<EngineResponse> EngineClient::call(std::string method, std::string target,
                                               std::string body, std::chrono::milliseconds timeout,
                                               std::string contentType) {
  auto answer = std::make_shared<std::promise<api::Result<EngineResponse>>>();
  auto future = answer->get_future();
  request(
      std::move(method), std::move(target), std::move(body),
      [answer](api::Result<EngineResponse> result) { answer->set_value(std::move(result)); },
      timeout, std::move(contentType));
  if (future.wait_for(timeout + std::chrono::seconds(5)) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "no answer from '{}'", socketPath_);
  }
  return future.get();
}

std::string urlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace tessera::modules::containerizer_docker

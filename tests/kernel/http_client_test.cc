#include "kernel/net/http_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <future>
#include <thread>

namespace tessera::kernel::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

TEST(HttpClientTest, SpeaksHttpOverAUnixSocket) {
  auto path = std::filesystem::temp_directory_path() /
              ("tessera-http-client-" + std::to_string(::getpid()) + ".sock");
  std::filesystem::remove(path);
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor(io, {path.string()});
  // A one-request server, as the Docker Engine API would answer.
  std::thread server([&] {
    asio::local::stream_protocol::socket socket(io);
    acceptor.accept(socket);
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::read(socket, buffer, request);
    http::response<http::string_body> response{http::status::ok, 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::string(R"({"target":")") + std::string(request.target()) + "\"}";
    response.keep_alive(false);
    response.prepare_payload();
    http::write(socket, response);
  });

  HttpClient client;
  ASSERT_TRUE(client.connectUnix(path.string(), 5s));
  auto response = client.request({"GET", "/v1.41/containers/json", {}, ""}, 5s);
  server.join();
  ASSERT_TRUE(response) << response.status().toString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"target":"/v1.41/containers/json"})");
  EXPECT_EQ(response->header("Content-Type"), "application/json");
  EXPECT_FALSE(client.connected());  // the server closed it
  std::filesystem::remove(path);
}

TEST(HttpClientTest, TimesOutOnASilentServer) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = acceptor.local_endpoint().port();
  // The connection is accepted by the kernel's backlog; nobody ever answers.
  auto response = httpRequest("GET", "127.0.0.1", port, "/", {}, "", 200ms);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.status().code(), api::StatusCode::kDeadlineExceeded);
}

TEST(HttpClientTest, ReportsARefusedConnectionAndUseBeforeConnect) {
  uint16_t port;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  auto response = httpRequest("GET", "127.0.0.1", port, "/", {}, "", 2s);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.status().code(), api::StatusCode::kUnavailable);

  HttpClient client;
  EXPECT_EQ(client.request({}, 1s).status().code(), api::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client.connectUnix("/nonexistent/tessera.sock", 1s).code(),
            api::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tessera::kernel::net

#pragma once

// Helpers for tests that talk to a real HttpServer on 127.0.0.1:0.

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace tessera::kernel::testing {

/// Polls `predicate` until it holds or `timeout` passes; true when it held.
inline bool waitUntil(const std::function<bool()>& predicate,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// A blocking raw TCP connection for sending arbitrary bytes. Reads give up after 10 s, so a
/// server that never answers fails the test instead of hanging it.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  /// Sends `bytes`; false when the server already closed.
  bool send(std::string_view bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  /// Reads until the server closes the connection (or the read timeout); returns all bytes.
  std::string readUntilClosed(bool* closed = nullptr) {
    std::string out;
    char buffer[4096];
    for (;;) {
      ssize_t n = ::recv(socket_.native_handle(), buffer, sizeof(buffer), 0);
      if (n > 0) {
        out.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (closed != nullptr) *closed = (n == 0 || errno == ECONNRESET);
      return out;
    }
  }

  /// Reads until `marker` has been seen (or close/timeout); returns all bytes read.
  std::string readUntil(std::string_view marker) {
    std::string out;
    char buffer[4096];
    while (out.find(marker) == std::string::npos) {
      ssize_t n = ::recv(socket_.native_handle(), buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace tessera::kernel::testing

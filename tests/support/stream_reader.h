#pragma once

/// A blocking loopback HTTP client for one streaming request (Server-Sent Events): sends the
/// request, then reads on demand and keeps every byte, so a test can wait for an event as it
/// arrives (a deadline, never a sleep) and check the order of what came.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::testing {

class StreamReader {
 public:
  /// A GET of `target` on 127.0.0.1:`port` asking for an event stream.
  static std::string getRequest(std::string_view target, uint16_t port) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nAccept: text/event-stream\r\n\r\n";
  }

  /// Connects to 127.0.0.1:`port` and sends `request` as is. `poll` bounds each read, so a
  /// wait checks its deadline at least that often.
  StreamReader(uint16_t port, const std::string& request,
               std::chrono::milliseconds poll = std::chrono::milliseconds(200)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(poll).count();
    timeval tv{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (connected_) connected_ = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) > 0;
  }
  ~StreamReader() { close(); }
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  bool connected() const { return connected_; }

  /// Reads until `marker` was seen (true), or the server closed or `timeout` passed (false).
  bool readUntil(std::string_view marker, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (seen_.find(marker) == std::string::npos) {
      if (closed_ || std::chrono::steady_clock::now() > deadline) return false;
      readSome();
    }
    return true;
  }

  /// Reads until the server closes (true) or `timeout` passed (false).
  bool readUntilClosed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) readSome();
    return closed_;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// Every byte read so far (status line and headers included).
  const std::string& seen() const { return seen_; }

 private:
  void readSome() {
    char buffer[4096];
    ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n > 0) {
      seen_.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closed_ = true;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string seen_;
};

}  // namespace tessera::testing

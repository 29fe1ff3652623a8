#pragma once

// A tiny HTTP server for the fetcher's tests and bench, on 127.0.0.1:0, one thread per
// connection (no gtest: bench/fetcher_bench.cc uses it too).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tessera::kernel::agent::testing {

// A tiny HTTP server on 127.0.0.1:0: serves `files` by path, counts requests per
// path, stalls on "/stall" (headers and a few bytes, then nothing), and holds responses of paths
// in `gated` until openGate().
class TestHttpServer {
 public:
  TestHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 64) != 0) {
      std::perror("TestHttpServer: bind/listen on 127.0.0.1:0");
      std::abort();
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~TestHttpServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      gateOpen_ = true;
    }
    changed_.notify_all();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    for (auto& t : connections_) t.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void serve(const std::string& path, std::string body) {
    std::lock_guard lock(mutex_);
    files_[path] = std::move(body);
  }
  void gate(const std::string& path) {
    std::lock_guard lock(mutex_);
    gated_[path] = true;
  }
  void openGate() {
    std::lock_guard lock(mutex_);
    gateOpen_ = true;
    changed_.notify_all();
  }
  // Until release(path): a response of `path` sends its headers and the first half of its body,
  // then nothing more, and the connection closes only when the server stops (a fetch cut off
  // mid-transfer). Afterwards `path` is served whole again.
  void cutHalfway(const std::string& path) {
    std::lock_guard lock(mutex_);
    cut_[path] = true;
  }
  void release(const std::string& path) {
    std::lock_guard lock(mutex_);
    cut_.erase(path);
  }
  int requests(const std::string& path) {
    std::lock_guard lock(mutex_);
    return requests_[path];
  }
  // Waits until `path` was asked for `count` times.
  bool waitForRequests(const std::string& path, int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30),
                             [&] { return requests_[path] >= count; });
  }

 private:
  void acceptLoop() {
    for (;;) {
      int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      std::lock_guard lock(mutex_);
      if (stopping_) {
        ::close(client);
        return;
      }
      connections_.emplace_back([this, client] { handle(client); });
    }
  }
  void send(int client, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::send(client, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  void handle(int client) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      request.append(buffer, static_cast<size_t>(n));
    }
    std::istringstream line(request);
    std::string method, path;
    line >> method >> path;
    path = path.substr(0, path.find('?'));
    std::unique_lock lock(mutex_);
    ++requests_[path];
    changed_.notify_all();
    if (path == "/stall") {
      lock.unlock();
      send(client, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nabc");
      lock.lock();
      changed_.wait(lock, [&] { return stopping_; });
    } else if (gated_.count(path)) {
      changed_.wait(lock, [&] { return gateOpen_; });
    }
    auto it = files_.find(path);
    if (it != files_.end() && cut_.count(path)) {
      const std::string head =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(it->second.size()) +
          "\r\nConnection: close\r\n\r\n" + it->second.substr(0, it->second.size() / 2);
      lock.unlock();
      send(client, head);
      lock.lock();
      changed_.wait(lock, [&] { return stopping_; });
      lock.unlock();
      ::close(client);
      return;
    }
    const std::string response =
        it == files_.end()
            ? std::string(
                  "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n"
                  "\r\nnot found")
            : "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(it->second.size()) +
                  "\r\nConnection: close\r\n\r\n" + it->second;
    lock.unlock();
    if (path != "/stall") send(client, response);
    ::close(client);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> connections_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> files_;
  std::map<std::string, int> requests_;
  std::map<std::string, bool> gated_;
  std::map<std::string, bool> cut_;
  bool gateOpen_ = false;
  bool stopping_ = false;
};

}  // namespace tessera::kernel::agent::testing

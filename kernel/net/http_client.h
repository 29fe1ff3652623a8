#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::kernel::net {

class TlsContext;
/// The process's TLS (tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();

/// A request for HttpClient.
struct ClientRequest {
  std::string method = "GET";  ///< any token: "GET", "POST", ...
  std::string target = "/";    ///< path and query: "/metrics/snapshot?timeout=5secs"
  std::vector<std::pair<std::string, std::string>> headers;  ///< sent as given
  std::string body;                                          ///< sent with Content-Length
};

/// A complete response as HttpClient read it.
struct ClientResponse {
  int status = 0;                                            ///< 200, 404, ...
  std::vector<std::pair<std::string, std::string>> headers;  ///< as received
  std::string body;        ///< complete (chunked bodies are joined)
  bool keepAlive = false;  ///< the server left the connection open

  /// The first header named `name` (any case).
  std::optional<std::string> header(std::string_view name) const;
};

/// A blocking HTTP/1.1 client over one connection (TCP or a unix socket), kept alive between
/// requests. It runs its own private io_context, so it needs no Runtime and may be used from
/// any one thread at a time (tests, the CLI, a blocking-pool job; not from a strand).
///
/// TCP connections speak TLS when the client has a TlsContext (by default the process's, see
/// processTls()); unix sockets never do.
class HttpClient {
 public:
  /// `tls` null: plain HTTP.
  explicit HttpClient(std::shared_ptr<TlsContext> tls = processTls());
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Connects to `host`:`port` (a name or an address), then handshakes TLS when the client has
  /// a TlsContext. Errors: Unavailable when resolving, connecting or the TLS handshake fails
  /// (the message names the peer and OpenSSL's reason), DeadlineExceeded after `timeout`.
  api::Status connect(std::string_view host, uint16_t port, std::chrono::milliseconds timeout);
  /// Connects to the unix socket at `path` (the Docker Engine API's /var/run/docker.sock).
  /// Errors as connect().
  api::Status connectUnix(std::string_view path, std::chrono::milliseconds timeout);
  /// Sends `request` and reads the response. Sets Host (to the connected host) and
  /// Content-Length unless given. Errors: FailedPrecondition when not connected, Unavailable
  /// when the connection fails, DeadlineExceeded after `timeout` (the connection is then
  /// closed). After a response without keep-alive the client is disconnected.
  api::Result<ClientResponse> request(const ClientRequest& request,
                                      std::chrono::milliseconds timeout);
  /// True while a connection is open.
  bool connected() const;
  /// Closes the connection. Idempotent.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One request on a fresh TCP connection: connect, send, read, close. Errors as HttpClient.
api::Result<ClientResponse> httpRequest(std::string_view method, std::string_view host,
                                        uint16_t port, std::string_view target,
                                        std::vector<std::pair<std::string, std::string>> headers,
                                        std::string body, std::chrono::milliseconds timeout,
                                        std::shared_ptr<TlsContext> tls = processTls());

}  // namespace tessera::kernel::net

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::net {

class TlsContext;
/// The process's TLS (tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();

/// One request for HttpStreamClient.
struct StreamRequest {
  std::string host;  ///< a name or an address
  uint16_t port = 0;
  std::string method = "POST";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;  ///< sent as given
  std::string body;                                          ///< sent with Content-Length
  /// Resolving, connecting and sending must be done within it, and the response head must
  /// arrive within it too; the body may then take as long as it takes.
  std::chrono::milliseconds headTimeout{10000};
};

/// What the client reports, each posted to the executor given to start().
struct StreamHandlers {
  /// The status line and headers arrived (once, before any chunk).
  std::function<void(int status, std::vector<std::pair<std::string, std::string>> headers)> onHead;
  /// A piece of the body, as it arrived off the socket (chunked or not; the chunk framing is
  /// removed). Pieces do not follow any record boundary.
  std::function<void(std::string data)> onData;
  /// The exchange ended: ok when the whole body was read, else Unavailable (cannot connect,
  /// connection lost, malformed response) or DeadlineExceeded (no head in time). Called exactly
  /// once, last, unless cancelled.
  std::function<void(api::Status status)> onClose;
};

/// An asynchronous HTTP/1.1 client for one request whose response body is a long-lived stream
/// (the scheduler API's SUBSCRIBE), on the runtime's io_context (Boost.Beast). Also fine for an
/// ordinary request: the body then comes in one or a few onData calls.
///
/// Threading. start() and cancel() are called on `executor` (the owner's); every handler runs
/// there. After cancel() returns (or the client is destroyed, also on `executor`) no handler
/// runs, even one already posted. The socket work happens on a strand of its own, and the
/// executor need only outlive the client.
class HttpStreamClient {
 public:
  /// Speaks TLS when `tls` is set (by default the process's, processTls()).
  HttpStreamClient(runtime::Runtime& runtime, api::Executor& executor,
                   std::shared_ptr<TlsContext> tls = processTls());
  /// cancel()s.
  ~HttpStreamClient();
  HttpStreamClient(const HttpStreamClient&) = delete;
  HttpStreamClient& operator=(const HttpStreamClient&) = delete;

  /// Connects and sends `request` (with Host, Connection: close and Content-Length added unless
  /// given). Call once.
  void start(StreamRequest request, StreamHandlers handlers);
  /// Closes the connection; no handler runs afterwards. Idempotent.
  void cancel();

  struct Session;

 private:
  runtime::Runtime& runtime_;
  api::Executor& executor_;
  std::shared_ptr<TlsContext> tls_;
  std::shared_ptr<Session> session_;
};

}  // namespace tessera::kernel::net

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tessera/api/status.h"

namespace tessera::kernel::runtime {
class MetricsRegistry;
}  // namespace tessera::kernel::runtime

namespace tessera::kernel::net {

class TlsContext;
/// The process's TLS (tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();

/// A response whose body is sent as it is produced (HTTP/1.1 chunked), for long-lived streams
/// such as the scheduler API's SUBSCRIBE (RecordIO events). Every method is thread-safe and
/// non-blocking; calls from one thread are sent in order. The connection closes when the
/// stream ends. Dropping the last reference ends the stream (or, before start(), answers 500).
///
/// Bounded: when the bytes written but not yet taken by the client pass the stream's limit
/// (HttpServerOptions::maxStreamQueuedBytes, or setMaxQueuedBytes()), the server closes the
/// connection with the reason logged, and onClose runs as for any other close.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  /// Sends the status line and headers (`Transfer-Encoding: chunked`, `Connection: close`).
  /// Call once, before write(); later calls are ignored.
  virtual void start(int status, std::string contentType,
                     std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  /// Like start(), but the head announces `Content-Length: length` and no chunked encoding:
  /// the body goes out exactly as written. Write `length` bytes in total, then end(); ending
  /// short closes the connection, which the client sees as a truncated body. For a file
  /// download whose size is known up front.
  virtual void startSized(int status, std::string contentType, uint64_t length,
                          std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  /// Answers with a whole response instead of a stream, as an ordinary route does: sized, and
  /// the connection stays open for the client's next request when it asked for keep-alive. For
  /// a streaming route's short answers (a scheduler call's 202, a 400), which must not cost the
  /// client its connection (over TLS, a handshake per call). Call instead of start(); the
  /// stream is ended by it, so later calls of start(), write() and respond() do nothing.
  virtual void respond(api::HttpResponse response) = 0;
  /// Queues `data` as one chunk (empty data is skipped). False once the stream is closed, and
  /// when `data` would take the bytes waiting to be sent past the limit: then the stream is
  /// closed and `data` dropped. A write into an empty queue is never refused, whatever its size.
  virtual bool write(std::string data) = 0;
  /// Calls `fn` once, on the connection's strand, when everything written so far has gone
  /// to the socket; drops `fn` instead if the connection closes first. Lets a producer keep
  /// at most one chunk queued, so its memory stays bounded whatever the client's pace.
  virtual void whenWritten(std::function<void()> fn) = 0;
  /// Replaces the server's maxStreamQueuedBytes for this stream (0: no limit). Call before
  /// the first write().
  virtual void setMaxQueuedBytes(size_t bytes) = 0;
  /// Ends the body and closes the connection. Idempotent.
  virtual void end() = 0;
  /// False once the client went away, the server stopped or end() was called.
  virtual bool open() const = 0;
  /// Calls `fn` once when the stream closes for any reason (at once if it already has), from
  /// an arbitrary thread: post to your own executor from there.
  virtual void onClose(std::function<void()> fn) = 0;
};

/// Handles a streaming request; runs on the route's executor.
using HttpStreamHandler =
    std::function<void(const api::HttpRequest&, std::shared_ptr<HttpStream> stream)>;

/// One route: which requests it takes, where its handler runs and the handler.
struct Route {
  std::string method;               ///< "GET", ... or "*" for any
  std::string path;                 ///< starts with '/'
  bool prefix = false;              ///< also every path below `path`
  api::Executor* executor;          ///< where `handler` runs; outlives the route
  api::HttpHandler handler;         ///< set for an ordinary route
  HttpStreamHandler streamHandler;  ///< set instead for a streaming route
};

/// The header a gate sets on a request it authenticated: the principal (lower-case, as every
/// header name in api::HttpRequest). A gate drops any such header the client sent.
inline constexpr std::string_view kAuthenticatedPrincipalHeader = "x-tessera-principal";

/// Decides whether a request may reach the route it matched (authentication): calls `next`
/// once, from any thread, with the request to hand on (it may add headers) and either nothing
/// (go on) or the response to answer instead (a 401). Runs on the connection's strand: hand
/// slow work to another executor.
using HttpGate = std::function<void(
    api::HttpRequest request,
    std::function<void(api::HttpRequest request, std::optional<api::HttpResponse> refusal)> next)>;

/// Maps (method, path) to routes. Exact paths beat prefixes and the longest prefix wins; the
/// most specific path decides, so a path that matches but not for the method is a 405.
/// Thread-safe: routes may be added and removed while requests are served.
class Router {
 public:
  /// What a lookup found.
  struct Match {
    std::shared_ptr<const Route> route;  ///< null when nothing matched
    int status = 200;                    ///< 200, 404 (no path) or 405 (path, not method)
    std::string allow;                   ///< for a 405: the methods the path takes, ", "-joined
  };

  /// Adds a route whose handler runs on `executor` (which must outlive the route). Errors:
  /// InvalidArgument for a path not starting with '/', an empty method or a null executor;
  /// AlreadyExists when the same method, path and prefix-ness are taken.
  api::Status addRoute(std::string_view method, std::string_view path, api::Executor* executor,
                       api::HttpHandler handler, bool prefix = false);
  /// Adds a streaming route: the handler gets an HttpStream instead of a responder. Errors as
  /// addRoute().
  api::Status addStreamRoute(std::string_view method, std::string_view path,
                             api::Executor* executor, HttpStreamHandler handler,
                             bool prefix = false);
  /// Removes one route; unknown routes are ignored.
  void removeRoute(std::string_view method, std::string_view path, bool prefix = false);
  /// Removes every route whose handler runs on `executor` (a component going away).
  void removeRoutes(const api::Executor* executor);
  /// The route for `method` on `path` (a decoded path without query).
  Match lookup(std::string_view method, std::string_view path) const;
  /// Puts `gate` in front of every route (null: none). Requests already past it are not
  /// asked again.
  void setGate(HttpGate gate);
  /// The gate, or null.
  std::shared_ptr<const HttpGate> gate() const;

 private:
  api::Status add(Route route);

  // path -> method -> route
  using Table =
      std::map<std::string, std::map<std::string, std::shared_ptr<const Route>>, std::less<>>;
  mutable std::shared_mutex mutex_;
  Table exact_;
  Table prefixes_;
  std::shared_ptr<const HttpGate> gate_;
};

class ModuleStreams;

/// An api::HttpRouter bound to one executor, for a module's Context: every route it adds runs
/// on that executor, and the routes go away with the adapter. Streaming routes hand the module
/// an api::HttpStreamWriter over an HttpStream whose callbacks are posted to the executor; the
/// streams still open when the adapter goes (the module instance stopped) are ended then, and
/// their callbacks dropped. Thread-safe.
class ExecutorRouter final : public api::HttpRouter {
 public:
  /// `router` and `executor` must outlive the adapter.
  ExecutorRouter(std::shared_ptr<Router> router, api::Executor& executor);
  /// Removes the routes added through this adapter and ends its open streams.
  ~ExecutorRouter() override;
  ExecutorRouter(const ExecutorRouter&) = delete;
  ExecutorRouter& operator=(const ExecutorRouter&) = delete;

  api::Status addRoute(std::string_view method, std::string_view path, api::HttpHandler handler,
                       bool prefix = false) override;
  api::Status addStreamingRoute(std::string_view method, std::string_view path,
                                api::HttpStreamingHandler handler, bool prefix = false) override;

  /// Streams opened through this adapter and not yet closed (test hook).
  size_t openStreamsForTest() const;

 private:
  struct Added {
    std::string method;
    std::string path;
    bool prefix;
  };
  std::shared_ptr<Router> router_;
  api::Executor& executor_;
  std::shared_ptr<ModuleStreams> streams_;
  // False once the router is destroyed: a request already posted to the executor then gets a
  // 503 instead of reaching a module that may be gone.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::mutex mutex_;
  std::vector<Added> added_;
};

/// Limits and placement of an HttpServer.
struct HttpServerOptions {
  std::string address = "127.0.0.1";       ///< IPv4 or IPv6 literal; "0.0.0.0" for all
  uint16_t port = 0;                       ///< 0: an ephemeral port, see HttpServer::port()
  size_t maxBodyBytes = 16 * 1024 * 1024;  ///< larger bodies get 413
  size_t maxHeaderBytes = 64 * 1024;       ///< larger request heads get 431
  size_t maxConnections = 1024;            ///< beyond: 503 and close
  /// A request head must arrive within it, counted from the connection's start or the end of
  /// the previous response (so it is the keep-alive idle timeout too): slow or idle clients
  /// are closed.
  std::chrono::milliseconds headerTimeout{15000};
  std::chrono::milliseconds bodyTimeout{60000};   ///< the body must arrive within it
  std::chrono::milliseconds writeTimeout{60000};  ///< a response must be taken within it
  /// A streaming response (HttpStream) with more than this written by its handler and not yet
  /// taken by the client is closed, with the reason logged: a client that stops reading costs
  /// the server at most this much. 0: no limit. A stream may set its own (setMaxQueuedBytes).
  size_t maxStreamQueuedBytes = 1024 * 1024;
  /// When set, the server counts `http/requests`, `http/responses_<N>xx`,
  /// `http/streams_closed_slow` (streams closed for passing their queue limit) and reports the
  /// `http/connections` gauge here. Must outlive the server.
  runtime::MetricsRegistry* metrics = nullptr;
  /// TLS for every connection (see tls.h; downgrade lets plain clients in too); null: plain.
  /// Defaults to the process's (processTls()). A failed handshake is logged with the peer and
  /// the connection closed; it must complete within headerTimeout.
  std::shared_ptr<TlsContext> tls = processTls();
};

/// An HTTP/1.1 server on the runtime's io_context. Each connection has its own strand;
/// handlers run on their route's executor and answer through an api::HttpResponder callable
/// from any thread, exactly once. Errors are JSON `{"message": ...}`: 400 for a malformed
/// request (then close), 404, 405, 413, 431, 503 when at the connection cap. A handler that
/// never answers holds nothing but a weak reference once its connection closes.
class HttpServer {
 public:
  /// Routes come from `router`, which may change while serving.
  HttpServer(runtime::Runtime& runtime, std::shared_ptr<Router> router,
             HttpServerOptions options = {});
  /// stop()s.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds, listens and starts accepting. Errors: Unavailable when the address cannot be
  /// bound, InvalidArgument for a bad address, FailedPrecondition when already started.
  api::Status start();
  /// The bound port (after start()), 0 before.
  uint16_t port() const;
  /// Closes the listener and every connection; waits (up to a few seconds) for sessions to
  /// finish their current step. Idempotent; not from an io thread of the runtime.
  void stop();

  /// Open connections right now (test hook).
  size_t connectionsForTest() const;

  /// Shared with the sessions, so a connection outlives neither its server state nor the
  /// router even when the HttpServer object is gone first.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tessera::kernel::net

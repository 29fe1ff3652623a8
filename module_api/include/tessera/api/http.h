#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// An HTTP request as a route handler sees it; the body is complete.
struct HttpRequest {
  std::string method;                          ///< "GET", "POST", ...
  std::string path;                            ///< decoded path, without the query: "/v2/apps"
  std::string query;                           ///< raw query string without '?': "a=1&b=2"
  std::map<std::string, std::string> headers;  ///< keys lower-case
  std::string body;
  std::string remoteAddress;  ///< "127.0.0.1:53412"

  /// The first value of query parameter `key`, percent-decoded.
  TESSERA_API std::optional<std::string> queryParam(std::string_view key) const;
  /// The value of header `name` (any case).
  TESSERA_API std::optional<std::string> header(std::string_view name) const;
};

/// A complete response.
struct HttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// A JSON response.
  static HttpResponse json(int status, std::string body) {
    return HttpResponse{status, "application/json", {}, std::move(body)};
  }
  /// A plain-text response.
  static HttpResponse text(int status, std::string body) {
    return HttpResponse{status, "text/plain; charset=utf-8", {}, std::move(body)};
  }
  /// An error response: `{"message": "<message>"}` with the given 4xx/5xx status.
  TESSERA_API static HttpResponse error(int status, std::string_view message);
};

/// Completes a request. Call exactly once, from any thread.
using HttpResponder = std::function<void(HttpResponse)>;
/// Handles one request; runs on the executor of the component that registered the route.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

/// One Server-Sent Event (the `text/event-stream` format browsers' EventSource reads).
struct ServerSentEvent {
  std::string event;  ///< `event:` line; empty: none (the client's default, "message")
  std::string data;   ///< one `data:` line per line of it (split at CR, LF or CRLF)
  std::string id;     ///< `id:` line; empty: none
  std::chrono::milliseconds retry{0};  ///< `retry:` line when positive

  /// The event framed for the wire, ending with the blank line that dispatches it. CR and LF
  /// in `event` and `id` (which cannot carry them) are dropped.
  TESSERA_API std::string format() const;
};

/// How long an event stream may stay silent before the kernel sends a `: keep-alive` comment,
/// unless the module chooses otherwise: well inside the idle timeouts of common proxies.
inline constexpr std::chrono::milliseconds kDefaultKeepAliveInterval = std::chrono::seconds(15);

/// A response a module writes piece by piece (chunked transfer encoding), for event streams
/// and long downloads. A streaming route's handler gets one instead of an HttpResponder.
///
/// Every method is thread-safe and non-blocking; the module normally calls them from its own
/// executor. Callbacks (onClosed, whenDrained) always run on the executor of the module that
/// registered the route, as handlers do, and never after that module's Context is gone.
///
/// Lifetime: the module holds the writer as long as it streams. Dropping the last reference
/// ends the stream (before start(): the client gets a 500). When the module's Context is
/// destroyed (the instance stops), every stream it still has open is ended by the kernel and
/// its callbacks are dropped without running; the writer stays safe to call (write() is then
/// false). Between the module's destruction and its Context's, a client going away may still
/// post onClosed: a module ends (or drops) its open streams in Module::stop().
///
/// Bounded memory: bytes written but not yet taken by the client count against a limit (the
/// daemon's, 1 MiB unless configured, or setMaxQueuedBytes()). A write that would pass it
/// closes the stream instead (write() returns false, onClosed runs), so a client that stops
/// reading costs the daemon at most the limit. A producer that must not lose its stream keeps
/// at most about one chunk queued: write, then wait for whenDrained() before the next.
class TESSERA_API HttpStreamWriter {
 public:
  virtual ~HttpStreamWriter() = default;

  /// Sends the status line and headers, with `Transfer-Encoding: chunked`; the connection
  /// closes when the stream ends. Call once, before write(); later calls are ignored.
  virtual void start(int status, std::string contentType,
                     std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  /// start()s a Server-Sent Events stream: 200, `text/event-stream`, `Cache-Control:
  /// no-cache` and `headers`; then, while the stream is open, the kernel writes a
  /// `: keep-alive` comment whenever `keepAlive` passes with nothing else written (zero or
  /// negative: never), so the module needs no timer for it.
  virtual void startEvents(std::chrono::milliseconds keepAlive = kDefaultKeepAliveInterval,
                           std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  /// Queues `data` as one chunk (empty data is skipped and returns true). False before
  /// start(), once the stream is closed or ended, and when `data` would take the queued bytes
  /// past the limit: then the stream is closed and `data` dropped. A write into an empty
  /// queue is never refused for its size.
  virtual bool write(std::string data) = 0;
  /// write()s `event` framed as ServerSentEvent::format() says.
  bool writeEvent(const ServerSentEvent& event) { return write(event.format()); }
  /// Calls `fn` on the module's executor once everything written so far has gone to the
  /// socket; drops it instead if the stream closes first.
  virtual void whenDrained(std::function<void()> fn) = 0;
  /// Calls `fn` once on the module's executor when the stream closes for any reason: the
  /// client went away, the queue limit was passed, the server stopped, or the end() the module
  /// asked for was sent. Registered after the close, it still runs (posted). A later call
  /// replaces an earlier `fn`. Callbacks are dropped once it has run, so they may hold the
  /// writer without leaking it.
  virtual void onClosed(std::function<void()> fn) = 0;
  /// Replaces the daemon's queue limit for this stream (0: no limit). Call before the first
  /// write().
  virtual void setMaxQueuedBytes(size_t bytes) = 0;
  /// Ends the body (the terminating chunk) and closes the connection. Idempotent.
  virtual void end() = 0;
  /// False once the client went away, the limit was passed, the server or module stopped, or
  /// end() was called.
  virtual bool open() const = 0;
};

/// Handles one request of a streaming route; runs on the executor of the component that
/// registered the route. Keep `stream` for as long as the response lasts.
using HttpStreamingHandler =
    std::function<void(const HttpRequest&, std::shared_ptr<HttpStreamWriter> stream)>;

/// Lets a module serve HTTP on the daemon's port.
class TESSERA_API HttpRouter {
 public:
  virtual ~HttpRouter() = default;
  /// Routes `method` (or "*" for any) on `path` to `handler`; with `prefix`, every path
  /// below `path` too (longest prefix wins). Errors: AlreadyExists if the route is taken,
  /// InvalidArgument if `path` does not start with '/'.
  virtual Status addRoute(std::string_view method, std::string_view path, HttpHandler handler,
                          bool prefix = false) = 0;
  /// Like addRoute(), for a response the handler writes as it goes (an HttpStreamWriter):
  /// event streams, chunked downloads. Ordinary and streaming routes share one table, so a
  /// (method, path) is one or the other. Errors: as addRoute(); Unimplemented from a router
  /// that cannot stream (this default, kept so that routers written for api version 5, such
  /// as tests' null routers, still build).
  virtual Status addStreamingRoute(std::string_view method, std::string_view path,
                                   HttpStreamingHandler handler, bool prefix = false);
};

}  // namespace tessera::api

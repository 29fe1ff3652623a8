#include "kernel/net/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include "kernel/net/http_parse.h"
#include "kernel/net/module_stream.h"
#include "kernel/net/tls.h"
#include "kernel/runtime/logging.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/strings.h"

namespace tessera::kernel::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------------------------------------
// Router

namespace {

bool prefixMatches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

}  // namespace

api::Status Router::addRoute(std::string_view method, std::string_view path,
                             api::Executor* executor, api::HttpHandler handler, bool prefix) {
  if (!handler) return api::invalidArgument("route '{}' has no handler", path);
  return add(
      Route{std::string(method), std::string(path), prefix, executor, std::move(handler), nullptr});
}

api::Status Router::addStreamRoute(std::string_view method, std::string_view path,
                                   api::Executor* executor, HttpStreamHandler handler,
                                   bool prefix) {
  if (!handler) return api::invalidArgument("route '{}' has no handler", path);
  return add(
      Route{std::string(method), std::string(path), prefix, executor, nullptr, std::move(handler)});
}

api::Status Router::add(Route route) {
  if (route.path.empty() || route.path.front() != '/') {
    return api::invalidArgument("route path '{}' does not start with '/'", route.path);
  }
  if (route.method.empty())
    return api::invalidArgument("route '{}' has an empty method", route.path);
  if (route.executor == nullptr) {
    return api::invalidArgument("route '{}' has no executor", route.path);
  }
  auto shared = std::make_shared<const Route>(std::move(route));
  std::unique_lock lock(mutex_);
  auto& methods = (shared->prefix ? prefixes_ : exact_)[shared->path];
  if (!methods.emplace(shared->method, shared).second) {
    return api::alreadyExists("route {} '{}'{} is already taken", shared->method, shared->path,
                              shared->prefix ? " (prefix)" : "");
  }
  return api::Status::ok();
}

void Router::removeRoute(std::string_view method, std::string_view path, bool prefix) {
  std::unique_lock lock(mutex_);
  Table& table = prefix ? prefixes_ : exact_;
  auto it = table.find(path);
  if (it == table.end()) return;
  it->second.erase(std::string(method));
  if (it->second.empty()) table.erase(it);
}

void Router::removeRoutes(const api::Executor* executor) {
  std::unique_lock lock(mutex_);
  for (Table* table : {&exact_, &prefixes_}) {
    for (auto it = table->begin(); it != table->end();) {
      std::erase_if(it->second,
                    [executor](const auto& entry) { return entry.second->executor == executor; });
      it = it->second.empty() ? table->erase(it) : std::next(it);
    }
  }
}

void Router::setGate(HttpGate gate) {
  std::unique_lock lock(mutex_);
  gate_ = gate ? std::make_shared<const HttpGate>(std::move(gate)) : nullptr;
}

std::shared_ptr<const HttpGate> Router::gate() const {
  std::shared_lock lock(mutex_);
  return gate_;
}

Router::Match Router::lookup(std::string_view method, std::string_view path) const {
  std::shared_lock lock(mutex_);
  const std::map<std::string, std::shared_ptr<const Route>>* methods = nullptr;
  if (auto it = exact_.find(path); it != exact_.end()) {
    methods = &it->second;
  } else {
    size_t longest = 0;
    for (const auto& [prefix, candidates] : prefixes_) {
      if (prefix.size() >= longest && prefixMatches(prefix, path)) {
        longest = prefix.size();
        methods = &candidates;
      }
    }
  }
  Match match;
  if (methods == nullptr) {
    match.status = 404;
    return match;
  }
  auto it = methods->find(std::string(method));
  if (it == methods->end()) it = methods->find("*");
  if (it != methods->end()) {
    match.route = it->second;
    return match;
  }
  match.status = 405;
  for (const auto& [name, route] : *methods) {
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += name;
  }
  return match;
}

ExecutorRouter::ExecutorRouter(std::shared_ptr<Router> router, api::Executor& executor)
    : router_(std::move(router)),
      executor_(executor),
      streams_(std::make_shared<ModuleStreams>(executor)) {}

ExecutorRouter::~ExecutorRouter() {
  {
    std::lock_guard lock(mutex_);
    for (const auto& added : added_) router_->removeRoute(added.method, added.path, added.prefix);
  }
  // After the routes: no new stream can open, and a request already on its way is refused.
  streams_->closeAll();
  *alive_ = false;
}

api::Status ExecutorRouter::addStreamingRoute(std::string_view method, std::string_view path,
                                              api::HttpStreamingHandler handler, bool prefix) {
  if (!handler) return api::invalidArgument("route '{}' has no handler", path);
  std::lock_guard lock(mutex_);
  api::Status status = router_->addStreamRoute(
      method, path, &executor_,
      [streams = streams_, handler = std::move(handler)](const api::HttpRequest& request,
                                                         std::shared_ptr<HttpStream> stream) {
        auto writer = streams->open(std::move(stream));
        if (writer) handler(request, std::move(writer));
      },
      prefix);
  if (status) added_.push_back(Added{std::string(method), std::string(path), prefix});
  return status;
}

size_t ExecutorRouter::openStreamsForTest() const { return streams_->openForTest(); }

api::Status ExecutorRouter::addRoute(std::string_view method, std::string_view path,
                                     api::HttpHandler handler, bool prefix) {
  std::lock_guard lock(mutex_);
  auto guarded = [alive = alive_, handler = std::move(handler)](const api::HttpRequest& request,
                                                                api::HttpResponder respond) {
    if (!*alive) {
      return respond(api::HttpResponse::error(503, "the module serving this route has stopped"));
    }
    handler(request, std::move(respond));
  };
  api::Status status = router_->addRoute(method, path, &executor_, std::move(guarded), prefix);
  if (status) added_.push_back(Added{std::string(method), std::string(path), prefix});
  return status;
}

// ---------------------------------------------------------------------------------------------
// Server state and sessions

namespace {

class Session;

// Bytes of pipelined input a session buffers while its handler runs; beyond this it stops
// reading (and so stops noticing a closed connection) until the handler answers.
constexpr size_t kMaxBufferedWhileHandling = 64 * 1024;

}  // namespace

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(runtime::Runtime& runtime, std::shared_ptr<Router> router, HttpServerOptions options)
      : runtime(runtime),
        router(std::move(router)),
        options(std::move(options)),
        acceptorStrand(asio::make_strand(runtime.io())),
        acceptor(acceptorStrand),
        log(runtime::logger("http")) {
    if (this->options.metrics != nullptr) {
      auto& m = *this->options.metrics;
      requests = &m.counter("http/requests");
      for (int i = 0; i < 5; ++i)
        responses[i] = &m.counter(fmt::format("http/responses_{}xx", i + 1));
      slowStreams = &m.counter("http/streams_closed_slow");
    }
  }

  void accept();
  // A connection past its TLS step (if any) becomes a session.
  void admit(TlsStream stream);
  void countResponse(int status) {
    if (requests == nullptr) return;
    if (status >= 100 && status < 600) responses[status / 100 - 1]->increment();
  }
  void sessionGone(Session* session) {
    {
      std::lock_guard lock(mutex);
      sessions.erase(session);
    }
    sessionsChanged.notify_all();
  }

  runtime::Runtime& runtime;
  std::shared_ptr<Router> router;
  const HttpServerOptions options;
  asio::strand<asio::io_context::executor_type> acceptorStrand;
  tcp::acceptor acceptor;  // touched on acceptorStrand once accepting
  std::shared_ptr<spdlog::logger> log;
  std::atomic<uint16_t> port{0};
  api::Counter* requests = nullptr;
  api::Counter* responses[5] = {};
  api::Counter* slowStreams = nullptr;

  mutable std::mutex mutex;
  std::condition_variable sessionsChanged;
  std::map<Session*, std::weak_ptr<Session>> sessions;
  bool started = false;
  bool stopping = false;
};

namespace {

// The HttpStream of one streaming request: every call hops onto the session's strand.
class SessionStream final : public HttpStream {
 public:
  SessionStream(std::weak_ptr<Session> session, asio::any_io_executor strand, uint64_t generation,
                size_t maxQueued)
      : session_(std::move(session)),
        strand_(std::move(strand)),
        generation_(generation),
        maxQueued_(maxQueued) {}
  ~SessionStream() override;

  void start(int status, std::string contentType,
             std::vector<std::pair<std::string, std::string>> headers) override;
  void startSized(int status, std::string contentType, uint64_t length,
                  std::vector<std::pair<std::string, std::string>> headers) override;
  bool write(std::string data) override;
  void respond(api::HttpResponse response) override;
  void whenWritten(std::function<void()> fn) override;
  void setMaxQueuedBytes(size_t bytes) override { maxQueued_ = bytes; }
  void end() override;
  bool open() const override { return !closed_.load() && !ended_.load() && !overflowed_.load(); }
  // From the session's strand: `bytes` of what write() counted reached the socket.
  void sent(size_t bytes) { queued_ -= bytes; }
  void onClose(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      if (!closed_.load()) {
        onClose_ = std::move(fn);
        return;
      }
    }
    fn();
  }

  // On the session's strand, when the connection closes.
  void markClosed() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mutex_);
      if (closed_.exchange(true)) return;
      fn = std::move(onClose_);
    }
    if (fn) fn();
  }

 private:
  template <typename Fn>
  void onSession(Fn fn);

  std::weak_ptr<Session> session_;
  asio::any_io_executor strand_;
  const uint64_t generation_;
  std::atomic<size_t> maxQueued_;
  std::atomic<size_t> queued_{0};  // counted by write(), not yet on the socket
  std::atomic<bool> overflowed_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> ended_{false};
  std::atomic<bool> closed_{false};
  std::mutex mutex_;
  std::function<void()> onClose_;
};

// One connection, on its own strand. Reads a request, hands it to the route's executor and
// watches the socket until the handler answers, so that a client going away frees the
// request even if its handler never answers (the responder holds only a weak reference).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServer::State> state, TlsStream stream)
      : state_(std::move(state)), stream_(std::move(stream)) {
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }
  ~Session() {
    if (auto stream = activeStream_.lock()) stream->markClosed();
    state_->sessionGone(this);
  }

  // Starts serving; with `reject`, answers 503 and closes (the connection cap).
  void start(bool reject) {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), reject] {
      if (reject) {
        self->writeResponse(api::HttpResponse::error(503, "too many open connections"), false);
      } else {
        self->readHeader();
      }
    });
  }

  // Thread-safe: hops onto the strand.
  void closeFromAnyThread() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void readHeader() {
    if (closing_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(state_->options.maxHeaderBytes, std::numeric_limits<uint32_t>::max())));
    parser_->body_limit(state_->options.maxBodyBytes);
    stream_.tcp().expires_after(state_->options.headerTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (closing_) return;
    if (ec) return failRead(ec);
    const auto& request = parser_->get();
    // A body whose framing the server and a proxy in front of it could read differently is
    // refused and the connection closed, before any of it is read (request smuggling).
    if (auto refused = checkFraming(request)) return writeResponse(std::move(*refused), false);
    auto expect = request.find(http::field::expect);
    if (expect != request.end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream_.tcp().expires_after(state_->options.bodyTimeout);
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (self->closing_) return;
                          if (ec) return self->close();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    if (parser_->is_done()) return dispatch();
    stream_.tcp().expires_after(state_->options.bodyTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->closing_) return;
                       if (ec) return self->failRead(ec);
                       self->dispatch();
                     });
  }

  // A read failed: protocol errors are answered (then the connection closes); a client that
  // went away, timed out or was cancelled is just closed.
  void failRead(beast::error_code ec) {
    if (ec.category() != beast::http::make_error_code(http::error::bad_method).category() ||
        ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return close();  // not a parse error: end of stream, timeout, reset or cancelled
    }
    if (ec == http::error::body_limit) {
      return writeResponse(
          api::HttpResponse::error(
              413, fmt::format("request body exceeds {} bytes", state_->options.maxBodyBytes)),
          false);
    }
    if (ec == http::error::header_limit) {
      return writeResponse(
          api::HttpResponse::error(
              431, fmt::format("request head exceeds {} bytes", state_->options.maxHeaderBytes)),
          false);
    }
    writeResponse(api::HttpResponse::error(400, fmt::format("malformed request: {}", ec.message())),
                  false);
  }

  void dispatch() {
    auto& request = parser_->get();
    version_ = request.version();
    keepAlive_ = request.keep_alive();
    headRequest_ = request.method() == http::verb::head;
    if (state_->requests != nullptr) state_->requests->increment();

    std::string_view target(request.target().data(), request.target().size());
    if (target.empty() || target.front() != '/') {
      return writeResponse(
          api::HttpResponse::error(400, fmt::format("unsupported request target '{}'", target)),
          false);
    }
    api::HttpRequest apiRequest;
    apiRequest.method = std::string(request.method_string());
    auto question = target.find('?');
    apiRequest.path = percentDecode(target.substr(0, question));
    if (question != std::string_view::npos) apiRequest.query = target.substr(question + 1);
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto [it, inserted] = apiRequest.headers.emplace(name, std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    apiRequest.body = std::move(request.body());
    apiRequest.remoteAddress = remote_;
    parser_.reset();

    Router::Match match = state_->router->lookup(apiRequest.method, apiRequest.path);
    if (match.status == 404) {
      return writeResponse(
          api::HttpResponse::error(404, fmt::format("no route for '{}'", apiRequest.path)),
          keepAlive_);
    }
    if (match.status == 405) {
      auto response = api::HttpResponse::error(
          405,
          fmt::format("method '{}' is not allowed on '{}'", apiRequest.method, apiRequest.path));
      response.headers.emplace_back("Allow", match.allow);
      return writeResponse(std::move(response), keepAlive_);
    }

    awaitingHandler_ = true;
    uint64_t generation = ++generation_;
    if (match.route->streamHandler) {
      auto stream =
          std::make_shared<SessionStream>(weak_from_this(), stream_.get_executor(), generation,
                                          state_->options.maxStreamQueuedBytes);
      activeStream_ = stream;
      streamTarget_ = fmt::format("{} {}", apiRequest.method, apiRequest.path);
      startWatch();
      auto run = [route = match.route, stream](api::HttpRequest request,
                                               std::optional<api::HttpResponse> refusal) mutable {
        if (refusal) return stream->respond(std::move(*refusal));
        route->executor->post([route, request = std::move(request), stream]() mutable {
          try {
            route->streamHandler(request, std::move(stream));
          } catch (...) {
            // Dropping the stream answers 500 if it was not started, else ends it.
          }
        });
      };
      if (auto gate = state_->router->gate()) return (*gate)(std::move(apiRequest), std::move(run));
      return run(std::move(apiRequest), std::nullopt);
    }
    auto responder = makeResponder(generation);
    startWatch();
    auto run = [route = match.route, responder](api::HttpRequest request,
                                                std::optional<api::HttpResponse> refusal) {
      if (refusal) return responder(std::move(*refusal));
      route->executor->post([route, request = std::move(request), responder]() mutable {
        try {
          route->handler(request, responder);
        } catch (const std::exception& e) {
          responder(api::HttpResponse::error(500, fmt::format("handler failed: {}", e.what())));
        } catch (...) {
          responder(api::HttpResponse::error(500, "handler failed"));
        }
      });
    };
    if (auto gate = state_->router->gate()) return (*gate)(std::move(apiRequest), std::move(run));
    run(std::move(apiRequest), std::nullopt);
  }

  api::HttpResponder makeResponder(uint64_t generation) {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    return [weak = weak_from_this(), strand = stream_.get_executor(), answered,
            generation](api::HttpResponse response) {
      if (answered->exchange(true)) return;  // exactly once: later calls are ignored
      if (weak.expired()) return;
      asio::post(strand, [weak, generation, response = std::move(response)]() mutable {
        if (auto self = weak.lock()) self->deliver(generation, std::move(response));
      });
    };
  }

  void deliver(uint64_t generation, api::HttpResponse response) {
    if (closing_ || !awaitingHandler_ || generation != generation_) return;
    awaitingHandler_ = false;
    auto hold = shared_from_this();
    heldWhileHandling_.reset();
    writeResponse(std::move(response), keepAlive_);
  }

  // While the handler runs, a read stays pending so a closed connection is noticed; it keeps
  // the session alive. Pipelined bytes it reads go into buffer_ for the next request.
  void startWatch() {
    if (buffer_.size() >= kMaxBufferedWhileHandling) {
      heldWhileHandling_ = shared_from_this();
      return;
    }
    watching_ = true;
    // Through the stream (TLS needs it) but with no deadline: the handler takes what it takes.
    stream_.tcp().expires_never();
    stream_.async_read_some(
        buffer_.prepare(4096),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->onWatch(ec, n); });
  }

  void onWatch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (n > 0) buffer_.commit(n);
    if (closing_) return;
    // The client went away (or half-closed): drop the request. This wins over resuming: after
    // Asio has seen end of file on an edge-triggered socket, another read would wait forever.
    if (ec && ec != asio::error::operation_aborted) return close();
    if (resumeAfterWatch_) {
      resumeAfterWatch_ = false;
      return readHeader();
    }
    if (ec) return close();  // cancelled without a resume: only close() cancels like that
    if (awaitingHandler_ || writing_ || streaming_) startWatch();
  }

  void writeResponse(api::HttpResponse response, bool keepAlive) {
    if (closing_) return;
    auto message = std::make_shared<http::response<http::string_body>>();
    message->version(version_);
    message->result(static_cast<unsigned>(response.status));
    message->set(http::field::server, "Tessera");
    if (!response.contentType.empty())
      message->set(http::field::content_type, response.contentType);
    for (auto& [name, value] : response.headers) message->insert(name, value);
    message->body() = std::move(response.body);
    message->keep_alive(keepAlive);
    message->prepare_payload();
    if (headRequest_) {
      // A response to HEAD says how long the body would be, and sends none.
      auto length = message->body().size();
      message->body().clear();
      message->content_length(length);
    }
    state_->countResponse(response.status);
    writing_ = true;
    stream_.tcp().expires_after(state_->options.writeTimeout);
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, keepAlive](
                          beast::error_code ec, size_t) { self->onWrite(ec, keepAlive); });
  }

  void onWrite(beast::error_code ec, bool keepAlive) {
    writing_ = false;
    if (closing_) return;
    if (ec || !keepAlive) return close();
    if (watching_) {
      // The watch read must finish before the next request read starts.
      resumeAfterWatch_ = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      return;
    }
    readHeader();
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    heldWhileHandling_.reset();
    written_.clear();
    if (auto stream = activeStream_.lock()) stream->markClosed();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.tcp().close();
  }

  // Streaming: the head and chunks go out in order through out_.
 public:
  // `length` set: a Content-Length body written unframed (startSized), else chunked.
  void streamStart(uint64_t generation, int status, std::string contentType,
                   std::vector<std::pair<std::string, std::string>> headers,
                   std::optional<uint64_t> length = std::nullopt) {
    if (closing_ || !awaitingHandler_ || generation != generation_) return;
    awaitingHandler_ = false;
    streaming_ = true;
    sized_ = length.has_value();
    http::response<http::empty_body> head;
    head.version(version_);
    head.result(static_cast<unsigned>(status));
    head.set(http::field::server, "Tessera");
    if (!contentType.empty()) head.set(http::field::content_type, contentType);
    for (auto& [name, value] : headers) head.insert(name, value);
    if (length) {
      head.content_length(*length);
    } else {
      head.chunked(true);
    }
    head.keep_alive(false);
    std::ostringstream out;
    out << head.base();
    state_->countResponse(status);
    enqueue(out.str());
  }

  // `data` counts for `counted` bytes of its stream's queue until it is on the socket.
  void streamWrite(uint64_t generation, std::string data, size_t counted) {
    if (closing_ || !streaming_ || ending_ || generation != generation_) {
      if (auto stream = activeStream_.lock()) stream->sent(counted);
      return;
    }
    enqueue(sized_ ? std::move(data) : fmt::format("{:x}\r\n", data.size()) + data + "\r\n",
            counted);
  }

  void streamWhenWritten(uint64_t generation, std::function<void()> fn) {
    if (closing_ || generation != generation_) return;
    if (!outWriting_ && out_.empty()) return fn();
    written_.push_back(std::move(fn));
  }

  // The stream's client stopped taking what is written: drop it, so that it costs no more.
  void streamOverflow(uint64_t generation, size_t limit) {
    if (closing_ || generation != generation_) return;
    state_->log->warn(
        "closing the stream of '{}' from '{}': more than {} bytes wait to be sent (the client "
        "is not reading)",
        streamTarget_, remote_, limit);
    if (state_->slowStreams != nullptr) state_->slowStreams->increment();
    close();
  }

  void streamEnd(uint64_t generation) {
    if (closing_ || !streaming_ || ending_ || generation != generation_) return;
    ending_ = true;
    // An empty write still completes, and the connection closes after it.
    enqueue(sized_ ? std::string() : std::string("0\r\n\r\n"));
  }

  void deliverFromStream(uint64_t generation, api::HttpResponse response) {
    deliver(generation, std::move(response));
  }

 private:
  void enqueue(std::string bytes, size_t counted = 0) {
    out_.push_back({std::move(bytes), counted});
    pump();
  }

  void pump() {
    if (outWriting_ || out_.empty() || closing_) return;
    outWriting_ = true;
    stream_.tcp().expires_after(state_->options.writeTimeout);
    asio::async_write(stream_, asio::buffer(out_.front().bytes),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->outWriting_ = false;
                        if (self->closing_) return;
                        if (ec) return self->close();
                        if (size_t counted = self->out_.front().counted; counted > 0) {
                          if (auto stream = self->activeStream_.lock()) stream->sent(counted);
                        }
                        self->out_.pop_front();
                        if (!self->out_.empty()) return self->pump();
                        if (self->ending_) return self->close();
                        auto written = std::exchange(self->written_, {});
                        for (auto& fn : written) fn();
                      });
  }

  struct Outgoing {
    std::string bytes;
    size_t counted;  // of the stream's queue limit
  };
  std::deque<Outgoing> out_;
  std::string streamTarget_;  // "METHOD /path" of the streaming request, for logs
  bool outWriting_ = false;
  bool streaming_ = false;
  bool ending_ = false;
  bool sized_ = false;
  std::vector<std::function<void()>> written_;  // whenWritten() callbacks waiting for out_
  std::weak_ptr<SessionStream> activeStream_;

  std::shared_ptr<HttpServer::State> state_;
  TlsStream stream_;  // plain or TLS; the handlers do not care
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  unsigned version_ = 11;
  bool keepAlive_ = false;
  bool headRequest_ = false;
  bool closing_ = false;
  bool awaitingHandler_ = false;
  bool watching_ = false;
  bool resumeAfterWatch_ = false;
  bool writing_ = false;
  uint64_t generation_ = 0;
  std::shared_ptr<Session> heldWhileHandling_;
};

template <typename Fn>
void SessionStream::onSession(Fn fn) {
  asio::post(strand_, [weak = session_, fn = std::move(fn)]() mutable {
    if (auto session = weak.lock()) fn(*session);
  });
}

SessionStream::~SessionStream() {
  if (!started_.load()) {
    onSession([generation = generation_](Session& session) {
      session.deliverFromStream(
          generation, api::HttpResponse::error(500, "the handler dropped its response stream"));
    });
  } else {
    end();
  }
}

void SessionStream::start(int status, std::string contentType,
                          std::vector<std::pair<std::string, std::string>> headers) {
  if (started_.exchange(true)) return;
  onSession([generation = generation_, status, contentType = std::move(contentType),
             headers = std::move(headers)](Session& session) mutable {
    session.streamStart(generation, status, std::move(contentType), std::move(headers));
  });
}

void SessionStream::startSized(int status, std::string contentType, uint64_t length,
                               std::vector<std::pair<std::string, std::string>> headers) {
  if (started_.exchange(true)) return;
  onSession([generation = generation_, status, contentType = std::move(contentType), length,
             headers = std::move(headers)](Session& session) mutable {
    session.streamStart(generation, status, std::move(contentType), std::move(headers), length);
  });
}

void SessionStream::whenWritten(std::function<void()> fn) {
  onSession([generation = generation_, fn = std::move(fn)](Session& session) mutable {
    session.streamWhenWritten(generation, std::move(fn));
  });
}

bool SessionStream::write(std::string data) {
  if (!open() || !started_.load()) return false;
  if (data.empty()) return true;
  // Counted before anything is queued, so the limit holds whatever the writer's pace.
  size_t size = data.size();
  size_t limit = maxQueued_.load();
  size_t queued = queued_.fetch_add(size) + size;
  // One write into an empty queue always goes (a single event larger than the limit, such as
  // an OFFERS event from a large cluster, must reach a client that reads); a client that is
  // not reading is cut off at the next one.
  if (limit > 0 && queued > limit && queued > size) {
    queued_ -= size;
    if (!overflowed_.exchange(true)) {
      onSession([generation = generation_, limit](Session& session) {
        session.streamOverflow(generation, limit);
      });
    }
    return false;
  }
  onSession([generation = generation_, data = std::move(data), size](Session& session) mutable {
    session.streamWrite(generation, std::move(data), size);
  });
  return true;
}

void SessionStream::respond(api::HttpResponse response) {
  if (started_.exchange(true)) return;
  ended_ = true;
  onSession([generation = generation_, response = std::move(response)](Session& session) mutable {
    session.deliverFromStream(generation, std::move(response));
  });
}

void SessionStream::end() {
  if (ended_.exchange(true)) return;
  if (!started_.load()) start(200, "", {});
  onSession([generation = generation_](Session& session) { session.streamEnd(generation); });
}

}  // namespace

void HttpServer::State::accept() {
  acceptor.async_accept(asio::make_strand(runtime.io()),
                        [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                          if (ec == asio::error::operation_aborted || !self->acceptor.is_open())
                            return;
                          if (ec) {
                            // Out of descriptors, say: back off a little rather than spin.
                            self->log->warn("accepting an http connection failed: {}",
                                            ec.message());
                            auto timer = std::make_shared<asio::steady_timer>(
                                self->acceptorStrand, std::chrono::milliseconds(100));
                            timer->async_wait([self, timer](beast::error_code waitEc) {
                              if (!waitEc && self->acceptor.is_open()) self->accept();
                            });
                            return;
                          }
                          socket.set_option(tcp::no_delay(true), ec);  // small answers go now
                          auto onReady = [self](api::Status status, TlsStream stream) {
                            if (!status) {
                              self->log->warn("refusing an http connection: {}", status.message());
                              return;
                            }
                            self->admit(std::move(stream));
                          };
                          acceptTls(TlsStream(std::move(socket)), self->options.tls,
                                    self->options.headerTimeout, std::move(onReady));
                          self->accept();
                        });
}

void HttpServer::State::admit(TlsStream stream) {
  auto session = std::make_shared<Session>(shared_from_this(), std::move(stream));
  bool reject;
  {
    std::lock_guard lock(mutex);
    if (stopping) return;
    reject = sessions.size() >= options.maxConnections;
    sessions.emplace(session.get(), session);
  }
  session->start(reject);
}

HttpServer::HttpServer(runtime::Runtime& runtime, std::shared_ptr<Router> router,
                       HttpServerOptions options)
    : state_(std::make_shared<State>(runtime, std::move(router), std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

api::Status HttpServer::start() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->started) return api::failedPrecondition("the http server is already started");
    state_->started = true;
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(state_->options.address, ec);
  if (ec) return api::invalidArgument("invalid listen address '{}'", state_->options.address);
  tcp::endpoint endpoint(address, state_->options.port);
  auto& acceptor = state_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec) ||
      acceptor.set_option(asio::socket_base::reuse_address(true), ec) ||
      acceptor.bind(endpoint, ec) ||
      acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return api::unavailable("cannot listen on {}:{}: {}", state_->options.address,
                            state_->options.port, ec.message());
  }
  state_->port = acceptor.local_endpoint(ec).port();
  if (state_->options.metrics != nullptr) {
    std::weak_ptr<State> weak = state_;
    state_->options.metrics->gauge(
        "http/connections", nullptr,
        [weak] {
          auto state = weak.lock();
          if (!state) return 0.0;
          std::lock_guard lock(state->mutex);
          return static_cast<double>(state->sessions.size());
        },
        state_.get());
  }
  asio::post(state_->acceptorStrand, [state = state_] { state->accept(); });
  state_->log->info("http server listening on {}:{}", state_->options.address, port());
  return api::Status::ok();
}

uint16_t HttpServer::port() const { return state_->port.load(); }

void HttpServer::stop() {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping) return;
    state_->stopping = true;
    if (!state_->started) return;
    for (auto& [raw, weak] : state_->sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  if (state_->options.metrics != nullptr) {
    state_->options.metrics->removeGauge("http/connections", state_.get());
  }
  auto& io = state_->runtime.io();
  if (io.stopped()) {
    // Nothing runs concurrently any more; sessions go with the io_context's handlers.
    beast::error_code ignored;
    state_->acceptor.close(ignored);
    return;
  }
  auto closed = std::make_shared<std::promise<void>>();
  auto future = closed->get_future();
  asio::post(state_->acceptorStrand, [state = state_, closed] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
    closed->set_value();
  });
  for (auto& session : sessions) session->closeFromAnyThread();
  sessions.clear();
  // Bounded waits: a stopped runtime would never run these.
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    state_->log->warn("http server: the acceptor did not close in time");
    return;
  }
  std::unique_lock lock(state_->mutex);
  state_->sessionsChanged.wait_for(lock, std::chrono::seconds(5),
                                   [this] { return state_->sessions.empty(); });
}

size_t HttpServer::connectionsForTest() const {
  std::lock_guard lock(state_->mutex);
  return state_->sessions.size();
}

}  // namespace tessera::kernel::net

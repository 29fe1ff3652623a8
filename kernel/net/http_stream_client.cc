#include "kernel/net/http_stream_client.h"

#include <fmt/format.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <mutex>
#include <optional>

#include "kernel/net/tls.h"

namespace tessera::kernel::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpStreamClient::Session : std::enable_shared_from_this<Session> {
  Session(asio::io_context& io, api::Executor& owner, std::shared_ptr<TlsContext> context)
      : strand(asio::make_strand(io)),
        resolver(strand),
        stream(beast::tcp_stream(strand)),
        tls(std::move(context)),
        deadline(strand),
        executor(owner) {}

  asio::strand<asio::io_context::executor_type> strand;
  tcp::resolver resolver;
  TlsStream stream;  // plain or TLS
  std::shared_ptr<TlsContext> tls;
  asio::steady_timer deadline;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::array<char, 16384> chunk{};
  StreamRequest params;
  StreamHandlers handlers;
  api::Executor& executor;

  // Guards `cancelled` against the socket strand posting while the owner cancels.
  std::mutex mutex;
  bool cancelled = false;
  // Socket-strand state.
  bool finished = false;
  bool headArrived = false;
  bool timedOut = false;

  // Posts `fn` to the owner's executor unless cancelled; it runs there unless cancelled by then
  // (cancel() runs on that executor too, so the check there cannot race).
  void deliver(std::function<void(Session&)> fn) {
    std::lock_guard lock(mutex);
    if (cancelled) return;
    executor.post([self = shared_from_this(), fn = std::move(fn)] {
      {
        std::lock_guard lock(self->mutex);
        if (self->cancelled) return;
      }
      fn(*self);
    });
  }

  void closeSocket() {
    beast::error_code ignored;
    resolver.cancel();
    deadline.cancel();
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
  }

  void finish(api::Status status) {
    if (finished) return;
    finished = true;
    closeSocket();
    deliver([status = std::move(status)](Session& self) {
      if (self.handlers.onClose) self.handlers.onClose(status);
    });
  }

  void fail(std::string_view what, const beast::error_code& ec) {
    if (timedOut) {
      return finish(api::Status(api::StatusCode::kDeadlineExceeded,
                                fmt::format("no response from {}:{} within {}ms", params.host,
                                            params.port, params.headTimeout.count())));
    }
    finish(api::unavailable("{} {}:{}: {}", what, params.host, params.port, tlsReason(ec)));
  }

  void run() {
    deadline.expires_after(params.headTimeout);
    deadline.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      if (ec || self->headArrived || self->finished) return;
      self->timedOut = true;
      beast::error_code ignored;
      self->resolver.cancel();
      self->stream.socket().close(ignored);
    });
    resolver.async_resolve(
        params.host, std::to_string(params.port),
        [self = shared_from_this()](const beast::error_code& ec, tcp::resolver::results_type r) {
          if (ec) return self->fail("cannot resolve", ec);
          self->stream.tcp().async_connect(
              r, [self](const beast::error_code& ec, const tcp::endpoint&) {
                if (ec) return self->fail("cannot connect to", ec);
                if (!self->tls) return self->write();
                // The head deadline covers the handshake too: it closes the socket.
                prepareClientTls(self->stream, *self->tls, self->params.host);
                self->stream.tls()->async_handshake(
                    asio::ssl::stream_base::client, [self](const beast::error_code& ec) {
                      if (ec) return self->fail("TLS handshake failed with", ec);
                      self->write();
                    });
              });
        });
  }

  void write() {
    request.method_string(params.method);
    request.target(params.target);
    request.version(11);
    bool hasHost = false;
    for (const auto& [name, value] : params.headers) {
      if (beast::iequals(name, "host")) hasHost = true;
      request.insert(name, value);
    }
    if (!hasHost) request.set(http::field::host, fmt::format("{}:{}", params.host, params.port));
    request.set(http::field::connection, "close");
    request.body() = params.body;
    request.prepare_payload();
    http::async_write(stream, request,
                      [self = shared_from_this()](const beast::error_code& ec, size_t) {
                        if (ec) return self->fail("cannot send to", ec);
                        self->readHead();
                      });
  }

  void readHead() {
    parser.emplace();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(
        stream, buffer, *parser, [self = shared_from_this()](const beast::error_code& ec, size_t) {
          if (ec) return self->fail("no response from", ec);
          self->headArrived = true;
          self->deadline.cancel();
          const auto& head = self->parser->get();
          std::vector<std::pair<std::string, std::string>> headers;
          for (const auto& field : head) {
            headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
          }
          int status = static_cast<int>(head.result_int());
          self->deliver([status, headers = std::move(headers)](Session& s) mutable {
            if (s.handlers.onHead) s.handlers.onHead(status, std::move(headers));
          });
          if (self->parser->is_done()) return self->finish(api::Status::ok());
          self->readBody();
        });
  }

  void readBody() {
    parser->get().body().data = chunk.data();
    parser->get().body().size = chunk.size();
    http::async_read_some(
        stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec == http::error::need_buffer) ec = {};
          size_t got = self->chunk.size() - self->parser->get().body().size;
          if (got > 0) {
            self->deliver([data = std::string(self->chunk.data(), got)](Session& s) mutable {
              if (s.handlers.onData) s.handlers.onData(std::move(data));
            });
          }
          if (ec) return self->fail("connection lost with", ec);
          if (self->parser->is_done()) return self->finish(api::Status::ok());
          self->readBody();
        });
  }
};

HttpStreamClient::HttpStreamClient(runtime::Runtime& runtime, api::Executor& executor,
                                   std::shared_ptr<TlsContext> tls)
    : runtime_(runtime), executor_(executor), tls_(std::move(tls)) {}

HttpStreamClient::~HttpStreamClient() { cancel(); }

void HttpStreamClient::start(StreamRequest request, StreamHandlers handlers) {
  if (session_) return;
  session_ = std::make_shared<Session>(runtime_.io(), executor_, tls_);
  session_->params = std::move(request);
  session_->handlers = std::move(handlers);
  asio::post(session_->strand, [session = session_] { session->run(); });
}

void HttpStreamClient::cancel() {
  if (!session_) return;
  {
    std::lock_guard lock(session_->mutex);
    if (session_->cancelled) return;
    session_->cancelled = true;
  }
  asio::post(session_->strand, [session = session_] {
    session->finished = true;
    session->closeSocket();
  });
}

}  // namespace tessera::kernel::net

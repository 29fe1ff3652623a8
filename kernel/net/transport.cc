#include "kernel/net/transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>

#include "kernel/net/tls.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace {

enum FrameKind : uint8_t { kMessage = 0, kPing = 1, kPong = 2 };

// How long stop() waits for connections' socket work to wind down before giving up (the
// runtime's io threads must be running for it to happen at all).
constexpr auto kStopTimeout = std::chrono::seconds(10);

// A frame's body is read in pieces of at most this, so its buffer grows with the bytes that
// actually arrived, not with what the length prefix announced.
constexpr size_t kReadChunkBytes = 64 * 1024;

std::string frame(FrameKind kind, std::string_view payload) {
  uint32_t length = static_cast<uint32_t>(payload.size() + 1);
  std::string out;
  out.reserve(payload.size() + 5);
  out.push_back(static_cast<char>((length >> 24) & 0xFF));
  out.push_back(static_cast<char>((length >> 16) & 0xFF));
  out.push_back(static_cast<char>((length >> 8) & 0xFF));
  out.push_back(static_cast<char>(length & 0xFF));
  out.push_back(static_cast<char>(kind));
  out.append(payload);
  return out;
}

std::atomic<uint64_t> nextConnectionId{1};

class Core;

// What a server's connections share about the ones still pending (AdmissionOptions): how many
// there are and how many bytes of unfinished frames they hold. Thread-safe.
class Admission {
 public:
  explicit Admission(AdmissionOptions options) : options_(options) {}

  // A new connection: false when the pending ones are at the limit.
  bool admit() {
    size_t count = pending_.load();
    do {
      if (count >= options_.maxPendingConnections) return false;
    } while (!pending_.compare_exchange_weak(count, count + 1));
    return true;
  }
  // A pending connection sent its first message or closed.
  void leave() { --pending_; }
  // Before a pending connection reads `bytes` more: false when that would pass the budget.
  bool reserve(size_t bytes) {
    size_t used = bytes_.load();
    do {
      if (used + bytes > options_.maxPendingBytes) return false;
    } while (!bytes_.compare_exchange_weak(used, used + bytes));
    return true;
  }
  void release(size_t bytes) { bytes_ -= bytes; }

  size_t pending() const { return pending_.load(); }
  const AdmissionOptions& options() const { return options_; }

 private:
  const AdmissionOptions options_;
  std::atomic<size_t> pending_{0};
  std::atomic<size_t> bytes_{0};
};

// What the owner (server or client) shares with its connections: the handlers, the executor
// they run on, the gate that stops them, and the registry of live connections that stop()
// waits to empty.
class Sink : public std::enable_shared_from_this<Sink> {
 public:
  Sink(api::Executor& executor, TransportHandlers handlers)
      : executor_(executor), handlers_(std::move(handlers)), log_(runtime::logger("transport")) {}

  // Runs `fn` on the owner's executor unless stopped by then. Called from connection strands
  // only while their connection is registered, so the executor is still alive (stop() waits).
  void deliver(std::function<void()> fn) {
    if (stopped_) return;
    executor_.post([self = shared_from_this(), fn = std::move(fn)] {
      std::shared_lock lock(self->gate_);
      if (self->stopped_) return;
      fn();
    });
  }

  // False (and the caller closes the connection) once stopping.
  bool add(uint64_t id, const std::shared_ptr<Core>& core) {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    cores_[id] = core;
    return true;
  }
  void remove(uint64_t id) {
    std::lock_guard lock(mutex_);
    cores_.erase(id);
    if (cores_.empty()) idle_.notify_all();
  }
  size_t count() {
    std::lock_guard lock(mutex_);
    return cores_.size();
  }

  // Stops callbacks, closes every connection, waits for their socket work to finish.
  void stop();

  const TransportHandlers& handlers() const { return handlers_; }
  spdlog::logger& log() { return *log_; }
  bool stopped() const { return stopped_; }

 private:
  api::Executor& executor_;
  const TransportHandlers handlers_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> stopped_{false};
  std::shared_mutex gate_;  // held shared while a callback runs; stop() takes it exclusively
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<uint64_t, std::weak_ptr<Core>> cores_;
};

class Handle;

// The socket side of one connection, on its own strand. Only its pending handlers own it, so it
// is destroyed (and unregistered) exactly when its socket work is over; users hold a Handle.
class Core : public std::enable_shared_from_this<Core> {
 public:
  // `admission` is set on a server's connections, which start pending; null for a client's.
  Core(TlsStream socket, std::shared_ptr<Sink> sink, TransportOptions options,
       std::function<void()> onClosed, std::shared_ptr<Admission> admission = nullptr);
  ~Core() {
    leavePending();
    sink_->remove(id_);
  }

  // Registers with the sink and starts reading and heartbeating; reports onConnected.
  void start();
  // Queues an already framed message. From any thread.
  void send(std::string framed) {
    asio::post(strand_, [self = shared_from_this(), framed = std::move(framed)]() mutable {
      self->enqueue(std::move(framed));
    });
  }
  // From any thread.
  void close(api::Status reason) {
    asio::post(strand_,
               [self = shared_from_this(), reason = std::move(reason)] { self->doClose(reason); });
  }

  uint64_t id() const { return id_; }
  const std::shared_ptr<Handle>& handle() const { return handle_; }

 private:
  // Where reading stopped while the owner catches up (maxBytesInFlight).
  enum class Paused { kNo, kHeader, kChunk };

  void readHeader();
  void readChunk();
  void onFrame();
  // On the strand: the owner finished with a delivered message of `bytes`.
  void handled(size_t bytes);
  // True when reading `bytes` more now would pass the bytes-in-flight bound.
  bool mustWait(size_t bytes) const;
  void watchHandshake();
  void leavePending();
  void enqueue(std::string framed);
  void writeNext();
  void heartbeat();
  void doClose(const api::Status& reason);

  const uint64_t id_;
  TlsStream socket_;              // plain or TLS (already handshaken)
  asio::any_io_executor strand_;  // the socket's own executor, a strand
  asio::steady_timer timer_;
  std::shared_ptr<Sink> sink_;
  const TransportOptions options_;
  std::function<void()> onClosed_;
  std::shared_ptr<Handle> handle_;
  uint8_t header_[4] = {};
  std::string body_;
  size_t remaining_ = 0;  // bytes of the current frame not read yet
  size_t handling_ = 0;   // bytes delivered to the owner whose onMessage has not returned
  Paused paused_ = Paused::kNo;
  std::shared_ptr<Admission> admission_;
  bool pending_;         // no whole message yet (server side only)
  size_t reserved_ = 0;  // of the admission's pending-bytes budget, held by body_
  asio::steady_timer handshakeTimer_;
  std::deque<std::string> queue_;
  size_t queuedBytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool received_ = false;
  int missed_ = 0;
};

// The user's view of a connection: it does not keep the socket alive.
class Handle final : public Connection {
 public:
  Handle(uint64_t id, std::string peer, size_t maxMessageBytes)
      : id_(id), peer_(std::move(peer)), maxMessageBytes_(maxMessageBytes) {}

  bool send(std::string payload) override {
    if (!open_ || payload.size() > maxMessageBytes_) return false;
    std::shared_ptr<Core> core = core_.lock();
    if (!core) return false;
    core->send(frame(kMessage, payload));
    return true;
  }
  using Connection::send;
  void close() override {
    if (std::shared_ptr<Core> core = core_.lock()) {
      core->close(api::Status(api::StatusCode::kCancelled, "closed locally"));
    }
  }
  bool open() const override { return open_; }
  const std::string& peer() const override { return peer_; }
  uint64_t id() const override { return id_; }

  void attach(const std::shared_ptr<Core>& core) { core_ = core; }
  void markClosed() { open_ = false; }

 private:
  const uint64_t id_;
  const std::string peer_;
  const size_t maxMessageBytes_;
  std::weak_ptr<Core> core_;
  std::atomic<bool> open_{true};
};

std::string endpointText(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

Core::Core(TlsStream socket, std::shared_ptr<Sink> sink, TransportOptions options,
           std::function<void()> onClosed, std::shared_ptr<Admission> admission)
    : id_(nextConnectionId++),
      socket_(std::move(socket)),
      strand_(socket_.get_executor()),
      timer_(strand_),
      sink_(std::move(sink)),
      options_(options),
      onClosed_(std::move(onClosed)),
      handle_(
          std::make_shared<Handle>(id_, endpointText(socket_.socket()), options.maxMessageBytes)),
      admission_(std::move(admission)),
      pending_(admission_ != nullptr),
      handshakeTimer_(strand_) {
  boost::system::error_code ec;
  socket_.socket().set_option(tcp::no_delay(true), ec);
}

void Core::start() {
  auto self = shared_from_this();
  handle_->attach(self);
  if (!sink_->add(id_, self)) {
    closed_ = true;
    handle_->markClosed();
    boost::system::error_code ec;
    socket_.close(ec);
    return;
  }
  asio::post(strand_, [self] {
    if (self->closed_) return;
    if (const auto& fn = self->sink_->handlers().onConnected) {
      self->sink_->deliver([fn, handle = self->handle_] { fn(handle); });
    }
    self->readHeader();
    self->heartbeat();
    self->watchHandshake();
  });
}

void Core::watchHandshake() {
  if (!pending_) return;
  handshakeTimer_.expires_after(admission_->options().handshakeTimeout);
  handshakeTimer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || !self->pending_) return;
    api::Status error(
        api::StatusCode::kDeadlineExceeded,
        fmt::format("'{}' sent no message within {} ms of connecting", self->handle_->peer(),
                    self->admission_->options().handshakeTimeout.count()));
    self->sink_->log().warn("closing connection: {}", error.message());
    self->doClose(error);
  });
}

void Core::leavePending() {
  if (!pending_) return;
  pending_ = false;
  admission_->leave();
  admission_->release(reserved_);
  reserved_ = 0;
}

bool Core::mustWait(size_t bytes) const {
  // One frame always fits, whatever maxBytesInFlight says, or a large message could never pass.
  size_t limit = std::max(options_.maxBytesInFlight, options_.maxMessageBytes + 1);
  return handling_ > 0 && handling_ + body_.size() + bytes > limit;
}

void Core::handled(size_t bytes) {
  handling_ -= bytes;
  if (closed_ || paused_ == Paused::kNo) return;
  Paused where = paused_;
  paused_ = Paused::kNo;
  if (where == Paused::kHeader) {
    readHeader();
  } else {
    readChunk();
  }
}

void Core::readHeader() {
  if (mustWait(sizeof header_)) {
    paused_ = Paused::kHeader;
    return;
  }
  asio::async_read(
      socket_, asio::buffer(header_),
      asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec,
                                                               size_t) {
        if (self->closed_) return;
        if (ec) {
          self->doClose(ec == asio::error::eof ? api::unavailable("closed by the peer")
                                               : api::unavailable("read failed: {}", ec.message()));
          return;
        }
        uint32_t length = (uint32_t{self->header_[0]} << 24) | (uint32_t{self->header_[1]} << 16) |
                          (uint32_t{self->header_[2]} << 8) | self->header_[3];
        if (length == 0) {
          self->doClose(api::invalidArgument("empty frame from '{}'", self->handle_->peer()));
          return;
        }
        if (length - 1 > self->options_.maxMessageBytes) {
          api::Status error = api::resourceExhausted(
              "frame of {} bytes from '{}' is over the maximum of {}", length - 1,
              self->handle_->peer(), self->options_.maxMessageBytes);
          self->sink_->log().error("closing connection: {}", error.message());
          self->doClose(error);
          return;
        }
        self->body_.clear();
        self->remaining_ = length;
        self->readChunk();
      }));
}

void Core::readChunk() {
  size_t chunk = std::min(remaining_, kReadChunkBytes);
  if (mustWait(chunk)) {
    paused_ = Paused::kChunk;
    return;
  }
  if (pending_) {
    if (!admission_->reserve(chunk)) {
      api::Status error = api::resourceExhausted(
          "'{}' has sent no message yet and connections in that state already hold {} bytes",
          handle_->peer(), admission_->options().maxPendingBytes);
      sink_->log().error("closing connection: {}", error.message());
      doClose(error);
      return;
    }
    reserved_ += chunk;
  }
  size_t offset = body_.size();
  body_.resize(offset + chunk);
  asio::async_read(socket_, asio::buffer(body_.data() + offset, chunk),
                   asio::bind_executor(strand_, [self = shared_from_this(), chunk](
                                                    boost::system::error_code ec, size_t) {
                     if (self->closed_) return;
                     if (ec) {
                       self->doClose(api::unavailable("read failed: {}", ec.message()));
                       return;
                     }
                     self->remaining_ -= chunk;
                     if (self->remaining_ > 0) return self->readChunk();
                     self->onFrame();
                   }));
}

void Core::onFrame() {
  received_ = true;
  if (pending_) {
    admission_->release(reserved_);
    reserved_ = 0;
  }
  auto kind = static_cast<uint8_t>(body_[0]);
  switch (kind) {
    case kMessage: {
      if (pending_) {
        leavePending();
        handshakeTimer_.cancel();
      }
      std::string payload = std::move(body_);
      payload.erase(0, 1);
      if (const auto& fn = sink_->handlers().onMessage) {
        size_t bytes = payload.size();
        handling_ += bytes;
        sink_->deliver([fn, handle = handle_, payload = std::move(payload), weak = weak_from_this(),
                        bytes]() mutable {
          fn(handle, std::move(payload));
          if (auto self = weak.lock()) {
            asio::post(self->strand_, [self, bytes] { self->handled(bytes); });
          }
        });
      }
      break;
    }
    case kPing:
      enqueue(frame(kPong, {}));
      break;
    case kPong:
      break;
    default:
      sink_->log().error("closing connection to '{}': unknown frame kind {}", handle_->peer(),
                         kind);
      doClose(api::invalidArgument("unknown frame kind {} from '{}'", kind, handle_->peer()));
      return;
  }
  // A large frame's buffer is not kept for the next, small one.
  if (body_.capacity() > kReadChunkBytes) {
    body_ = std::string();
  } else {
    body_.clear();
  }
  readHeader();
}

void Core::enqueue(std::string framed) {
  if (closed_) return;
  queuedBytes_ += framed.size();
  if (queuedBytes_ > options_.maxQueuedBytes) {
    api::Status error =
        api::resourceExhausted("'{}' is not reading: over {} bytes waiting to be sent",
                               handle_->peer(), options_.maxQueuedBytes);
    sink_->log().error("closing connection: {}", error.message());
    doClose(error);
    return;
  }
  queue_.push_back(std::move(framed));
  if (!writing_) writeNext();
}

void Core::writeNext() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(queue_.front()),
                    asio::bind_executor(
                        strand_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
                          if (self->closed_) return;
                          if (ec) {
                            self->doClose(api::unavailable("write failed: {}", ec.message()));
                            return;
                          }
                          self->queuedBytes_ -= self->queue_.front().size();
                          self->queue_.pop_front();
                          self->writeNext();
                        }));
}

void Core::heartbeat() {
  timer_.expires_after(options_.heartbeatInterval);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    // While reading waits for the owner, silence is ours, not the peer's.
    if (self->received_ || self->paused_ != Paused::kNo) {
      self->missed_ = 0;
    } else if (++self->missed_ >= self->options_.maxMissedHeartbeats) {
      api::Status error = api::unavailable(
          "no heartbeat from '{}' for {} ms", self->handle_->peer(),
          self->options_.heartbeatInterval.count() * self->options_.maxMissedHeartbeats);
      self->sink_->log().warn("closing connection: {}", error.message());
      self->doClose(error);
      return;
    }
    self->received_ = false;
    self->enqueue(frame(kPing, {}));
    self->heartbeat();
  });
}

void Core::doClose(const api::Status& reason) {
  if (closed_) return;
  closed_ = true;
  handle_->markClosed();
  // Reported before the socket closes, so the owner hears of it before the peer can react.
  if (const auto& fn = sink_->handlers().onClose) {
    sink_->deliver([fn, handle = handle_, reason] { fn(handle, reason); });
  }
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  timer_.cancel();
  handshakeTimer_.cancel();
  leavePending();
  queue_.clear();
  if (onClosed_) onClosed_();
}

void Sink::stop() {
  std::vector<std::shared_ptr<Core>> open;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    for (auto& [id, weak] : cores_) {
      if (auto core = weak.lock()) open.push_back(std::move(core));
    }
  }
  // Let a callback that is running on another thread finish; none starts from now on. From a
  // callback on the executor itself there is nothing to wait for (it is serial).
  if (!executor_.runningInThisThread()) {
    std::unique_lock gate(gate_);
  }
  for (auto& core : open) core->close(api::Status(api::StatusCode::kCancelled, "stopped"));
  open.clear();
  std::unique_lock lock(mutex_);
  if (!idle_.wait_for(lock, kStopTimeout, [this] { return cores_.empty(); })) {
    log_->error("{} connection(s) still busy after {} s at stop", cores_.size(),
                std::chrono::duration_cast<std::chrono::seconds>(kStopTimeout).count());
  }
}

}  // namespace

std::chrono::milliseconds reconnectDelay(const TransportClientOptions& options, int attempt,
                                         double random) {
  double base = std::min(static_cast<double>(options.maxBackoff.count()),
                         static_cast<double>(options.initialBackoff.count()) *
                             std::pow(2.0, std::clamp(attempt, 0, 62)));
  double jitter = std::clamp(options.jitter, 0.0, 1.0);
  double delay = base * (1.0 - jitter * std::clamp(random, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<int64_t>(delay));
}

bool Connection::send(const google::protobuf::Message& message) {
  std::string payload;
  if (!message.SerializeToString(&payload)) return false;
  return send(std::move(payload));
}

// -------------------------------------------------------------------------------------------
// Server

struct TransportServer::State : std::enable_shared_from_this<TransportServer::State> {
  State(runtime::Runtime& runtime, api::Executor& executor, TransportHandlers handlers,
        TransportServerOptions options)
      : runtime(runtime),
        sink(std::make_shared<Sink>(executor, std::move(handlers))),
        options(std::move(options)),
        admission(std::make_shared<Admission>(this->options.admission)),
        strand(asio::make_strand(runtime.io())),
        acceptor(strand),
        pause(strand) {}

  void accept() {
    acceptor.async_accept(
        asio::make_strand(runtime.io()),
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (ec) {
            // Out of descriptors and the like: keep serving the connections we have, and pause
            // rather than spin on an error that will not go away at once.
            self->sink->log().warn("accept failed: {}", ec.message());
            self->pause.expires_after(std::chrono::milliseconds(100));
            self->pause.async_wait([self](boost::system::error_code waitError) {
              if (!waitError && self->acceptor.is_open()) self->accept();
            });
            return;
          }
          if (!self->admission->admit()) {
            // Refused before any of its bytes are read: the owner never hears of it.
            self->sink->log().warn(
                "refusing connection from '{}': {} connections have not sent a first message "
                "yet",
                endpointText(socket), self->options.admission.maxPendingConnections);
            boost::system::error_code ignored;
            socket.close(ignored);
          } else {
            // Pending from here: a TLS handshake counts against the admission like a first
            // message does, and must finish within its timeout.
            acceptTls(TlsStream(std::move(socket)), self->options.tls,
                      self->options.admission.handshakeTimeout,
                      [self](api::Status status, TlsStream stream) {
                        if (!status) {
                          self->admission->leave();
                          self->sink->log().warn("refusing connection: {}", status.message());
                          return;
                        }
                        std::make_shared<Core>(std::move(stream), self->sink,
                                               self->options.transport, nullptr, self->admission)
                            ->start();
                      });
          }
          self->accept();
        });
  }

  runtime::Runtime& runtime;
  std::shared_ptr<Sink> sink;
  const TransportServerOptions options;
  std::shared_ptr<Admission> admission;
  Strand strand;
  tcp::acceptor acceptor;
  asio::steady_timer pause;  // between accept retries after an error
  std::atomic<uint16_t> port{0};
  std::mutex mutex;
  bool started = false;
  bool stopped = false;
};

TransportServer::TransportServer(runtime::Runtime& runtime, api::Executor& executor,
                                 TransportHandlers handlers, TransportServerOptions options)
    : state_(std::make_shared<State>(runtime, executor, std::move(handlers), std::move(options))) {}

TransportServer::~TransportServer() { stop(); }

api::Status TransportServer::start() {
  std::lock_guard lock(state_->mutex);
  if (state_->started) return api::failedPrecondition("transport server already started");
  boost::system::error_code ec;
  auto address = asio::ip::make_address(state_->options.address, ec);
  if (ec) return api::invalidArgument("bad listen address '{}'", state_->options.address);
  tcp::endpoint endpoint(address, state_->options.port);
  // The acceptor is only touched on its strand once accepting; until then, here.
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return api::unavailable("cannot listen on {}:{}: {}", state_->options.address,
                            state_->options.port, ec.message());
  }
  state_->port = acceptor.local_endpoint().port();
  state_->started = true;
  asio::post(state_->strand, [state = state_] { state->accept(); });
  return {};
}

uint16_t TransportServer::port() const { return state_->port; }

size_t TransportServer::connectionCount() const { return state_->sink->count(); }

size_t TransportServer::pendingConnectionCount() const { return state_->admission->pending(); }

void TransportServer::stop() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
  }
  auto closed = std::make_shared<std::promise<void>>();
  asio::post(state_->strand, [state = state_, closed] {
    boost::system::error_code ec;
    state->acceptor.close(ec);
    state->pause.cancel();
    closed->set_value();
  });
  // The runtime's io threads run the close; without them there is nothing to close anyway.
  closed->get_future().wait_for(kStopTimeout);
  state_->sink->stop();
}

// -------------------------------------------------------------------------------------------
// Client

struct TransportClient::State : std::enable_shared_from_this<TransportClient::State> {
  State(runtime::Runtime& runtime, api::Executor& executor, std::string host, uint16_t port,
        TransportHandlers handlers, TransportClientOptions options)
      : runtime(runtime),
        sink(std::make_shared<Sink>(executor, std::move(handlers))),
        host(std::move(host)),
        port(port),
        options(options),
        strand(asio::make_strand(runtime.io())),
        retryTimer(strand),
        resolver(strand),
        rng(std::random_device{}()) {}

  // On the strand from here on.
  void connect() {
    if (stopped) return;
    resolver.async_resolve(
        host, std::to_string(port),
        [self = shared_from_this()](boost::system::error_code ec,
                                    tcp::resolver::results_type results) {
          if (self->stopped) return;
          if (ec) {
            self->retry(api::unavailable("cannot resolve '{}': {}", self->host, ec.message()));
            return;
          }
          self->stream.emplace(asio::make_strand(self->runtime.io()));
          self->stream->expires_after(self->options.connectTimeout);
          self->stream->async_connect(
              results, asio::bind_executor(self->strand, [self](boost::system::error_code ec,
                                                                const tcp::endpoint&) {
                if (self->stopped) {
                  self->stream.reset();
                  return;
                }
                if (ec) {
                  self->stream.reset();
                  self->retry(api::unavailable("cannot connect to {}:{}: {}", self->host,
                                               self->port, ec.message()));
                  return;
                }
                self->stream->expires_never();
                TlsStream plain(std::move(*self->stream));
                self->stream.reset();
                connectTls(std::move(plain), self->options.tls, self->host,
                           self->options.connectTimeout,
                           [self](api::Status status, TlsStream stream) {
                             asio::post(self->strand, [self, status = std::move(status),
                                                       stream = std::move(stream)]() mutable {
                               if (self->stopped) return;
                               if (!status) {
                                 self->sink->log().warn("{}", status.message());
                                 self->retry(std::move(status));
                                 return;
                               }
                               self->established(std::move(stream));
                             });
                           });
              }));
        });
  }

  // On the strand: connected (and handshaken); the connection takes over.
  void established(TlsStream stream) {
    attempt = 0;
    std::weak_ptr<State> weak = shared_from_this();
    auto core = std::make_shared<Core>(std::move(stream), sink, options.transport, [weak] {
      if (auto state = weak.lock()) {
        asio::post(state->strand, [state] { state->disconnected(); });
      }
    });
    {
      std::lock_guard lock(mutex);
      current = core->handle();
    }
    core->start();
  }

  void disconnected() {
    {
      std::lock_guard lock(mutex);
      current.reset();
    }
    if (!stopped) retry(api::unavailable("connection to {}:{} dropped", host, port));
  }

  void retry(const api::Status& why) {
    auto wait =
        reconnectDelay(options, attempt, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
    attempt = std::min(attempt + 1, 62);
    sink->log().debug("{}; retrying in {} ms", why.message(), wait.count());
    retryTimer.expires_after(wait);
    retryTimer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->connect();
    });
  }

  void halt() {
    stopped = true;
    retryTimer.cancel();
    resolver.cancel();
    if (stream) stream->cancel();
  }

  runtime::Runtime& runtime;
  std::shared_ptr<Sink> sink;
  const std::string host;
  const uint16_t port;
  const TransportClientOptions options;
  Strand strand;
  asio::steady_timer retryTimer;
  tcp::resolver resolver;
  std::optional<boost::beast::tcp_stream> stream;
  std::mt19937 rng;
  int attempt = 0;
  std::atomic<bool> stopped{false};

  std::mutex mutex;  // guards current, started, halted
  std::shared_ptr<Handle> current;
  bool started = false;
  bool halted = false;
};

TransportClient::TransportClient(runtime::Runtime& runtime, api::Executor& executor,
                                 std::string host, uint16_t port, TransportHandlers handlers,
                                 TransportClientOptions options)
    : state_(std::make_shared<State>(runtime, executor, std::move(host), port, std::move(handlers),
                                     options)) {}

TransportClient::~TransportClient() { stop(); }

void TransportClient::start() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->started || state_->halted) return;
    state_->started = true;
  }
  asio::post(state_->strand, [state = state_] { state->connect(); });
}

bool TransportClient::send(std::string payload) {
  std::shared_ptr<Handle> handle;
  {
    std::lock_guard lock(state_->mutex);
    handle = state_->current;
  }
  return handle && handle->send(std::move(payload));
}

bool TransportClient::send(const google::protobuf::Message& message) {
  std::string payload;
  if (!message.SerializeToString(&payload)) return false;
  return send(std::move(payload));
}

ConnectionPtr TransportClient::connection() const {
  std::lock_guard lock(state_->mutex);
  return state_->current;
}

void TransportClient::stop() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->halted) return;
    state_->halted = true;
  }
  auto halted = std::make_shared<std::promise<void>>();
  asio::post(state_->strand, [state = state_, halted] {
    state->halt();
    halted->set_value();
  });
  halted->get_future().wait_for(kStopTimeout);
  state_->sink->stop();
  std::lock_guard lock(state_->mutex);
  state_->current.reset();
}

}  // namespace tessera::kernel::net

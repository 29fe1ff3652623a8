#pragma once

/// The internal transport (master <-> agent, master <-> hosted framework): persistent TCP
/// connections carrying length-prefixed protobuf messages, with heartbeats and, on the client
/// side, reconnection with exponential backoff.
///
/// Memory: a frame's body grows as its bytes arrive (in reads of at most 64 KiB), never by what
/// its length prefix announces; see TransportOptions and AdmissionOptions for the other bounds.
///
/// Wire format, per frame: a 4-byte big-endian length N, then N bytes: one kind byte followed by
/// the payload. Kind 0 is a message (the payload is a serialized protobuf message of the type
/// the two ends agreed on, typically one envelope message with a oneof per message kind), kind 1
/// a ping and kind 2 its pong (both with empty payloads). The kind byte lets heartbeats share the
/// stream without stealing a value from the user's message space (an empty protobuf message
/// serializes to zero bytes, so a zero-length frame cannot mean "ping").
///
/// Threading: every connection has its own strand; socket work never runs on the owner's
/// executor. Callbacks are posted to the api::Executor the owner gives, in order per connection
/// (onConnected, then each onMessage, then onClose once).

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/runtime/runtime.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::net {

class TlsContext;
/// The process's TLS (tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();

/// Limits and liveness settings shared by both ends.
struct TransportOptions {
  /// Each end sends a ping every interval and answers each ping with a pong; any frame received
  /// counts as a sign of life.
  std::chrono::milliseconds heartbeatInterval{5000};
  /// After this many intervals in a row with nothing received, the peer is declared dead and
  /// the connection closed (Unavailable), without waiting for TCP to notice.
  int maxMissedHeartbeats = 3;
  /// A frame announcing more than this is refused: the connection is closed with an error
  /// logged (ResourceExhausted); send() refuses larger messages too.
  size_t maxMessageBytes = 16 * 1024 * 1024;
  /// When more than this waits to be written (a peer that stopped reading), the connection is
  /// closed (ResourceExhausted) rather than letting the queue grow until the heartbeat notices.
  size_t maxQueuedBytes = 64 * 1024 * 1024;
  /// Bytes received on one connection and not yet handled by the owner: the frame being read
  /// plus the messages whose onMessage has not returned yet. Beyond it the connection stops
  /// reading (TCP pushes back on the peer) until the owner catches up. One frame of
  /// maxMessageBytes is always let in, so the effective bound is the larger of the two.
  size_t maxBytesInFlight = 64 * 1024 * 1024;
};

/// How a TransportServer treats connections that have not proved anything yet. A connection is
/// "pending" from accept until its first whole message frame (kind 0) has arrived; pings do not
/// count. The transport itself authenticates nobody: the first message is where the owner's
/// protocol (registration) begins, so until then the peer is anyone who can open a socket.
struct AdmissionOptions {
  /// Pending connections at most; a connection accepted beyond it is closed at once, with the
  /// reason logged, and the owner never hears of it.
  size_t maxPendingConnections = 256;
  /// A pending connection whose first message has not arrived within this is closed
  /// (DeadlineExceeded).
  std::chrono::milliseconds handshakeTimeout{15000};
  /// Bytes of partly received frames all pending connections together may hold. A pending
  /// connection whose next read would pass it is closed (ResourceExhausted), so a crowd of
  /// strangers cannot make the server hold maxPendingConnections × maxMessageBytes.
  size_t maxPendingBytes = 64 * 1024 * 1024;
};

/// One established connection. Thread-safe; shared by the transport and its callbacks. After
/// close, send() returns false and nothing more is delivered.
class Connection {
 public:
  virtual ~Connection() = default;
  /// Queues `payload` (already serialized) to be sent after everything queued before it on this
  /// connection; calls from one thread are sent in their order. False when closed or when the
  /// payload is over the maximum message size. Non-blocking.
  virtual bool send(std::string payload) = 0;
  /// Serializes and queues `message`. False as send(std::string), or when it does not
  /// serialize (missing required fields).
  bool send(const google::protobuf::Message& message);
  /// Closes the connection (queued messages not yet written are dropped); onClose follows with
  /// a Cancelled status. Idempotent.
  virtual void close() = 0;
  /// False once closed for any reason.
  virtual bool open() const = 0;
  /// The peer's "ip:port".
  virtual const std::string& peer() const = 0;
  /// A process-unique id, for logs and maps.
  virtual uint64_t id() const = 0;
};

/// How connections are shared between the transport and its owner.
using ConnectionPtr = std::shared_ptr<Connection>;

/// What the owner hears. Every callback runs on the owner's executor; each may be empty.
struct TransportHandlers {
  /// A connection was accepted (server) or established (client).
  std::function<void(const ConnectionPtr&)> onConnected;
  /// A whole message arrived; `payload` is the serialized protobuf message. See
  /// typedMessageHandler() to get a parsed one.
  std::function<void(const ConnectionPtr&, std::string payload)> onMessage;
  /// The connection is gone: Cancelled after close()/stop(), Unavailable for a drop by the peer
  /// or missed heartbeats, InvalidArgument/ResourceExhausted for a bad frame. Called once, after
  /// the connection's last onMessage.
  std::function<void(const ConnectionPtr&, const api::Status& reason)> onClose;
};

/// Adapts a handler of parsed `Msg`s to TransportHandlers::onMessage. A payload that does not
/// parse as `Msg` closes the connection (a peer speaking something else is not to be trusted
/// with the rest of the stream).
template <typename Msg>
std::function<void(const ConnectionPtr&, std::string)> typedMessageHandler(
    std::function<void(const ConnectionPtr&, Msg)> handler) {
  return [handler = std::move(handler)](const ConnectionPtr& connection, std::string payload) {
    Msg message;
    if (!message.ParseFromString(payload)) {
      connection->close();
      return;
    }
    handler(connection, std::move(message));
  };
}

/// Where a TransportServer listens and how its connections behave.
struct TransportServerOptions {
  std::string address = "127.0.0.1";  ///< IPv4 or IPv6 literal; "0.0.0.0" for all
  uint16_t port = 0;                  ///< 0: an ephemeral port, see port()
  TransportOptions transport;
  /// TLS for every connection (tls.h; downgrade lets plain agents in too); null: plain.
  /// Defaults to the process's. The handshake counts as the pending phase (AdmissionOptions:
  /// it must end within handshakeTimeout); a failed one is logged with the peer.
  std::shared_ptr<TlsContext> tls = processTls();
  AdmissionOptions admission;
};

/// Accepts connections and reports them through the handlers. The runtime must be started and
/// outlive the server; `executor` must outlive it too.
class TransportServer {
 public:
  TransportServer(runtime::Runtime& runtime, api::Executor& executor, TransportHandlers handlers,
                  TransportServerOptions options = {});
  /// stop()s.
  ~TransportServer();
  TransportServer(const TransportServer&) = delete;
  TransportServer& operator=(const TransportServer&) = delete;

  /// Binds (with SO_REUSEADDR, so a restarted server gets its port back) and starts accepting.
  /// Errors: InvalidArgument for a bad address, Unavailable when it cannot bind,
  /// FailedPrecondition when already started.
  api::Status start();
  /// The bound port after start(), 0 before.
  uint16_t port() const;
  /// Closes the listener and every connection and waits until their socket work has finished;
  /// once it returns no callback starts any more (one already running on another thread may
  /// still finish — call stop() from the owner's executor, or drain it, to be sure). May be
  /// called from a callback on the owner's executor. Not from an io thread of the runtime.
  /// Idempotent.
  void stop();
  /// Open connections right now.
  size_t connectionCount() const;
  /// Open connections that have not sent a first message yet (see AdmissionOptions).
  size_t pendingConnectionCount() const;

  /// Shared with the accept loop, so a late completion never touches a destroyed server.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// How a TransportClient finds and retries its server.
struct TransportClientOptions {
  std::chrono::milliseconds initialBackoff{100};  ///< delay before the first retry
  std::chrono::milliseconds maxBackoff{10000};    ///< the delay doubles up to this
  /// Each delay is drawn uniformly from [delay * (1 - jitter), delay], so agents restarted
  /// together do not reconnect in lockstep. In [0, 1].
  double jitter = 0.2;
  std::chrono::milliseconds connectTimeout{
      5000};  ///< one attempt (and its handshake) gives up after this
  TransportOptions transport;
  /// TLS to the server (tls.h), verified against the CA when verifyCert; null: plain. Defaults
  /// to the process's. A failed handshake is logged and retried like a failed connect.
  std::shared_ptr<TlsContext> tls = processTls();
};

/// The delay before reconnection attempt number `attempt` (0 for the first retry after a failure
/// or a drop): `initialBackoff * 2^attempt` capped at `maxBackoff`, then reduced by up to
/// `jitter` of itself according to `random` in [0, 1] (0: no reduction).
std::chrono::milliseconds reconnectDelay(const TransportClientOptions& options, int attempt,
                                         double random);

/// Keeps one connection to `host`:`port` open: connects, and after a failure or a drop tries
/// again with exponential backoff until stop(). The runtime must be started and outlive the
/// client; `executor` must outlive it too.
class TransportClient {
 public:
  TransportClient(runtime::Runtime& runtime, api::Executor& executor, std::string host,
                  uint16_t port, TransportHandlers handlers, TransportClientOptions options = {});
  /// stop()s.
  ~TransportClient();
  TransportClient(const TransportClient&) = delete;
  TransportClient& operator=(const TransportClient&) = delete;

  /// Starts connecting. Idempotent.
  void start();
  /// Sends on the current connection. False when there is none (the caller decides whether to
  /// keep the message for after onConnected).
  bool send(std::string payload);
  /// Serializes and sends `message`, as send(std::string).
  bool send(const google::protobuf::Message& message);
  /// The current connection, null while disconnected.
  ConnectionPtr connection() const;
  /// Stops retrying, closes the connection and waits for its socket work to finish; the same
  /// guarantees and restrictions as TransportServer::stop(). Idempotent.
  void stop();

  /// Shared with the connect/retry loop, so a late completion never touches a destroyed client.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tessera::kernel::net

#pragma once

/// TLS for the kernel's listeners and clients (HttpServer, HttpClient, HttpStreamClient and the
/// transport), configured as Mesos's libprocess: LIBPROCESS_SSL_* environment variables, or the
/// same settings as --ssl_* flags. One TlsContext holds the OpenSSL contexts of a process; a
/// TlsStream is a TCP stream that is either plain or TLS, so every handler is written once.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <variant>

#include "tessera/api/status.h"

namespace tessera::kernel::net {

/// What LIBPROCESS_SSL_* (or --ssl_*) say. Mesos's meaning throughout: with `enabled` every
/// outgoing connection speaks TLS and every listener expects it.
struct TlsSettings {
  bool enabled = false;
  std::string certFile;  ///< PEM certificate (chain) this process presents
  std::string keyFile;   ///< its PEM private key
  std::string caFile;    ///< PEM CA bundle peers are verified against
  std::string caDir;     ///< a c_rehash'ed directory of CAs; neither set: the system's CAs
  /// Verify a certificate the peer presents (a client always verifies the server's then; a
  /// server verifies a client's only if it sends one).
  bool verifyCert = false;
  /// A listener refuses clients without a valid certificate. Implies verifyCert.
  bool requireCert = false;
  /// A listener also takes plain connections on the same port (a first byte other than 0x16,
  /// a TLS handshake record, means plain).
  bool supportDowngrade = false;
  /// OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's, all strong).
  std::string ciphers =
      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
      "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

  /// Reads LIBPROCESS_SSL_* from `env` (SSL_* accepted too, as Mesos does, the LIBPROCESS_
  /// form winning). Booleans are true|1|false|0. Errors: InvalidArgument naming the variable.
  static api::Result<TlsSettings> fromEnvironment(const std::map<std::string, std::string>& env);
  /// fromEnvironment() over this process's environment.
  static api::Result<TlsSettings> fromProcessEnvironment();
};

/// The OpenSSL contexts built from TlsSettings: TLS 1.2 at least, no compression, the cipher
/// list above. Immutable after create(); shared by every connection of the process.
class TlsContext {
 public:
  /// Loads the certificate, key and CAs. Errors: InvalidArgument when `settings` is not
  /// enabled or lacks a certificate or key; FailedPrecondition naming the file and OpenSSL's
  /// reason when a file cannot be read or the key does not match the certificate.
  static api::Result<std::shared_ptr<TlsContext>> create(const TlsSettings& settings);

  const TlsSettings& settings() const { return settings_; }
  boost::asio::ssl::context& server() { return server_; }
  boost::asio::ssl::context& client() { return client_; }

  /// Client-side session resumption: the last session a server at `peer` (host and address)
  /// gave this context, set on `ssl` before its handshake so that a new connection skips the
  /// certificate exchange and signature (TLS 1.3 tickets, TLS 1.2 session ids). Thread-safe.
  void resumeSession(SSL* ssl, const std::string& peer);
  /// How many client handshakes resumed a session (tests and the bench read it).
  uint64_t resumedForTest() const;

  explicit TlsContext(TlsSettings settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

 private:
  friend struct TlsSessionCache;
  TlsSettings settings_;
  boost::asio::ssl::context server_;
  boost::asio::ssl::context client_;
  mutable std::mutex sessionsMutex_;
  std::map<std::string, SSL_SESSION*> sessions_;  // owned references, by peer
  std::atomic<uint64_t> resumed_{0};
};

/// The process's TLS: null (plain) unless setProcessTls() installed one. The daemons and the
/// CLI install it at start from the environment and the --ssl_* flags; servers and clients
/// constructed without an explicit context take this one.
std::shared_ptr<TlsContext> processTls();
/// Installs (or, with null, removes) the process's TLS. Call before creating servers/clients.
void setProcessTls(std::shared_ptr<TlsContext> tls);

/// A TCP stream that is plain or TLS, behind one AsyncReadStream/AsyncWriteStream interface
/// (Beast's and Asio's read/write algorithms take it). The beast::tcp_stream under it carries
/// the timeouts (expires_after) either way. Movable; not thread-safe (use it on one strand).
///
/// The TLS side writes through beast::flat_stream: it copies a buffer sequence of up to one
/// full TLS record (16 KiB) into one buffer, so an HTTP message (status line, header fields,
/// body) of up to 16 KiB leaves as one record; asio's ssl::stream alone gathers up to 8 KiB.
class TlsStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using Ssl = boost::asio::ssl::stream<boost::beast::tcp_stream>;
  using Secure = boost::beast::flat_stream<Ssl>;

  explicit TlsStream(boost::beast::tcp_stream stream) : stream_(std::move(stream)) {}
  explicit TlsStream(boost::asio::ip::tcp::socket socket)
      : stream_(boost::beast::tcp_stream(std::move(socket))) {}

  executor_type get_executor() { return tcp().get_executor(); }
  /// The TCP layer: timeouts, the socket, the endpoints.
  boost::beast::tcp_stream& tcp() {
    if (auto* secure = std::get_if<Secure>(&stream_)) return secure->next_layer().next_layer();
    return std::get<boost::beast::tcp_stream>(stream_);
  }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }
  bool secure() const { return std::holds_alternative<Secure>(stream_); }
  /// Wraps the TCP stream in TLS (before any handshake). Idempotent.
  void makeSecure(boost::asio::ssl::context& context) {
    if (secure()) return;
    auto plain = std::move(std::get<boost::beast::tcp_stream>(stream_));
    stream_.emplace<Secure>(std::move(plain), context);
  }
  /// The TLS layer (handshake, the native SSL*); null when plain.
  Ssl* tls() {
    auto* secure = std::get_if<Secure>(&stream_);
    return secure ? &secure->next_layer() : nullptr;
  }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (auto* secure = std::get_if<Secure>(&stream_)) {
      secure->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<boost::beast::tcp_stream>(stream_).async_read_some(buffers,
                                                                  std::forward<Handler>(handler));
    }
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (auto* secure = std::get_if<Secure>(&stream_)) {
      secure->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<boost::beast::tcp_stream>(stream_).async_write_some(buffers,
                                                                   std::forward<Handler>(handler));
    }
  }

  /// Closes the socket at once (no TLS close_notify: every caller is done with the peer).
  void shutdown(boost::asio::socket_base::shutdown_type what, boost::system::error_code& ec) {
    socket().shutdown(what, ec);
  }
  void close(boost::system::error_code& ec) { socket().close(ec); }

 private:
  std::variant<boost::beast::tcp_stream, Secure> stream_;
};

/// Completes a server-side accept: with `tls` null, `done` gets the stream as it is (plain).
/// Otherwise the first byte decides, when the settings allow a downgrade (0x16 opens a TLS
/// handshake, anything else stays plain); without downgrade every connection must handshake.
/// The whole step is bounded by `timeout`. `done(status, stream)` runs on the stream's
/// executor; a failure's status names the peer and OpenSSL's reason, and the caller logs it.
void acceptTls(TlsStream stream, std::shared_ptr<TlsContext> tls, std::chrono::milliseconds timeout,
               std::function<void(api::Status, TlsStream)> done);

/// Client side: with `tls` set, wraps `stream` and handshakes (SNI and, with verifyCert, the
/// peer's name checked against `host`), bounded by `timeout`; with `tls` null, done at once.
void connectTls(TlsStream stream, std::shared_ptr<TlsContext> tls, const std::string& host,
                std::chrono::milliseconds timeout,
                std::function<void(api::Status, TlsStream)> done);

/// Wraps `stream` in the client side of `tls` (SNI for a name, and with verifyCert the peer's
/// certificate checked against `host`), ready for async_handshake(client).
void prepareClientTls(TlsStream& stream, TlsContext& tls, const std::string& host);

/// An error's text, with OpenSSL's reason for a TLS error ("certificate verify failed", ...).
std::string tlsReason(const boost::system::error_code& ec);

}  // namespace tessera::kernel::net

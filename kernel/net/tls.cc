#include "kernel/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <mutex>

extern char** environ;

namespace tessera::kernel::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

api::Status parseBool(const std::map<std::string, std::string>& env, const std::string& name,
                      bool& out) {
  std::string value;
  if (auto it = env.find("LIBPROCESS_" + name); it != env.end()) {
    value = it->second;
  } else if (auto legacy = env.find(name); legacy != env.end()) {
    value = legacy->second;
  } else {
    return api::Status::ok();
  }
  if (value == "true" || value == "1") {
    out = true;
  } else if (value == "false" || value == "0") {
    out = false;
  } else {
    return api::invalidArgument("LIBPROCESS_{}='{}': expected true, false, 1 or 0", name, value);
  }
  return api::Status::ok();
}

void parseString(const std::map<std::string, std::string>& env, const std::string& name,
                 std::string& out) {
  if (auto it = env.find("LIBPROCESS_" + name); it != env.end()) {
    out = it->second;
  } else if (auto legacy = env.find(name); legacy != env.end()) {
    out = legacy->second;
  }
}

// OpenSSL's reasons queued on this thread, "; "-joined, and the queue cleared.
std::string opensslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

void applyCommon(SSL_CTX* ctx, const TlsSettings& settings) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(ctx, settings.ciphers.c_str());
}

api::Status loadIdentity(SSL_CTX* ctx, const TlsSettings& settings) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.certFile.c_str()) != 1) {
    return api::failedPrecondition(
        "cannot load the TLS certificate '{}' (LIBPROCESS_SSL_CERT_FILE): {}", settings.certFile,
        opensslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return api::failedPrecondition("cannot load the TLS key '{}' (LIBPROCESS_SSL_KEY_FILE): {}",
                                   settings.keyFile, opensslErrors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return api::failedPrecondition("the TLS key '{}' does not match the certificate '{}': {}",
                                   settings.keyFile, settings.certFile, opensslErrors());
  }
  return api::Status::ok();
}

api::Status loadCAs(SSL_CTX* ctx, const TlsSettings& settings) {
  ERR_clear_error();
  if (settings.caFile.empty() && settings.caDir.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return api::failedPrecondition("cannot load the system's CAs: {}", opensslErrors());
    }
    return api::Status::ok();
  }
  const char* file = settings.caFile.empty() ? nullptr : settings.caFile.c_str();
  const char* dir = settings.caDir.empty() ? nullptr : settings.caDir.c_str();
  if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1) {
    return api::failedPrecondition(
        "cannot load the TLS CAs (LIBPROCESS_SSL_CA_FILE '{}', LIBPROCESS_SSL_CA_DIR '{}'): {}",
        settings.caFile, settings.caDir, opensslErrors());
  }
  return api::Status::ok();
}

std::string peerText(TlsStream& stream) {
  beast::error_code ec;
  auto remote = stream.socket().remote_endpoint(ec);
  if (ec) return "an unknown peer";
  return remote.address().to_string() + ":" + std::to_string(remote.port());
}

std::mutex processMutex;
std::shared_ptr<TlsContext> processContext;

}  // namespace

// Client sessions kept for resumption. OpenSSL hands a client every session (TLS 1.3: each
// ticket, after the handshake) through the context's new-session callback; the SSL object says
// which peer it was for (ex_data set by resumeSession) and the SSL_CTX which TlsContext keeps it.
struct TlsSessionCache {
  // At most this many peers are remembered; beyond, the oldest-keyed entry goes.
  static constexpr size_t kMaxPeers = 1024;

  static int sslIndex() {
    static const int index = SSL_get_ex_new_index(
        0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
          delete static_cast<std::string*>(ptr);
        });
    return index;
  }
  static int ctxIndex() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }

  static void install(TlsContext& context) {
    SSL_CTX* ctx = context.client_.native_handle();
    SSL_CTX_set_ex_data(ctx, ctxIndex(), &context);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &TlsSessionCache::onNewSession);
  }

  // Keeps a copy: OpenSSL marks the connection's own session not resumable when the SSL is
  // freed without a close_notify, and every kernel connection ends by closing the socket.
  static int onNewSession(SSL* ssl, SSL_SESSION* session) {
    auto* context = static_cast<TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctxIndex()));
    auto* peer = static_cast<std::string*>(SSL_get_ex_data(ssl, sslIndex()));
    if (context == nullptr || peer == nullptr) return 0;
    SSL_SESSION* copy = SSL_SESSION_dup(session);
    if (copy == nullptr) return 0;
    std::lock_guard lock(context->sessionsMutex_);
    auto& sessions = context->sessions_;
    if (auto it = sessions.find(*peer); it != sessions.end()) {
      SSL_SESSION_free(it->second);
      it->second = copy;
      return 0;
    }
    if (sessions.size() >= kMaxPeers) {
      SSL_SESSION_free(sessions.begin()->second);
      sessions.erase(sessions.begin());
    }
    sessions.emplace(*peer, copy);
    return 0;  // OpenSSL keeps (and frees) its own reference to `session`
  }

  static void countResumed(TlsContext& context) { ++context.resumed_; }
};

namespace {

// One accept or connect step: the stream, a timer bounding it, the callback.
struct Step : std::enable_shared_from_this<Step> {
  Step(TlsStream s, std::function<void(api::Status, TlsStream)> d)
      : stream(std::move(s)), timer(stream.get_executor()), done(std::move(d)) {}

  void arm(std::chrono::milliseconds timeout) {
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->finished) return;
      self->timedOut = true;
      beast::error_code ignored;
      self->stream.socket().cancel(ignored);
      self->stream.socket().close(ignored);
    });
  }

  void finish(api::Status status) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(std::move(status), std::move(stream));
  }

  TlsStream stream;
  asio::steady_timer timer;
  std::function<void(api::Status, TlsStream)> done;
  std::shared_ptr<TlsContext> tls;
  bool finished = false;
  bool timedOut = false;
  std::string peer;
};

void handshake(std::shared_ptr<Step> step, ssl::stream_base::handshake_type type) {
  step->stream.tls()->async_handshake(type, [step, type](beast::error_code ec) {
    if (!ec) {
      if (type == ssl::stream_base::client && step->tls &&
          SSL_session_reused(step->stream.tls()->native_handle()) == 1) {
        TlsSessionCache::countResumed(*step->tls);
      }
      return step->finish(api::Status::ok());
    }
    if (step->timedOut) {
      return step->finish(api::makeStatus(api::StatusCode::kDeadlineExceeded,
                                          "TLS handshake {} timed out", step->peer));
    }
    step->finish(api::unavailable("TLS handshake {} failed: {}", step->peer, tlsReason(ec)));
  });
}

}  // namespace

api::Result<TlsSettings> TlsSettings::fromEnvironment(
    const std::map<std::string, std::string>& env) {
  TlsSettings settings;
  for (auto [name, field] : {std::pair{"SSL_ENABLED", &settings.enabled},
                             std::pair{"SSL_VERIFY_CERT", &settings.verifyCert},
                             std::pair{"SSL_REQUIRE_CERT", &settings.requireCert},
                             std::pair{"SSL_SUPPORT_DOWNGRADE", &settings.supportDowngrade}}) {
    if (auto status = parseBool(env, name, *field); !status) return status;
  }
  parseString(env, "SSL_CERT_FILE", settings.certFile);
  parseString(env, "SSL_KEY_FILE", settings.keyFile);
  parseString(env, "SSL_CA_FILE", settings.caFile);
  parseString(env, "SSL_CA_DIR", settings.caDir);
  parseString(env, "SSL_CIPHERS", settings.ciphers);
  return settings;
}

api::Result<TlsSettings> TlsSettings::fromProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    auto name = text.substr(0, eq);
    if (name.find("SSL_") == std::string_view::npos) continue;
    env.emplace(std::string(name), std::string(text.substr(eq + 1)));
  }
  return fromEnvironment(env);
}

TlsContext::TlsContext(TlsSettings settings)
    : settings_(std::move(settings)),
      server_(ssl::context::tls_server),
      client_(ssl::context::tls_client) {
  TlsSessionCache::install(*this);
}

TlsContext::~TlsContext() {
  for (auto& [peer, session] : sessions_) SSL_SESSION_free(session);
}

void TlsContext::resumeSession(SSL* ssl, const std::string& peer) {
  SSL_set_ex_data(ssl, TlsSessionCache::sslIndex(), new std::string(peer));
  std::lock_guard lock(sessionsMutex_);
  if (auto it = sessions_.find(peer); it != sessions_.end()) SSL_set_session(ssl, it->second);
}

uint64_t TlsContext::resumedForTest() const { return resumed_.load(); }

api::Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsSettings& given) {
  if (!given.enabled) return api::invalidArgument("TLS is not enabled (LIBPROCESS_SSL_ENABLED)");
  if (given.certFile.empty()) {
    return api::invalidArgument(
        "TLS is enabled but no certificate is set (LIBPROCESS_SSL_CERT_FILE or --ssl_cert_file)");
  }
  if (given.keyFile.empty()) {
    return api::invalidArgument(
        "TLS is enabled but no key is set (LIBPROCESS_SSL_KEY_FILE or --ssl_key_file)");
  }
  TlsSettings settings = given;
  if (settings.requireCert) settings.verifyCert = true;  // Mesos: REQUIRE implies VERIFY
  auto context = std::make_shared<TlsContext>(settings);
  for (SSL_CTX* ctx : {context->server_.native_handle(), context->client_.native_handle()}) {
    applyCommon(ctx, settings);
    if (auto status = loadIdentity(ctx, settings); !status) return status;
    if (settings.verifyCert) {
      if (auto status = loadCAs(ctx, settings); !status) return status;
    }
  }
  if (ERR_peek_error() != 0) {
    // A cipher list OpenSSL rejected entirely.
    if (SSL_CTX_set_cipher_list(context->server_.native_handle(), settings.ciphers.c_str()) != 1)
      return api::invalidArgument("bad LIBPROCESS_SSL_CIPHERS '{}': {}", settings.ciphers,
                                  opensslErrors());
    ERR_clear_error();
  }
  int serverMode = ssl::verify_none;
  if (settings.verifyCert) serverMode = ssl::verify_peer;
  if (settings.requireCert) serverMode |= ssl::verify_fail_if_no_peer_cert;
  context->server_.set_verify_mode(serverMode);
  context->client_.set_verify_mode(settings.verifyCert ? ssl::verify_peer : ssl::verify_none);
  // Session resumption across the server's connections (sessions are per context).
  SSL_CTX_set_session_id_context(context->server_.native_handle(),
                                 reinterpret_cast<const unsigned char*>("tessera"), 7);
  return context;
}

std::shared_ptr<TlsContext> processTls() {
  std::lock_guard lock(processMutex);
  return processContext;
}

void setProcessTls(std::shared_ptr<TlsContext> tls) {
  std::lock_guard lock(processMutex);
  processContext = std::move(tls);
}

void acceptTls(TlsStream stream, std::shared_ptr<TlsContext> tls, std::chrono::milliseconds timeout,
               std::function<void(api::Status, TlsStream)> done) {
  if (!tls) return done(api::Status::ok(), std::move(stream));
  auto step = std::make_shared<Step>(std::move(stream), std::move(done));
  step->peer = "with " + peerText(step->stream);
  step->arm(timeout);
  if (!tls->settings().supportDowngrade) {
    step->stream.makeSecure(tls->server());
    return handshake(step, ssl::stream_base::server);
  }
  // Downgrade allowed: peek at the first byte once it is there.
  step->stream.socket().async_wait(tcp::socket::wait_read, [step, tls](beast::error_code ec) {
    if (ec) {
      return step->finish(api::unavailable("connection {} closed before its first byte: {}",
                                           step->peer,
                                           step->timedOut ? "timed out" : ec.message()));
    }
    unsigned char first = 0;
    beast::error_code peekError;
    size_t n = step->stream.socket().receive(asio::buffer(&first, 1), tcp::socket::message_peek,
                                             peekError);
    if (peekError || n == 0) {
      return step->finish(
          api::unavailable("connection {} closed before its first byte", step->peer));
    }
    if (first != 0x16) return step->finish(api::Status::ok());  // plain
    step->stream.makeSecure(tls->server());
    handshake(step, ssl::stream_base::server);
  });
}

void prepareClientTls(TlsStream& stream, TlsContext& tls, const std::string& host) {
  stream.makeSecure(tls.client());
  SSL* native = stream.tls()->native_handle();
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) SSL_set_tlsext_host_name(native, host.c_str());  // SNI takes names only
  // A session is resumed only with the peer (name and address) that issued it, so the name
  // checked at its full handshake is the name dialled now.
  tls.resumeSession(native, host + "|" + peerText(stream));
  if (tls.settings().verifyCert) {
    stream.tls()->set_verify_callback(ssl::host_name_verification(host));
  }
}

std::string tlsReason(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    char buffer[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buffer, sizeof buffer);
    return buffer;
  }
  return ec.message();
}

void connectTls(TlsStream stream, std::shared_ptr<TlsContext> tls, const std::string& host,
                std::chrono::milliseconds timeout,
                std::function<void(api::Status, TlsStream)> done) {
  if (!tls) return done(api::Status::ok(), std::move(stream));
  auto step = std::make_shared<Step>(std::move(stream), std::move(done));
  step->tls = tls;
  step->peer = "with " + host + " (" + peerText(step->stream) + ")";
  prepareClientTls(step->stream, *tls, host);
  step->arm(timeout);
  handshake(step, ssl::stream_base::client);
}

}  // namespace tessera::kernel::net

// Requests/s of GET /health on the kernel's HttpServer, plain vs TLS, in one run (#17's
// Measure). The server runs in-process on its own runtime; the client is net::HttpClient over
// loopback: keep-alive (one connection, the steady-state cost of encryption) and one
// connection per request (the handshake's cost: resumed, as the kernel's clients do when they
// reconnect, and full, with the client's session cache turned off).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/net/tls.h"
#include "kernel/runtime/runtime.h"
#include "tests/support/tls.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  Fixture() {
    runtime.start();
    executor = runtime.makeExecutor();
    (void)router->addRoute("GET", "/health", executor.get(),
                           [](const api::HttpRequest&, api::HttpResponder respond) {
                             respond(api::HttpResponse::text(200, ""));
                           });
    TlsSettings s;
    s.enabled = true;
    s.certFile = pki.certFile();
    s.keyFile = pki.keyFile();
    s.caFile = pki.caFile();
    s.verifyCert = true;
    tls = *TlsContext::create(s);
    fullHandshake = *TlsContext::create(s);
    SSL_CTX_set_session_cache_mode(fullHandshake->client().native_handle(), SSL_SESS_CACHE_OFF);
    HttpServerOptions plainOptions;
    plainOptions.tls = nullptr;
    plain = std::make_unique<HttpServer>(runtime, router, plainOptions);
    HttpServerOptions tlsOptions;
    tlsOptions.tls = tls;
    secure = std::make_unique<HttpServer>(runtime, router, tlsOptions);
    (void)plain->start();
    (void)secure->start();
  }
  ~Fixture() {
    plain->stop();
    secure->stop();
    executor->drain();
    runtime.stop();
  }

  tessera::testing::TestPki pki;
  runtime::Runtime runtime;
  std::unique_ptr<runtime::StrandExecutor> executor;
  std::shared_ptr<Router> router = std::make_shared<Router>();
  std::shared_ptr<TlsContext> tls;
  std::shared_ptr<TlsContext> fullHandshake;  // never resumes
  std::unique_ptr<HttpServer> plain;
  std::unique_ptr<HttpServer> secure;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void keepAlive(benchmark::State& state, bool useTls) {
  auto& f = fixture();
  HttpClient client(useTls ? f.tls : nullptr);
  uint16_t port = useTls ? f.secure->port() : f.plain->port();
  if (!client.connect("127.0.0.1", port, 5s)) return state.SkipWithError("connect failed");
  ClientRequest request{"GET", "/health", {}, ""};
  for (auto _ : state) {
    auto response = client.request(request, 5s);
    if (!response || response->status != 200) return state.SkipWithError("request failed");
  }
  state.SetItemsProcessed(state.iterations());
}

enum class Mode { kPlain, kResumed, kFull };

void newConnection(benchmark::State& state, Mode mode) {
  auto& f = fixture();
  uint16_t port = mode == Mode::kPlain ? f.plain->port() : f.secure->port();
  std::shared_ptr<TlsContext> tls = mode == Mode::kPlain     ? nullptr
                                    : mode == Mode::kResumed ? f.tls
                                                             : f.fullHandshake;
  const uint64_t resumedBefore = tls ? tls->resumedForTest() : 0;
  for (auto _ : state) {
    auto response = httpRequest("GET", "127.0.0.1", port, "/health", {}, "", 5s, tls);
    if (!response || response->status != 200) return state.SkipWithError("request failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (tls) {
    state.counters["resumed"] = benchmark::Counter(
        static_cast<double>(tls->resumedForTest() - resumedBefore), benchmark::Counter::kDefaults);
  }
}

BENCHMARK_CAPTURE(keepAlive, plain, false)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(keepAlive, tls, true)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(newConnection, plain, Mode::kPlain)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(newConnection, tls_resumed, Mode::kResumed)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(newConnection, tls_full_handshake, Mode::kFull)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace tessera::kernel::net

BENCHMARK_MAIN();

#include "kernel/net/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "kernel/net/http_client.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "tests/kernel/http_test_util.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::waitUntil;

constexpr auto kTimeout = std::chrono::milliseconds(10000);

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    executor_ = runtime_.makeExecutor();
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    executor_->drain();
    runtime_.stop();
  }

  // Starts the server with `options` and a GET /ping route answering "pong".
  std::future<std::shared_ptr<HttpStream>> startWithEventsRoute(HttpServerOptions options);

  void startServer(HttpServerOptions options = {}) {
    ASSERT_TRUE(router_->addRoute("GET", "/ping", executor_.get(),
                                  [](const api::HttpRequest&, api::HttpResponder respond) {
                                    respond(api::HttpResponse::text(200, "pong"));
                                  }));
    server_ = std::make_unique<HttpServer>(runtime_, router_, options);
    ASSERT_TRUE(server_->start());
    ASSERT_NE(server_->port(), 0);
  }

  api::Result<ClientResponse> get(std::string_view target) {
    return httpRequest("GET", "127.0.0.1", server_->port(), target, {}, "", kTimeout);
  }

  // The server still serves a well-formed request on a new connection.
  void expectHealthy() {
    auto response = get("/ping");
    ASSERT_TRUE(response) << response.status().toString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "pong");
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::shared_ptr<Router> router_ = std::make_shared<Router>();
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesAnExactRouteOnItsExecutor) {
  ASSERT_TRUE(
      router_->addRoute("POST", "/echo", executor_.get(),
                        [this](const api::HttpRequest& request, api::HttpResponder respond) {
                          EXPECT_TRUE(executor_->runningInThisThread());
                          EXPECT_EQ(request.method, "POST");
                          EXPECT_EQ(request.path, "/echo");
                          EXPECT_EQ(request.query, "a=1&b=x%20y");
                          EXPECT_EQ(request.queryParam("b"), "x y");
                          EXPECT_EQ(request.header("X-Custom"), "v");
                          EXPECT_EQ(request.headers.count("x-custom"), 1u);
                          EXPECT_TRUE(request.remoteAddress.starts_with("127.0.0.1:"));
                          respond(api::HttpResponse::json(201, request.body));
                        }));
  startServer();
  auto response = httpRequest("POST", "127.0.0.1", server_->port(), "/echo?a=1&b=x%20y",
                              {{"X-Custom", "v"}}, R"({"x":1})", kTimeout);
  ASSERT_TRUE(response) << response.status().toString();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"x":1})");
  EXPECT_EQ(response->header("content-type"), "application/json");
}

TEST_F(HttpServerTest, LongestPrefixWinsAndExactBeatsPrefix) {
  auto answer = [](std::string text) {
    return [text](const api::HttpRequest&, api::HttpResponder respond) {
      respond(api::HttpResponse::text(200, text));
    };
  };
  ASSERT_TRUE(router_->addRoute("GET", "/files", executor_.get(), answer("files"), true));
  ASSERT_TRUE(router_->addRoute("GET", "/files/read", executor_.get(), answer("read"), true));
  ASSERT_TRUE(router_->addRoute("GET", "/files/read/exact", executor_.get(), answer("exact")));
  ASSERT_TRUE(router_->addRoute("*", "/any", executor_.get(), answer("any")));
  startServer();

  EXPECT_EQ(get("/files")->body, "files");
  EXPECT_EQ(get("/files/browse")->body, "files");
  EXPECT_EQ(get("/files/read")->body, "read");
  EXPECT_EQ(get("/files/read/x/y")->body, "read");
  EXPECT_EQ(get("/files/read/exact")->body, "exact");
  EXPECT_EQ(get("/filesystem")->status, 404);  // a prefix matches whole segments only
  auto any = httpRequest("DELETE", "127.0.0.1", server_->port(), "/any", {}, "", kTimeout);
  EXPECT_EQ(any->body, "any");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  startServer();
  auto missing = get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, R"({"message":"no route for '/nope'"})");
  EXPECT_EQ(missing->header("content-type"), "application/json");

  auto wrong = httpRequest("POST", "127.0.0.1", server_->port(), "/ping", {}, "x", kTimeout);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->header("allow"), "GET");
  EXPECT_NE(wrong->body.find("\"message\""), std::string::npos);
}

TEST_F(HttpServerTest, RouterRejectsBadAndDuplicateRoutes) {
  auto handler = [](const api::HttpRequest&, api::HttpResponder) {};
  EXPECT_EQ(router_->addRoute("GET", "nope", executor_.get(), handler).code(),
            api::StatusCode::kInvalidArgument);
  EXPECT_EQ(router_->addRoute("GET", "/x", nullptr, handler).code(),
            api::StatusCode::kInvalidArgument);
  EXPECT_TRUE(router_->addRoute("GET", "/x", executor_.get(), handler));
  EXPECT_EQ(router_->addRoute("GET", "/x", executor_.get(), handler).code(),
            api::StatusCode::kAlreadyExists);
  EXPECT_TRUE(router_->addRoute("GET", "/x", executor_.get(), handler, true));  // prefix: distinct
}

TEST_F(HttpServerTest, BodyOverTheLimitIs413) {
  HttpServerOptions options;
  options.maxBodyBytes = 1024;
  ASSERT_TRUE(router_->addRoute("POST", "/upload", executor_.get(),
                                [](const api::HttpRequest& request, api::HttpResponder respond) {
                                  respond(api::HttpResponse::text(
                                      200, std::to_string(request.body.size())));
                                }));
  startServer(options);
  auto small = httpRequest("POST", "127.0.0.1", server_->port(), "/upload", {},
                           std::string(1024, 'x'), kTimeout);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->body, "1024");

  RawConnection raw(server_->port());
  raw.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n");
  std::string reply = raw.readUntilClosed();
  // Answered from the head alone, before any of the body is read, as JSON (a 4xx: a retry
  // will not help, unlike the 503 some clients retry).
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
  EXPECT_NE(reply.find("Content-Type: application/json"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with(R"({"message":"request body exceeds 1024 bytes"})")) << reply;

  // A chunked body over the limit too.
  RawConnection chunked(server_->port());
  chunked.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  chunked.send("800\r\n" + std::string(2048, 'y') + "\r\n0\r\n\r\n");
  reply = chunked.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
  expectHealthy();
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::atomic<int> served{0};
  ASSERT_TRUE(router_->addRoute("GET", "/count", executor_.get(),
                                [&served](const api::HttpRequest&, api::HttpResponder respond) {
                                  respond(api::HttpResponse::text(200, std::to_string(++served)));
                                }));
  startServer();
  HttpClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server_->port(), kTimeout));
  for (int i = 1; i <= 5; ++i) {
    auto response = client.request({"GET", "/count", {}, ""}, kTimeout);
    ASSERT_TRUE(response) << response.status().toString();
    EXPECT_EQ(response->body, std::to_string(i));
    EXPECT_TRUE(response->keepAlive);
    EXPECT_TRUE(client.connected());
  }
  // Errors keep the connection too.
  auto missing = client.request({"GET", "/missing", {}, ""}, kTimeout);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.request({"GET", "/count", {}, ""}, kTimeout)->body, "6");
  EXPECT_EQ(server_->connectionsForTest(), 1u);
}

TEST_F(HttpServerTest, HeadResponsesHaveNoBody) {
  ASSERT_TRUE(router_->addRoute("HEAD", "/ping", executor_.get(),
                                [](const api::HttpRequest&, api::HttpResponder respond) {
                                  respond(api::HttpResponse::text(200, "pong"));
                                }));
  startServer();
  RawConnection raw(server_->port());
  raw.send("HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply = raw.readUntil("pong");
  // Two responses; only the GET one has a body.
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_NE(reply.find("Content-Length: 4\r\n\r\nHTTP/1.1 200 OK\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\npong")) << reply;
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  startServer();
  RawConnection raw(server_->port());
  raw.send(
      "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string reply = raw.readUntilClosed();
  auto first = reply.find("HTTP/1.1 200");
  auto second = reply.find("HTTP/1.1 404");
  auto third = reply.find("HTTP/1.1 200", first + 1);
  ASSERT_NE(first, std::string::npos) << reply;
  ASSERT_NE(second, std::string::npos) << reply;
  ASSERT_NE(third, std::string::npos) << reply;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST_F(HttpServerTest, HandlersMayAnswerFromAnotherThread) {
  std::mutex mutex;
  std::vector<std::thread> threads;
  ASSERT_TRUE(router_->addRoute("GET", "/later", executor_.get(),
                                [&](const api::HttpRequest&, api::HttpResponder respond) {
                                  std::lock_guard lock(mutex);
                                  threads.emplace_back([respond] {
                                    respond(api::HttpResponse::text(200, "from a thread"));
                                    // A second call is ignored.
                                    respond(api::HttpResponse::text(500, "twice"));
                                  });
                                }));
  startServer();
  HttpClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server_->port(), kTimeout));
  for (int i = 0; i < 3; ++i) {
    auto response = client.request({"GET", "/later", {}, ""}, kTimeout);
    EXPECT_TRUE(response) << response.status().toString();
    if (!response) break;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "from a thread");
  }
  std::lock_guard lock(mutex);
  for (auto& thread : threads) thread.join();
}

TEST_F(HttpServerTest, HandlerExceptionsBecome500) {
  ASSERT_TRUE(router_->addRoute(
      "GET", "/throw", executor_.get(),
      [](const api::HttpRequest&, api::HttpResponder) { throw std::runtime_error("boom"); }));
  startServer();
  auto response = get("/throw");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(response->body, R"({"message":"handler failed: boom"})");
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  startServer();
  constexpr int kClients = 16;
  constexpr int kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client;
      if (!client.connect("127.0.0.1", server_->port(), kTimeout)) return;
      for (int i = 0; i < kRequests; ++i) {
        // Half the clients use a fresh connection each time.
        if (c % 2 == 1 && !client.connected() &&
            !client.connect("127.0.0.1", server_->port(), kTimeout)) {
          return;
        }
        std::vector<std::pair<std::string, std::string>> headers;
        if (c % 2 == 1) headers.emplace_back("Connection", "close");
        auto response = client.request({"GET", "/ping", headers, ""}, kTimeout);
        if (response && response->status == 200 && response->body == "pong") ++ok;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

TEST_F(HttpServerTest, SurvivesRandomBytes) {
  startServer();
  std::mt19937 random(42);
  for (int round = 0; round < 5; ++round) {
    std::string garbage(512, '\0');
    for (auto& c : garbage) c = static_cast<char>(random());
    RawConnection raw(server_->port());
    raw.send(garbage);
    bool closed = false;
    std::string reply = raw.readUntilClosed(&closed);
    EXPECT_TRUE(closed);
    if (!reply.empty()) {
      EXPECT_TRUE(reply.starts_with("HTTP/1.1 4")) << reply;
    }
  }
  expectHealthy();
}

TEST_F(HttpServerTest, SurvivesAnUnfinishedRequestHead) {
  startServer();
  {
    RawConnection raw(server_->port());
    raw.send("GET /ping HTTP/1.1\r\nHost: x\r\n");
    raw.close();
  }
  expectHealthy();
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
}

TEST_F(HttpServerTest, EnormousHeaderIs431) {
  HttpServerOptions options;
  options.maxHeaderBytes = 8 * 1024;
  startServer(options);
  RawConnection raw(server_->port());
  raw.send("GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ");
  raw.send(std::string(16 * 1024, 'a'));
  raw.send("\r\n\r\n");
  std::string reply = raw.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply.substr(0, 200);
  expectHealthy();
}

TEST_F(HttpServerTest, InvalidMethodTokenIs400ThenClose) {
  startServer();
  RawConnection raw(server_->port());
  raw.send("G(E)T /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  std::string reply = raw.readUntilClosed(&closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  EXPECT_NE(reply.find("{\"message\":\"malformed request: "), std::string::npos) << reply;
  EXPECT_TRUE(closed);
  expectHealthy();
}

// RFC 9112 §6: a body framed in a way a proxy could read differently is refused and the
// connection closed, so nothing after the head can be taken for a second request.
TEST_F(HttpServerTest, AmbiguousBodyFramingIsRefusedAndNothingIsSmuggled) {
  startServer();
  struct Case {
    std::string head;
    std::string status;
  };
  const std::vector<Case> cases = {
      {"Transfer-Encoding: xchunked\r\n", "HTTP/1.1 400"},
      {"Transfer-Encoding: chunked, gzip\r\n", "HTTP/1.1 400"},
      {"Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1 501"},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1 501"},
      {"Transfer-Encoding: chunked, chunked\r\n", "HTTP/1.1 400"},
      {"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "HTTP/1.1 400"},
      {"Content-Length: 4\r\nContent-Length: 5\r\n", "HTTP/1.1 400"},
  };
  for (const auto& c : cases) {
    RawConnection raw(server_->port());
    // Whatever the server took the body to be, a second request follows it on the wire.
    raw.send("POST /ping HTTP/1.1\r\nHost: x\r\n" + c.head +
             "\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    bool closed = false;
    std::string reply = raw.readUntilClosed(&closed);
    EXPECT_TRUE(reply.starts_with(c.status)) << c.head << reply;
    EXPECT_NE(reply.find("{\"message\":"), std::string::npos) << c.head << reply;
    EXPECT_EQ(reply.find("pong"), std::string::npos) << c.head << reply;
    EXPECT_TRUE(closed) << c.head;
  }
  expectHealthy();
}

TEST_F(HttpServerTest, AChunkedBodyIsStillServed) {
  ASSERT_TRUE(router_->addRoute("POST", "/echo", executor_.get(),
                                [](const api::HttpRequest& request, api::HttpResponder respond) {
                                  respond(api::HttpResponse::text(200, request.body));
                                }));
  startServer();
  RawConnection raw(server_->port());
  raw.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n"
      "\r\n5\r\nhello\r\n0\r\n\r\n");
  std::string reply = raw.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\nhello")) << reply;
}

TEST_F(HttpServerTest, BadRequestTargetIs400) {
  startServer();
  RawConnection raw(server_->port());
  raw.send("GET * HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply = raw.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  expectHealthy();
}

TEST_F(HttpServerTest, RequestSplitAcrossTinyWrites) {
  startServer();
  RawConnection raw(server_->port());
  std::string request = "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (char c : request) ASSERT_TRUE(raw.send(std::string_view(&c, 1)));
  std::string reply = raw.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_NE(reply.find("pong"), std::string::npos);
  expectHealthy();
}

TEST_F(HttpServerTest, SilentClientIsClosedAfterTheHeaderTimeout) {
  HttpServerOptions options;
  options.headerTimeout = 200ms;
  startServer(options);
  RawConnection silent(server_->port());
  RawConnection slow(server_->port());
  slow.send("GET /ping HTTP/1.1\r\n");  // ... and never finishes the head
  bool closed = false;
  silent.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  closed = false;
  slow.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  expectHealthy();
}

TEST_F(HttpServerTest, ExpectContinueGetsA100First) {
  ASSERT_TRUE(router_->addRoute("PUT", "/put", executor_.get(),
                                [](const api::HttpRequest& request, api::HttpResponder respond) {
                                  respond(api::HttpResponse::text(200, request.body));
                                }));
  startServer();
  RawConnection raw(server_->port());
  raw.send("PUT /put HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  std::string interim = raw.readUntil("\r\n\r\n");
  EXPECT_TRUE(interim.starts_with("HTTP/1.1 100 Continue")) << interim;
  raw.send("hello");
  std::string reply = raw.readUntil("hello");
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
}

TEST_F(HttpServerTest, AHandlerThatNeverAnswersIsFreedWhenTheClientCloses) {
  std::mutex mutex;
  std::vector<api::HttpResponder> kept;
  std::promise<void> called;
  ASSERT_TRUE(router_->addRoute("GET", "/hang", executor_.get(),
                                [&](const api::HttpRequest&, api::HttpResponder respond) {
                                  std::lock_guard lock(mutex);
                                  kept.push_back(std::move(respond));
                                  called.set_value();
                                }));
  startServer();
  {
    RawConnection raw(server_->port());
    raw.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(called.get_future().wait_for(kTimeout), std::future_status::ready);
    EXPECT_EQ(server_->connectionsForTest(), 1u);
  }
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  // Answering now is harmless.
  std::lock_guard lock(mutex);
  kept.front()(api::HttpResponse::text(200, "too late"));
  expectHealthy();
}

TEST_F(HttpServerTest, ConnectionsBeyondTheCapGet503) {
  HttpServerOptions options;
  options.maxConnections = 2;
  startServer(options);
  RawConnection first(server_->port());
  RawConnection second(server_->port());
  ASSERT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 2; }));
  RawConnection third(server_->port());
  std::string reply = third.readUntilClosed();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 503")) << reply;
  first.close();
  ASSERT_TRUE(waitUntil([&] { return server_->connectionsForTest() <= 1; }));
  expectHealthy();
}

TEST_F(HttpServerTest, StopClosesIdleAndBusyConnections) {
  std::promise<void> called;
  api::HttpResponder kept;
  ASSERT_TRUE(router_->addRoute("GET", "/hang", executor_.get(),
                                [&](const api::HttpRequest&, api::HttpResponder respond) {
                                  kept = std::move(respond);
                                  called.set_value();
                                }));
  startServer();
  RawConnection idle(server_->port());
  RawConnection busy(server_->port());
  busy.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(called.get_future().wait_for(kTimeout), std::future_status::ready);
  uint16_t port = server_->port();
  server_->stop();
  EXPECT_EQ(server_->connectionsForTest(), 0u);
  bool closed = false;
  idle.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  closed = false;
  busy.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  executor_->call([&] {
    kept(api::HttpResponse::text(200, "after stop"));
    return 0;
  });
  auto refused = httpRequest("GET", "127.0.0.1", port, "/ping", {}, "", 2000ms);
  EXPECT_FALSE(refused);
  server_.reset();
}

TEST_F(HttpServerTest, ExecutorRouterRunsOnItsExecutorAndRemovesItsRoutes) {
  auto moduleExecutor = runtime_.makeExecutor();
  startServer();
  {
    ExecutorRouter http(router_, *moduleExecutor);
    ASSERT_TRUE(http.addRoute("GET", "/module/state",
                              [&](const api::HttpRequest&, api::HttpResponder respond) {
                                EXPECT_TRUE(moduleExecutor->runningInThisThread());
                                EXPECT_FALSE(executor_->runningInThisThread());
                                respond(api::HttpResponse::json(200, "{}"));
                              }));
    EXPECT_EQ(http.addRoute("GET", "/module/state", [](auto&, auto) {}).code(),
              api::StatusCode::kAlreadyExists);
    EXPECT_EQ(get("/module/state")->status, 200);
  }
  EXPECT_EQ(get("/module/state")->status, 404);
  moduleExecutor->drain();
}

TEST_F(HttpServerTest, CountsRequestsAndResponsesWhenGivenARegistry) {
  runtime::MetricsRegistry metrics(runtime_.io());
  HttpServerOptions options;
  options.metrics = &metrics;
  startServer(options);
  expectHealthy();
  EXPECT_EQ(get("/nope")->status, 404);
  auto snapshot = metrics.snapshotAndWait(kTimeout);
  EXPECT_EQ(snapshot.counters["http/requests"], 2u);
  EXPECT_EQ(snapshot.counters["http/responses_2xx"], 1u);
  EXPECT_EQ(snapshot.counters["http/responses_4xx"], 1u);
  EXPECT_EQ(snapshot.gauges.count("http/connections"), 1u);
  server_->stop();
  EXPECT_EQ(metrics.snapshotAndWait(kTimeout).gauges.count("http/connections"), 0u);
}

TEST_F(HttpServerTest, StreamingRouteSendsChunksThenCloses) {
  // The response can be complete before emplace_back returns: the mutex orders the joins.
  std::mutex mutex;
  std::vector<std::thread> threads;
  auto joinAll = [&] {
    std::lock_guard lock(mutex);
    for (auto& thread : threads) {
      if (thread.joinable()) thread.join();
    }
  };
  ASSERT_TRUE(router_->addStreamRoute(
      "POST", "/api/v1/scheduler", executor_.get(),
      [&](const api::HttpRequest&, std::shared_ptr<HttpStream> stream) {
        EXPECT_FALSE(stream->write("too early"));
        stream->start(200, "application/recordio", {{"Mesos-Stream-Id", "s-1"}});
        EXPECT_TRUE(stream->write("5\nhello"));
        // Later chunks come from another thread, as events would.
        std::lock_guard lock(mutex);
        threads.emplace_back([stream] {
          EXPECT_TRUE(stream->write("5\nworld"));
          EXPECT_TRUE(stream->write(""));  // skipped: an empty chunk would end the body
          stream->end();
          EXPECT_FALSE(stream->write("after end"));
        });
      }));
  startServer();
  RawConnection raw(server_->port());
  raw.send("POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
  bool closed = false;
  std::string reply = raw.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_NE(reply.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Mesos-Stream-Id: s-1\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Content-Type: application/recordio\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\n7\r\n5\nhello\r\n7\r\n5\nworld\r\n0\r\n\r\n")) << reply;
  joinAll();

  // Beast's parser (the client's) reads the same bytes as a complete chunked response.
  auto response =
      httpRequest("POST", "127.0.0.1", server_->port(), "/api/v1/scheduler", {}, "{}", kTimeout);
  EXPECT_TRUE(response) << response.status().toString();
  if (response) {
    EXPECT_EQ(response->body, "5\nhello5\nworld");
  }
  joinAll();
}

TEST_F(HttpServerTest, AStreamingRoutesWholeAnswerKeepsTheConnection) {
  // A scheduler call that is not SUBSCRIBE: the same streaming route answers 202 or an error
  // with respond(), and a keep-alive client sends its next call on the same connection.
  std::atomic<int> calls{0};
  ASSERT_TRUE(router_->addStreamRoute(
      "POST", "/api/v1/scheduler", executor_.get(),
      [&calls](const api::HttpRequest& request, std::shared_ptr<HttpStream> stream) {
        ++calls;
        if (request.body == "bad") {
          stream->respond(api::HttpResponse::error(400, "bad call"));
        } else {
          stream->respond(api::HttpResponse::json(202, ""));
        }
        EXPECT_FALSE(stream->open());
        stream->start(200, "text/plain");  // ignored: the stream was answered
        EXPECT_FALSE(stream->write("ignored"));
      }));
  startServer();
  HttpClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server_->port(), kTimeout));
  for (int i = 0; i < 3; ++i) {
    auto response = client.request({"POST", "/api/v1/scheduler", {}, "{}"}, kTimeout);
    ASSERT_TRUE(response) << response.status().toString();
    EXPECT_EQ(response->status, 202);
    EXPECT_EQ(response->body, "");
    EXPECT_TRUE(response->keepAlive);
    EXPECT_TRUE(client.connected());
  }
  auto refused = client.request({"POST", "/api/v1/scheduler", {}, "bad"}, kTimeout);
  ASSERT_TRUE(refused) << refused.status().toString();
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->body, R"({"message":"bad call"})");
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.request({"POST", "/api/v1/scheduler", {}, "{}"}, kTimeout)->status, 202);
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(server_->connectionsForTest(), 1u);
}

TEST_F(HttpServerTest, StreamNoticesTheClientGoingAway) {
  std::shared_ptr<HttpStream> kept;
  std::promise<void> started;
  std::promise<void> closedByClient;
  ASSERT_TRUE(
      router_->addStreamRoute("GET", "/events", executor_.get(),
                              [&](const api::HttpRequest&, std::shared_ptr<HttpStream> stream) {
                                stream->start(200, "text/plain");
                                stream->onClose([&] { closedByClient.set_value(); });
                                kept = std::move(stream);
                                started.set_value();
                              }));
  startServer();
  {
    RawConnection raw(server_->port());
    raw.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(started.get_future().wait_for(kTimeout), std::future_status::ready);
    EXPECT_NE(raw.readUntil("\r\n\r\n").find("HTTP/1.1 200"), std::string::npos);
  }
  ASSERT_EQ(closedByClient.get_future().wait_for(kTimeout), std::future_status::ready);
  executor_->call([&] {
    EXPECT_FALSE(kept->open());
    EXPECT_FALSE(kept->write("nobody listens"));
    kept.reset();
    return 0;
  });
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  expectHealthy();
}

TEST_F(HttpServerTest, DroppingAStreamBeforeStartAnswers500) {
  ASSERT_TRUE(router_->addStreamRoute("GET", "/drop", executor_.get(),
                                      [](const api::HttpRequest&, std::shared_ptr<HttpStream>) {}));
  startServer();
  auto response = get("/drop");
  ASSERT_TRUE(response) << response.status().toString();
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(response->body, R"({"message":"the handler dropped its response stream"})");
}

// GET /events: a stream started 200 text/plain and handed to the test through the future.
std::future<std::shared_ptr<HttpStream>> HttpServerTest::startWithEventsRoute(
    HttpServerOptions options) {
  auto opened = std::make_shared<std::promise<std::shared_ptr<HttpStream>>>();
  EXPECT_TRUE(router_->addStreamRoute(
      "GET", "/events", executor_.get(),
      [opened](const api::HttpRequest&, std::shared_ptr<HttpStream> stream) {
        stream->start(200, "text/plain");
        opened->set_value(std::move(stream));
      }));
  startServer(std::move(options));
  return opened->get_future();
}

TEST_F(HttpServerTest, AStreamWhoseClientStopsReadingIsClosedAtItsLimit) {
  runtime::MetricsRegistry metrics(runtime_.io());
  HttpServerOptions options;
  options.metrics = &metrics;
  options.maxStreamQueuedBytes = 256 * 1024;
  auto opened = startWithEventsRoute(options);
  RawConnection silent(server_->port());  // asks, then never reads a byte
  silent.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  std::shared_ptr<HttpStream> stream = opened.get();
  std::promise<void> closed;
  stream->onClose([&] { closed.set_value(); });

  // Written as fast as events would be, up to 256 MiB; the kernel's socket buffers take a few
  // MiB, the stream's queue its limit, and then the stream must be cut off.
  const std::string chunk(64 * 1024, 'e');
  size_t accepted = 0;
  while (accepted < 256u * 1024 * 1024 && stream->write(chunk)) accepted += chunk.size();
  EXPECT_LT(accepted, 32u * 1024 * 1024) << "the stream kept taking what nobody reads";
  ASSERT_EQ(closed.get_future().wait_for(kTimeout), std::future_status::ready);
  EXPECT_FALSE(stream->open());
  EXPECT_FALSE(stream->write("x"));
  EXPECT_EQ(metrics.snapshotAndWait(kTimeout).counters["http/streams_closed_slow"], 1u);
  stream.reset();
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  expectHealthy();
  server_->stop();  // before `metrics` goes: the server removes its gauge there
}

TEST_F(HttpServerTest, AStreamThatIsReadIsNotCutOff) {
  HttpServerOptions options;
  options.maxStreamQueuedBytes = 256 * 1024;
  auto opened = startWithEventsRoute(options);
  RawConnection reader(server_->port());
  reader.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  std::shared_ptr<HttpStream> stream = opened.get();
  ASSERT_NE(reader.readUntil("\r\n\r\n").find("HTTP/1.1 200"), std::string::npos);
  // Bursts of events, each within the limit, 4 MiB in all, read as they come.
  const std::string event(1000, 'e');
  for (int burst = 0; burst < 32; ++burst) {
    for (int i = 0; i < 128; ++i) ASSERT_TRUE(stream->write(event)) << burst << "/" << i;
    std::string marker = fmt::format("END{}|", burst);
    ASSERT_TRUE(stream->write(marker));
    ASSERT_NE(reader.readUntil(marker).find(marker), std::string::npos);
  }
  // One event larger than the whole limit (an OFFERS event of a large cluster) still goes out
  // when nothing else waits.
  std::promise<void> drained;
  stream->whenWritten([&] { drained.set_value(); });
  ASSERT_EQ(drained.get_future().wait_for(kTimeout), std::future_status::ready);
  ASSERT_TRUE(stream->write(std::string(1024 * 1024, 'o') + "BIG|"));
  ASSERT_NE(reader.readUntil("BIG|").find("BIG|"), std::string::npos);
  EXPECT_TRUE(stream->open());
  stream->end();
}

TEST(HttpServerStartTest, ReportsABadAddressAndAPortInUse) {
  runtime::Runtime runtime;
  runtime.start();
  auto router = std::make_shared<Router>();
  HttpServerOptions bad;
  bad.address = "not-an-address";
  HttpServer badServer(runtime, router, bad);
  EXPECT_EQ(badServer.start().code(), api::StatusCode::kInvalidArgument);

  HttpServer first(runtime, router);
  ASSERT_TRUE(first.start());
  EXPECT_EQ(first.start().code(), api::StatusCode::kFailedPrecondition);
  HttpServerOptions same;
  same.port = first.port();
  HttpServer second(runtime, router, same);
  EXPECT_EQ(second.start().code(), api::StatusCode::kUnavailable);
  first.stop();
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::net

// Streaming routes as a module sees them: api::HttpRouter::addStreamingRoute through the
// kernel's ExecutorRouter, over a real HttpServer on 127.0.0.1:0.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "tessera/api/http.h"
#include "tests/kernel/http_test_util.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;
using testing::waitUntil;

constexpr auto kTimeout = std::chrono::milliseconds(10000);

// A blocking client that keeps everything it read, so that markers arriving in one read, or
// split across two, are both found.
class StreamClient {
 public:
  explicit StreamClient(uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  void send(std::string_view bytes) {
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()));
  }

  // Reads until `marker` appears at or after `from` in what was read; true when it did (false
  // on close or the 10 s read timeout).
  bool readUntil(std::string_view marker, size_t from = 0) {
    while (seen_.find(marker, from) == std::string::npos) {
      if (!readSome()) return false;
    }
    return true;
  }

  // Reads until the server closes; true when it did (not a timeout).
  bool readUntilClosed() {
    while (readSome()) {
    }
    return closed_;
  }

  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  const std::string& seen() const { return seen_; }

 private:
  bool readSome() {
    char buffer[4096];
    ssize_t n = ::recv(socket_.native_handle(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      seen_.append(buffer, static_cast<size_t>(n));
      return true;
    }
    closed_ = n == 0 || errno == ECONNRESET;
    return false;
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string seen_;
  bool closed_ = false;
};

class ModuleStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    moduleExecutor_ = runtime_.makeExecutor();
    http_ = std::make_unique<ExecutorRouter>(router_, *moduleExecutor_);
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    if (moduleExecutor_) moduleExecutor_->drain();
    http_.reset();
    moduleExecutor_.reset();
    runtime_.stop();
  }

  void startServer(HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(runtime_, router_, options);
    ASSERT_TRUE(server_->start());
  }

  // A route GET `path` whose handler starts the stream with `begin` and hands it to the test.
  std::future<std::shared_ptr<api::HttpStreamWriter>> addRoute(
      std::string_view path, std::function<void(api::HttpStreamWriter&)> begin) {
    auto opened = std::make_shared<std::promise<std::shared_ptr<api::HttpStreamWriter>>>();
    EXPECT_TRUE(http_->addStreamingRoute(
        "GET", path,
        [this, opened, begin](const api::HttpRequest&,
                              std::shared_ptr<api::HttpStreamWriter> stream) {
          EXPECT_TRUE(moduleExecutor_->runningInThisThread());
          begin(*stream);
          opened->set_value(std::move(stream));
        }));
    return opened->get_future();
  }

  // Runs `fn` on the module's executor and waits for it, as a module's own code would run.
  template <typename Fn>
  auto onModule(Fn fn) {
    return moduleExecutor_->call(std::move(fn));
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> moduleExecutor_;
  std::shared_ptr<Router> router_ = std::make_shared<Router>();
  std::unique_ptr<ExecutorRouter> http_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ModuleStreamTest, ChunksReachTheClientAsTheyAreWritten) {
  auto opened = addRoute("/chunks", [](api::HttpStreamWriter& stream) {
    EXPECT_FALSE(stream.write("too early"));
    stream.start(200, "text/plain", {{"X-Stream", "1"}});
    EXPECT_TRUE(stream.write("first|"));
  });
  startServer();
  StreamClient client(server_->port());
  client.send("GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  auto stream = opened.get();
  // The first chunk arrives while the stream is still open, before anything else is written.
  ASSERT_TRUE(client.readUntil("6\r\nfirst|\r\n")) << client.seen();
  EXPECT_TRUE(client.seen().starts_with("HTTP/1.1 200 OK\r\n")) << client.seen();
  EXPECT_NE(client.seen().find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(client.seen().find("X-Stream: 1\r\n"), std::string::npos);

  std::promise<bool> drained;
  onModule([&] {
    EXPECT_TRUE(stream->write("second|"));
    stream->whenDrained([&] { drained.set_value(moduleExecutor_->runningInThisThread()); });
    return 0;
  });
  auto drainedFuture = drained.get_future();
  ASSERT_EQ(drainedFuture.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(drainedFuture.get()) << "whenDrained ran off the module's executor";
  ASSERT_TRUE(client.readUntil("7\r\nsecond|\r\n")) << client.seen();
  EXPECT_TRUE(stream->open());

  onModule([&] {
    stream->end();
    EXPECT_FALSE(stream->open());
    EXPECT_FALSE(stream->write("after end"));
    return 0;
  });
  EXPECT_TRUE(client.readUntilClosed());
  EXPECT_TRUE(client.seen().ends_with("7\r\nsecond|\r\n0\r\n\r\n")) << client.seen();
}

TEST_F(ModuleStreamTest, DroppingTheWriterEndsTheStream) {
  auto opened = addRoute("/drop", [](api::HttpStreamWriter& stream) {
    stream.start(200, "text/plain");
    stream.write("only|");
  });
  startServer();
  StreamClient client(server_->port());
  client.send("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  opened.get().reset();
  EXPECT_TRUE(client.readUntilClosed());
  EXPECT_TRUE(client.seen().ends_with("5\r\nonly|\r\n0\r\n\r\n")) << client.seen();
}

TEST(ServerSentEventTest, FramesFieldsAndEveryDataLine) {
  api::ServerSentEvent event;
  event.event = "status_update_event";
  event.id = "42";
  event.data = R"({"a":1})";
  EXPECT_EQ(event.format(), "event: status_update_event\nid: 42\ndata: {\"a\":1}\n\n");

  api::ServerSentEvent lines;
  lines.data = "one\ntwo\r\nthree\rfour";
  lines.retry = 3s;
  EXPECT_EQ(lines.format(), "retry: 3000\ndata: one\ndata: two\ndata: three\ndata: four\n\n");

  // A field that cannot hold a line break loses it instead of ending the event early.
  api::ServerSentEvent injected;
  injected.event = "a\nb";
  injected.id = "1\r\n";
  EXPECT_EQ(injected.format(), "event: ab\nid: 1\ndata: \n\n");
}

TEST_F(ModuleStreamTest, EventStreamSendsEventsAndKeepAliveComments) {
  auto opened = addRoute("/v2/events", [](api::HttpStreamWriter& stream) {
    stream.startEvents(50ms, {{"X-Events", "yes"}});
    api::ServerSentEvent event;
    event.event = "event_stream_attached";
    event.data = "{\"remoteAddress\":\"x\"}";
    EXPECT_TRUE(stream.writeEvent(event));
  });
  startServer();
  StreamClient client(server_->port());
  client.send("GET /v2/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  auto stream = opened.get();
  ASSERT_TRUE(client.readUntil("event: event_stream_attached\ndata: {\"remoteAddress\":\"x\"}\n\n"))
      << client.seen();
  EXPECT_NE(client.seen().find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(client.seen().find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_NE(client.seen().find("X-Events: yes\r\n"), std::string::npos);
  // With nothing written, the kernel sends comments on its own, one chunk each, repeatedly.
  size_t first = client.seen().find("\r\n: keep-alive\n\n\r\n");
  if (first == std::string::npos) {
    ASSERT_TRUE(client.readUntil("\r\n: keep-alive\n\n\r\n")) << client.seen();
    first = client.seen().find("\r\n: keep-alive\n\n\r\n");
  }
  ASSERT_TRUE(client.readUntil("\r\n: keep-alive\n\n\r\n", first + 1)) << client.seen();
  EXPECT_TRUE(stream->open());

  // Events still go out between the comments, each whole.
  onModule([&] {
    api::ServerSentEvent event;
    event.event = "deployment_success";
    event.id = "7";
    event.data = "{}";
    return stream->writeEvent(event);
  });
  ASSERT_TRUE(client.readUntil("event: deployment_success\nid: 7\ndata: {}\n\n")) << client.seen();
  onModule([&] {
    stream->end();
    return 0;
  });
  EXPECT_TRUE(client.readUntilClosed());
  EXPECT_TRUE(client.seen().ends_with("0\r\n\r\n"));
}

TEST_F(ModuleStreamTest, OnClosedRunsOnTheModuleExecutorWhenTheClientGoesAway) {
  std::promise<bool> closed;
  auto opened = addRoute("/watch", [&](api::HttpStreamWriter& stream) {
    stream.startEvents(10s);
    stream.onClosed([&] { closed.set_value(moduleExecutor_->runningInThisThread()); });
  });
  startServer();
  std::shared_ptr<api::HttpStreamWriter> stream;
  {
    StreamClient client(server_->port());
    client.send("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
    stream = opened.get();
    ASSERT_TRUE(client.readUntil("\r\n\r\n"));
    EXPECT_TRUE(stream->open());
  }  // the client goes away
  auto closedFuture = closed.get_future();
  ASSERT_EQ(closedFuture.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(closedFuture.get()) << "onClosed ran off the module's executor";
  onModule([&] {
    EXPECT_FALSE(stream->open());
    EXPECT_FALSE(stream->write("nobody listens"));
    return 0;
  });
  // Registered after the close, a notification still comes, on the executor.
  std::promise<bool> late;
  onModule([&] {
    stream->onClosed([&] { late.set_value(moduleExecutor_->runningInThisThread()); });
    return 0;
  });
  auto lateFuture = late.get_future();
  ASSERT_EQ(lateFuture.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(lateFuture.get());
  stream.reset();
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  EXPECT_EQ(http_->openStreamsForTest(), 0u);
}

TEST_F(ModuleStreamTest, AClientThatNeverReadsIsCutOffAtTheBound) {
  runtime::MetricsRegistry metrics(runtime_.io());
  HttpServerOptions options;
  options.metrics = &metrics;
  options.maxStreamQueuedBytes = 256 * 1024;
  std::promise<void> closed;
  auto opened = addRoute("/firehose", [&](api::HttpStreamWriter& stream) {
    stream.start(200, "application/octet-stream");
    stream.onClosed([&] { closed.set_value(); });
  });
  startServer(options);
  StreamClient silent(server_->port());  // asks, then never reads a byte
  silent.send("GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  auto stream = opened.get();

  // The module writes as fast as it can, up to 256 MiB; the socket buffers take a few MiB, the
  // queue its bound, and then the stream must be closed.
  size_t accepted = onModule([&] {
    const std::string chunk(64 * 1024, 'e');
    size_t total = 0;
    while (total < 256u * 1024 * 1024 && stream->write(chunk)) total += chunk.size();
    return total;
  });
  EXPECT_LT(accepted, 32u * 1024 * 1024) << "the stream kept taking what nobody reads";
  ASSERT_EQ(closed.get_future().wait_for(kTimeout), std::future_status::ready);
  EXPECT_FALSE(stream->open());
  EXPECT_EQ(metrics.snapshotAndWait(kTimeout).counters["http/streams_closed_slow"], 1u);
  stream.reset();
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  server_->stop();  // before `metrics` goes
}

TEST_F(ModuleStreamTest, StreamsOpenWhenTheModuleStopsAreEndedAndGoQuiet) {
  std::atomic<int> notifications{0};
  auto opened = addRoute("/events", [&](api::HttpStreamWriter& stream) {
    stream.startEvents(20ms);  // a keep-alive timer is pending while the module stops
    stream.write("data: hello\n\n");
    stream.onClosed([&] { ++notifications; });
    stream.whenDrained([] {});
  });
  // A handler that never starts its stream gets a 503 when the module stops.
  auto unstarted = addRoute("/pending", [](api::HttpStreamWriter&) {});
  startServer();
  StreamClient client(server_->port());
  client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  StreamClient pendingClient(server_->port());
  pendingClient.send("GET /pending HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(opened.wait_for(kTimeout), std::future_status::ready);
  ASSERT_EQ(unstarted.wait_for(kTimeout), std::future_status::ready);
  auto stream = opened.get();  // still held, as a module's leftover might be
  auto pending = unstarted.get();
  ASSERT_TRUE(client.readUntil("data: hello\n\n")) << client.seen();
  EXPECT_EQ(http_->openStreamsForTest(), 2u);  // the unstarted one is open too

  // As ModuleHost stops an instance: drain its executor, destroy its Context (the router),
  // then the executor.
  moduleExecutor_->drain();
  http_.reset();
  moduleExecutor_.reset();

  EXPECT_TRUE(client.readUntilClosed());
  EXPECT_TRUE(client.seen().ends_with("0\r\n\r\n")) << client.seen();
  EXPECT_TRUE(pendingClient.readUntilClosed());
  EXPECT_TRUE(pendingClient.seen().starts_with("HTTP/1.1 503")) << pendingClient.seen();
  EXPECT_FALSE(stream->open());
  EXPECT_FALSE(stream->write("data: late\n\n"));
  stream->onClosed([&] { ++notifications; });
  stream->whenDrained([&] { ++notifications; });
  // New requests find no route.
  auto response = httpRequest("GET", "127.0.0.1", server_->port(), "/events", {}, "", kTimeout);
  ASSERT_TRUE(response) << response.status().toString();
  EXPECT_EQ(response->status, 404);
  EXPECT_TRUE(waitUntil([&] { return server_->connectionsForTest() == 0; }));
  stream.reset();
  pending.reset();
  // The keep-alive timer's next tick (20 ms) finds its stream ended and does nothing; the
  // module's callbacks never ran after it stopped.
  server_->stop();
  EXPECT_EQ(notifications.load(), 0);
}

TEST_F(ModuleStreamTest, RoutersThatCannotStreamSayItAndDuplicatesAreRefused) {
  struct PlainRouter final : api::HttpRouter {
    api::Status addRoute(std::string_view, std::string_view, api::HttpHandler, bool) override {
      return api::Status::ok();
    }
  } plain;
  EXPECT_EQ(plain.addStreamingRoute("GET", "/x", [](auto&, auto) {}).code(),
            api::StatusCode::kUnimplemented);
  ASSERT_TRUE(http_->addStreamingRoute("GET", "/s", [](auto&, auto) {}));
  EXPECT_EQ(http_->addStreamingRoute("GET", "/s", [](auto&, auto) {}).code(),
            api::StatusCode::kAlreadyExists);
  EXPECT_EQ(http_->addRoute("GET", "/s", [](auto&, auto) {}).code(),
            api::StatusCode::kAlreadyExists);
  EXPECT_EQ(http_->addStreamingRoute("GET", "no-slash", [](auto&, auto) {}).code(),
            api::StatusCode::kInvalidArgument);
}

// The whole path as a daemon runs it: a module library loaded by ModuleManager, hosted by
// ModuleHost with the daemon's per-instance ExecutorRouter, stopped with its stream open.
TEST(ModuleStreamHostTest, AHostedModuleStreamsEventsAndItsStreamsEndWhenItStops) {
  runtime::Runtime runtime;
  runtime.start();
  runtime::MetricsRegistry metrics(runtime.io());
  state::MemoryStore store;
  auto router = std::make_shared<Router>();
  modules::ModuleManager manager;
  const auto library =
      std::filesystem::path(TESSERA_BINARY_DIR) / "tests" / "modules" / "libtest_stream_module.so";
  std::vector<modules::ManifestEntry> manifest;
  manifest.push_back(modules::ManifestEntry{
      library.string(),
      "org_tessera_test_stream",
      api::Parameters(std::vector<std::pair<std::string, std::string>>{{"keep_alive_ms", "30"}}),
      "test",
      {}});
  ASSERT_TRUE(manager.load(manifest));
  modules::HostServices services;
  services.runtime = &runtime;
  services.role = "test";
  services.state = &store;
  services.metricsFor = [&](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
    return std::make_unique<runtime::ScopedMetrics>(metrics, executor);
  };
  services.routerFor = [&](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
    return std::make_unique<ExecutorRouter>(router, executor);
  };
  modules::ModuleHost host(manager, std::move(services));
  ASSERT_TRUE(host.startAutomatic());
  HttpServer server(runtime, router);
  ASSERT_TRUE(server.start());
  auto request = [&](std::string_view method, std::string_view target, std::string body = "") {
    return httpRequest(method, "127.0.0.1", server.port(), target, {}, std::move(body), kTimeout);
  };

  StreamClient client(server.port());
  client.send("GET /test/stream/events HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.readUntil("event: attached\nid: 1\ndata: {\"stream\":1}\n\n"))
      << client.seen();
  ASSERT_TRUE(client.readUntil(": keep-alive\n\n")) << client.seen();
  auto broadcast = request("POST", "/test/stream/broadcast", "hello\nworld");
  ASSERT_TRUE(broadcast) << broadcast.status().toString();
  EXPECT_EQ(broadcast->body, R"({"streams":1})");
  ASSERT_TRUE(client.readUntil("event: message\ndata: hello\ndata: world\n\n")) << client.seen();

  {
    StreamClient leaving(server.port());
    leaving.send("GET /test/stream/events HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(leaving.readUntil("event: attached\nid: 2\n"));
  }
  EXPECT_TRUE(waitUntil([&] {
    auto stats = request("GET", "/test/stream/stats");
    return stats && stats->body == R"({"open":1,"closed":1})";
  })) << "the module never heard that its client left";

  // The module keeps its stream (held by its own onClosed, too) and does not end it: the
  // kernel does when the instance stops.
  host.stopAll();
  EXPECT_TRUE(client.readUntilClosed());
  EXPECT_TRUE(client.seen().ends_with("0\r\n\r\n")) << client.seen();
  auto gone = request("GET", "/test/stream/events");
  ASSERT_TRUE(gone) << gone.status().toString();
  EXPECT_EQ(gone->status, 404);
  EXPECT_TRUE(waitUntil([&] { return server.connectionsForTest() == 0; }));
  server.stop();
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::net

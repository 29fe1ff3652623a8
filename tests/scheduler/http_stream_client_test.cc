// HttpStreamClient against a real HttpServer on loopback: the body of a chunked response is
// delivered as it is written, not when it ends.

#include "kernel/net/http_stream_client.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "kernel/net/http_server.h"
#include "kernel/runtime/runtime.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;

// What the client reported, filled on the client's executor, read by the test.
struct Observed {
  std::mutex mutex;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<api::Status> closed;

  StreamHandlers handlers() {
    return StreamHandlers{[this](int s, auto h) {
                            std::lock_guard lock(mutex);
                            status = s;
                            headers = std::move(h);
                          },
                          [this](std::string data) {
                            std::lock_guard lock(mutex);
                            body += data;
                          },
                          [this](api::Status s) {
                            std::lock_guard lock(mutex);
                            closed = std::move(s);
                          }};
  }
  template <typename Fn>
  auto read(Fn fn) {
    std::lock_guard lock(mutex);
    return fn();
  }
};

TEST(HttpStreamClientTest, ReadsChunksAsTheyAreWritten) {
  runtime::Runtime runtime;
  runtime.start();
  auto serverExecutor = runtime.makeExecutor();
  auto router = std::make_shared<Router>();
  std::promise<std::shared_ptr<HttpStream>> opened;
  std::string received;
  ASSERT_TRUE(router
                  ->addStreamRoute(
                      "POST", "/stream", serverExecutor.get(),
                      [&](const api::HttpRequest& request, std::shared_ptr<HttpStream> stream) {
                        received = request.body;
                        stream->start(200, "text/plain", {{"X-Test", "yes"}});
                        stream->write("first;");
                        opened.set_value(stream);
                      })
                  .isOk());
  HttpServer server(runtime, router);
  ASSERT_TRUE(server.start().isOk());

  auto executor = runtime.makeExecutor();
  Observed observed;
  HttpStreamClient client(runtime, *executor);
  StreamRequest request;
  request.host = "127.0.0.1";
  request.port = server.port();
  request.target = "/stream";
  request.body = "hello";
  executor->call([&] {
    client.start(request, observed.handlers());
    return 0;
  });
  auto stream = opened.get_future().get();
  // The first chunk arrives while the response is still open.
  ASSERT_TRUE(testing::waitFor(
      [&] { return observed.read([&] { return observed.body; }) == "first;"; }, 10s));
  EXPECT_EQ(observed.read([&] { return observed.status; }), 200);
  EXPECT_FALSE(observed.read([&] { return observed.closed.has_value(); }));
  EXPECT_EQ(received, "hello");
  bool sawHeader = false;
  for (const auto& [k, v] : observed.read([&] { return observed.headers; })) {
    if (k == "X-Test" && v == "yes") sawHeader = true;
  }
  EXPECT_TRUE(sawHeader);

  stream->write("second;");
  ASSERT_TRUE(testing::waitFor(
      [&] { return observed.read([&] { return observed.body; }) == "first;second;"; }, 10s));
  stream->end();
  ASSERT_TRUE(testing::waitFor(
      [&] { return observed.read([&] { return observed.closed.has_value(); }); }, 10s));
  EXPECT_TRUE(observed.read([&] { return observed.closed->isOk(); }));

  executor->call([&] {
    client.cancel();
    return 0;
  });
  server.stop();
  runtime.stop();
}

TEST(HttpStreamClientTest, ConnectionRefusedIsUnavailable) {
  runtime::Runtime runtime;
  runtime.start();
  auto executor = runtime.makeExecutor();
  Observed observed;
  HttpStreamClient client(runtime, *executor);
  StreamRequest request;
  request.host = "127.0.0.1";
  request.port = testing::freePort();
  executor->call([&] {
    client.start(request, observed.handlers());
    return 0;
  });
  ASSERT_TRUE(testing::waitFor(
      [&] { return observed.read([&] { return observed.closed.has_value(); }); }, 10s));
  auto closed = observed.read([&] { return *observed.closed; });
  EXPECT_EQ(closed.code(), api::StatusCode::kUnavailable) << closed.toString();
  EXPECT_NE(closed.message().find("cannot connect to 127.0.0.1:"), std::string::npos)
      << closed.message();
  executor->call([&] {
    client.cancel();
    return 0;
  });
  runtime.stop();
}

TEST(HttpStreamClientTest, NoHeadInTimeIsDeadlineExceeded) {
  runtime::Runtime runtime;
  runtime.start();
  auto serverExecutor = runtime.makeExecutor();
  auto router = std::make_shared<Router>();
  std::vector<std::shared_ptr<HttpStream>> held;  // never answered
  ASSERT_TRUE(router
                  ->addStreamRoute("POST", "/silent", serverExecutor.get(),
                                   [&](const api::HttpRequest&, std::shared_ptr<HttpStream> s) {
                                     held.push_back(std::move(s));
                                   })
                  .isOk());
  HttpServer server(runtime, router);
  ASSERT_TRUE(server.start().isOk());
  auto executor = runtime.makeExecutor();
  Observed observed;
  HttpStreamClient client(runtime, *executor);
  StreamRequest request;
  request.host = "127.0.0.1";
  request.port = server.port();
  request.target = "/silent";
  request.headTimeout = 100ms;
  executor->call([&] {
    client.start(request, observed.handlers());
    return 0;
  });
  ASSERT_TRUE(testing::waitFor(
      [&] { return observed.read([&] { return observed.closed.has_value(); }); }, 10s));
  auto closed = observed.read([&] { return *observed.closed; });
  EXPECT_EQ(closed.code(), api::StatusCode::kDeadlineExceeded) << closed.toString();
  executor->call([&] {
    client.cancel();
    return 0;
  });
  serverExecutor->call([&] {
    held.clear();
    return 0;
  });
  server.stop();
  runtime.stop();
}

TEST(HttpStreamClientTest, CancelStopsHandlers) {
  runtime::Runtime runtime;
  runtime.start();
  auto serverExecutor = runtime.makeExecutor();
  auto router = std::make_shared<Router>();
  std::promise<std::shared_ptr<HttpStream>> opened;
  ASSERT_TRUE(router
                  ->addStreamRoute("POST", "/stream", serverExecutor.get(),
                                   [&](const api::HttpRequest&, std::shared_ptr<HttpStream> s) {
                                     s->start(200, "text/plain");
                                     s->write("x");
                                     opened.set_value(s);
                                   })
                  .isOk());
  HttpServer server(runtime, router);
  ASSERT_TRUE(server.start().isOk());
  auto executor = runtime.makeExecutor();
  Observed observed;
  auto client = std::make_unique<HttpStreamClient>(runtime, *executor);
  StreamRequest request;
  request.host = "127.0.0.1";
  request.port = server.port();
  request.target = "/stream";
  executor->call([&] {
    client->start(request, observed.handlers());
    return 0;
  });
  auto stream = opened.get_future().get();
  ASSERT_TRUE(
      testing::waitFor([&] { return observed.read([&] { return observed.body; }) == "x"; }, 10s));
  executor->call([&] {
    client.reset();  // cancels
    return 0;
  });
  // The server sees the connection go.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        stream->write("y");
        return !stream->open();
      },
      10s));
  executor->drain();
  EXPECT_FALSE(observed.read([&] { return observed.closed.has_value(); }));
  server.stop();
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::net

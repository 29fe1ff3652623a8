// ForwardingRouter's streaming routes on a follower, against a "leader" HttpServer on loopback:
// the leader's stream is relayed as it is written, ends when the leader's does, and goes when the
// client goes; a client slower than the leader is cut off at the follower's own bound; no leader
// known is a 503 and an unreachable one a 502.

#include "kernel/scheduler/leadership.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>

#include "kernel/net/http_server.h"
#include "kernel/runtime/runtime.h"
#include "tests/support/stream_reader.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::scheduler {
namespace {

using namespace std::chrono_literals;
constexpr auto kTimeout = 10s;

// A blocking loopback client for one request (tests/support/stream_reader.h).
using RawClient = tessera::testing::StreamReader;

const std::string kGetEvents = "GET /events?since=3 HTTP/1.1\r\nHost: x\r\n\r\n";

class ForwardingRouterStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    leaderExecutor_ = runtime_.makeExecutor();
    followerExecutor_ = runtime_.makeExecutor();
    leaderHttp_ = std::make_unique<net::ExecutorRouter>(leaderRouter_, *leaderExecutor_);
    ASSERT_TRUE(leaderHttp_->addStreamingRoute(
        "GET", "/events",
        [this](const api::HttpRequest& request, std::shared_ptr<api::HttpStreamWriter> stream) {
          query_ = request.query;
          forwardedBy_ = request.header(kForwardedByHeader).value_or("");
          stream->startEvents(0ms, {{"X-From", "leader"}});
          stream->write("event: hello\ndata: leader\n\n");
          stream->onClosed([this] { leaderClosed_.store(true); });
          opened_.set_value(std::move(stream));
        }));
    leaderServer_ = std::make_unique<net::HttpServer>(runtime_, leaderRouter_);
    ASSERT_TRUE(leaderServer_->start());
  }

  // The follower's router and server; `leader` is where it forwards (nullopt: none known).
  void startFollower(std::optional<std::string> leader, net::HttpServerOptions options = {}) {
    leadership_ = std::make_shared<Leadership>("127.0.0.1:1");
    leadership_->setLeader(std::move(leader));
    forwarding_ = std::make_unique<ForwardingRouter>(
        std::make_unique<net::ExecutorRouter>(followerRouter_, *followerExecutor_), leadership_,
        runtime_, *followerExecutor_);
    ASSERT_TRUE(forwarding_->addStreamingRoute(
        "GET", "/events",
        [](const api::HttpRequest&, std::shared_ptr<api::HttpStreamWriter> stream) {
          stream->startEvents(0ms);
          stream->write("event: hello\ndata: follower\n\n");
          stream->end();
        },
        false));
    followerServer_ = std::make_unique<net::HttpServer>(runtime_, followerRouter_, options);
    ASSERT_TRUE(followerServer_->start());
  }

  std::string leaderAddress() const { return fmt::format("127.0.0.1:{}", leaderServer_->port()); }

  // The leader's stream, once the follower's request reached it.
  std::shared_ptr<api::HttpStreamWriter> leaderStream() {
    auto future = opened_.get_future();
    if (future.wait_for(kTimeout) != std::future_status::ready) return nullptr;
    return future.get();
  }

  size_t forwards() {
    return followerExecutor_->call([this] { return forwarding_->forwardsForTest(); });
  }

  void TearDown() override {
    if (followerServer_) followerServer_->stop();
    leaderServer_->stop();
    if (forwarding_) {
      followerExecutor_->call([this] {
        forwarding_.reset();
        return 0;
      });
    }
    leaderExecutor_->call([this] {
      leaderHttp_.reset();
      return 0;
    });
    followerExecutor_->drain();
    leaderExecutor_->drain();
    runtime_.stop();
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> leaderExecutor_;
  std::unique_ptr<runtime::StrandExecutor> followerExecutor_;
  std::shared_ptr<net::Router> leaderRouter_ = std::make_shared<net::Router>();
  std::shared_ptr<net::Router> followerRouter_ = std::make_shared<net::Router>();
  std::unique_ptr<net::ExecutorRouter> leaderHttp_;
  std::unique_ptr<net::HttpServer> leaderServer_;
  std::shared_ptr<Leadership> leadership_;
  std::unique_ptr<ForwardingRouter> forwarding_;
  std::unique_ptr<net::HttpServer> followerServer_;
  std::promise<std::shared_ptr<api::HttpStreamWriter>> opened_;
  std::atomic<bool> leaderClosed_{false};
  std::string query_;
  std::string forwardedBy_;
};

TEST_F(ForwardingRouterStreamTest, RelaysTheLeadersEventsAsTheyComeAndEndsWithIt) {
  startFollower(leaderAddress());
  RawClient client(followerServer_->port(), kGetEvents);
  auto stream = leaderStream();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(client.readUntil("data: leader\n\n", kTimeout)) << client.seen();
  EXPECT_EQ(client.seen().rfind("HTTP/1.1 200", 0), 0u) << client.seen();
  EXPECT_NE(client.seen().find("X-Tessera-Leader: " + leaderAddress()), std::string::npos);
  EXPECT_NE(client.seen().find("text/event-stream"), std::string::npos);
  EXPECT_NE(client.seen().find("X-From: leader"), std::string::npos);
  EXPECT_EQ(query_, "since=3");
  EXPECT_EQ(forwardedBy_, "127.0.0.1:1");

  // Each event reaches the client while the stream is open, in order.
  for (int i = 1; i <= 3; ++i) {
    leaderExecutor_->call(
        [&] { return stream->write(fmt::format("id: {}\ndata: e{}\n\n", i, i)); });
    ASSERT_TRUE(client.readUntil(fmt::format("data: e{}\n\n", i), kTimeout)) << client.seen();
  }
  const std::string& seen = client.seen();
  EXPECT_LT(seen.find("data: e1"), seen.find("data: e2"));
  EXPECT_LT(seen.find("data: e2"), seen.find("data: e3"));

  // The leader ends its stream: the client's ends (the last chunk, then the close).
  leaderExecutor_->call([&] {
    stream->end();
    return 0;
  });
  EXPECT_TRUE(client.readUntilClosed(kTimeout));
  EXPECT_NE(client.seen().find("0\r\n\r\n"), std::string::npos);
  EXPECT_TRUE(testing::waitFor([&] { return forwards() == 0; }, kTimeout));
}

TEST_F(ForwardingRouterStreamTest, TheClientGoingClosesTheLeadersSide) {
  startFollower(leaderAddress());
  auto client = std::make_unique<RawClient>(followerServer_->port(), kGetEvents);
  auto stream = leaderStream();
  ASSERT_TRUE(stream);
  ASSERT_TRUE(client->readUntil("data: leader\n\n", kTimeout)) << client->seen();
  EXPECT_FALSE(leaderClosed_.load());
  client.reset();
  EXPECT_TRUE(testing::waitFor([&] { return leaderClosed_.load(); }, kTimeout))
      << "the leader still streams to a client that left";
  EXPECT_TRUE(testing::waitFor([&] { return forwards() == 0; }, kTimeout));
}

TEST_F(ForwardingRouterStreamTest, AClientSlowerThanTheLeaderIsCutOffAtTheFollowersBound) {
  net::HttpServerOptions options;
  options.maxStreamQueuedBytes = 64 * 1024;
  startFollower(leaderAddress(), options);
  RawClient silent(followerServer_->port(), kGetEvents);  // asks, then never reads
  auto stream = leaderStream();
  ASSERT_TRUE(stream);

  // The leader writes as fast as its own connection (to the follower) takes it: one 16 KiB
  // chunk at a time, the next once the last has gone. The follower must not buffer what its
  // client does not read: it closes the client's stream, then the leader's connection.
  auto written = std::make_shared<std::atomic<size_t>>(0);
  auto pump = std::make_shared<std::function<void()>>();
  *pump = [stream, written, weak = std::weak_ptr<std::function<void()>>(pump)] {
    if (written->load() > 512u * 1024 * 1024) return;
    if (!stream->write(std::string(16 * 1024, 'x'))) return;
    *written += 16 * 1024;
    stream->whenDrained([weak] {
      if (auto next = weak.lock()) (*next)();
    });
  };
  leaderExecutor_->call([&] {
    (*pump)();
    return 0;
  });
  EXPECT_TRUE(testing::waitFor([&] { return leaderClosed_.load(); }, 30s))
      << "the follower kept taking what its client does not read (" << written->load() << " bytes)";
  EXPECT_LT(written->load(), 64u * 1024 * 1024);
  EXPECT_TRUE(testing::waitFor([&] { return forwards() == 0; }, kTimeout));
}

TEST_F(ForwardingRouterStreamTest, NoLeaderKnownIs503AndAnUnreachableOneIs502) {
  startFollower(std::nullopt);
  {
    RawClient client(followerServer_->port(), kGetEvents);
    EXPECT_TRUE(client.readUntilClosed(kTimeout));
    EXPECT_EQ(client.seen().rfind("HTTP/1.1 503", 0), 0u) << client.seen();
    EXPECT_NE(client.seen().find("no leader is known"), std::string::npos) << client.seen();
  }
  leadership_->setLeader(fmt::format("127.0.0.1:{}", testing::freePort()));
  {
    RawClient client(followerServer_->port(), kGetEvents);
    EXPECT_TRUE(client.readUntilClosed(kTimeout));
    EXPECT_EQ(client.seen().rfind("HTTP/1.1 502", 0), 0u) << client.seen();
    EXPECT_NE(client.seen().find("cannot reach the leader"), std::string::npos) << client.seen();
  }
  // A request a follower forwarded is never forwarded again.
  leadership_->setLeader(leaderAddress());
  {
    RawClient client(followerServer_->port(),
                     "GET /events HTTP/1.1\r\nHost: x\r\nX-Tessera-Forwarded-By: a:1\r\n\r\n");
    EXPECT_TRUE(client.readUntilClosed(kTimeout));
    EXPECT_EQ(client.seen().rfind("HTTP/1.1 503", 0), 0u) << client.seen();
  }
  EXPECT_EQ(forwards(), 0u);
}

TEST_F(ForwardingRouterStreamTest, ALeaderServesItsOwnStream) {
  startFollower(leaderAddress());
  leadership_->setLeading(true);
  RawClient client(followerServer_->port(), kGetEvents);
  EXPECT_TRUE(client.readUntilClosed(kTimeout));
  EXPECT_NE(client.seen().find("data: follower\n\n"), std::string::npos) << client.seen();
  EXPECT_EQ(client.seen().find("X-Tessera-Leader"), std::string::npos) << client.seen();
}

}  // namespace
}  // namespace tessera::kernel::scheduler

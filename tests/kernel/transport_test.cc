#include "kernel/net/transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/v1/messages.pb.h"
#include "tests/kernel/http_test_util.h"
#include "tests/support/process_memory.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::waitUntil;

// Fast liveness and retry settings so a test sees a dead peer or a reconnect in well under a
// second; the assertions wait on conditions with generous deadlines, never on the clock.
TransportOptions fastTransport() {
  TransportOptions options;
  options.heartbeatInterval = 50ms;
  options.maxMissedHeartbeats = 3;
  options.maxMessageBytes = 1024 * 1024;
  return options;
}

TransportClientOptions fastClient() {
  TransportClientOptions options;
  options.initialBackoff = 10ms;
  options.maxBackoff = 100ms;
  options.connectTimeout = 2s;
  options.transport = fastTransport();
  return options;
}

// Collects what a side hears, thread-safely.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> messages;
  std::vector<api::Status> closes;
  std::atomic<int> connects{0};
  ConnectionPtr last;

  TransportHandlers handlers(
      std::function<void(const ConnectionPtr&, const std::string&)> onMessage = nullptr) {
    TransportHandlers h;
    h.onConnected = [this](const ConnectionPtr& c) {
      std::lock_guard lock(mutex);
      last = c;
      ++connects;
    };
    h.onMessage = [this, onMessage](const ConnectionPtr& c, std::string payload) {
      if (onMessage) onMessage(c, payload);
      std::lock_guard lock(mutex);
      messages.push_back(std::move(payload));
    };
    h.onClose = [this](const ConnectionPtr&, const api::Status& reason) {
      std::lock_guard lock(mutex);
      closes.push_back(reason);
    };
    return h;
  }
  size_t messageCount() {
    std::lock_guard lock(mutex);
    return messages.size();
  }
  size_t closeCount() {
    std::lock_guard lock(mutex);
    return closes.size();
  }
  api::Status lastClose() {
    std::lock_guard lock(mutex);
    return closes.empty() ? api::Status() : closes.back();
  }
};

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    serverExecutor_ = runtime_.makeExecutor();
    clientExecutor_ = runtime_.makeExecutor();
  }
  void TearDown() override { runtime_.stop(); }

  std::unique_ptr<TransportServer> startServer(Recorder& recorder, bool echo = true,
                                               uint16_t port = 0,
                                               TransportOptions options = fastTransport()) {
    TransportServerOptions serverOptions;
    serverOptions.port = port;
    serverOptions.transport = options;
    auto server = std::make_unique<TransportServer>(
        runtime_, *serverExecutor_,
        recorder.handlers(echo ? [](const ConnectionPtr& c,
                                    const std::string& p) { c->send(fmt::format("echo:{}", p)); }
                               : std::function<void(const ConnectionPtr&, const std::string&)>()),
        serverOptions);
    EXPECT_TRUE(server->start().isOk());
    return server;
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> serverExecutor_;
  std::unique_ptr<runtime::StrandExecutor> clientExecutor_;
};

TEST_F(TransportTest, RequestResponseRoundTrip) {
  Recorder serverSide, clientSide;
  auto server = startServer(serverSide);
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  EXPECT_FALSE(client.send("too early"));
  client.start();
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));
  ASSERT_TRUE(client.connection() && client.connection()->open());
  EXPECT_EQ(client.connection()->peer(), fmt::format("127.0.0.1:{}", server->port()));
  ASSERT_TRUE(client.send("ping?"));
  ASSERT_TRUE(client.send(std::string()));  // an empty message is a message, not a heartbeat
  ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() == 2; }));
  EXPECT_EQ(clientSide.messages[0], "echo:ping?");
  EXPECT_EQ(clientSide.messages[1], "echo:");
  EXPECT_EQ(server->connectionCount(), 1u);
}

TEST_F(TransportTest, TypedProtobufMessages) {
  std::promise<std::string> got;
  TransportHandlers serverHandlers;
  serverHandlers.onMessage = typedMessageHandler<tessera::v1::TaskID>(
      std::function<void(const ConnectionPtr&, tessera::v1::TaskID)>(
          [](const ConnectionPtr& c, tessera::v1::TaskID id) {
            id.set_value(id.value() + "-ack");
            c->send(id);
          }));
  TransportServer server(runtime_, *serverExecutor_, serverHandlers,
                         {.transport = fastTransport(), .admission = {}});
  ASSERT_TRUE(server.start().isOk());
  TransportHandlers clientHandlers;
  clientHandlers.onMessage = typedMessageHandler<tessera::v1::TaskID>(
      std::function<void(const ConnectionPtr&, tessera::v1::TaskID)>(
          [&](const ConnectionPtr&, tessera::v1::TaskID id) { got.set_value(id.value()); }));
  std::promise<void> connected;
  clientHandlers.onConnected = [&](const ConnectionPtr&) { connected.set_value(); };
  TransportClient client(runtime_, *clientExecutor_, "localhost", server.port(), clientHandlers,
                         fastClient());
  client.start();
  auto connectedFuture = connected.get_future();
  ASSERT_EQ(connectedFuture.wait_for(10s), std::future_status::ready);
  tessera::v1::TaskID id;
  id.set_value("task-1");
  ASSERT_TRUE(client.send(id));
  auto reply = got.get_future();
  ASSERT_EQ(reply.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(reply.get(), "task-1-ack");
}

TEST_F(TransportTest, ManyMessagesArriveInOrderPerSender) {
  Recorder serverSide, clientSide;
  auto server = startServer(serverSide, /*echo=*/false);
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return client.connection() != nullptr; }));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ASSERT_TRUE(client.send(fmt::format("{}:{}", t, i)));
      }
    });
  }
  for (auto& s : senders) s.join();
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == kThreads * kPerThread; }, 30s));
  std::vector<int> next(kThreads, 0);
  for (const auto& m : serverSide.messages) {
    int t = m[0] - '0';
    ASSERT_EQ(m, fmt::format("{}:{}", t, next[t])) << "out of order";
    ++next[t];
  }
}

TEST_F(TransportTest, ReconnectsAfterTheServerRestartsOnTheSamePort) {
  Recorder serverSide, clientSide;
  auto server = startServer(serverSide);
  uint16_t port = server->port();
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", port, clientSide.handlers(),
                         fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));

  server->stop();
  ASSERT_TRUE(waitUntil([&] { return clientSide.closeCount() == 1; }));
  EXPECT_EQ(clientSide.lastClose().code(), api::StatusCode::kUnavailable);
  EXPECT_FALSE(client.send("nobody there"));
  server.reset();

  Recorder serverSide2;
  auto restarted = startServer(serverSide2, true, port);
  ASSERT_EQ(restarted->port(), port);
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 2; }));
  ASSERT_TRUE(client.send("again"));
  ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() == 1; }));
  EXPECT_EQ(clientSide.messages[0], "echo:again");
}

TEST_F(TransportTest, KeepsRetryingWhileNothingListens) {
  // Find a free port, then leave it closed for a while.
  uint16_t port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  Recorder clientSide;
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", port, clientSide.handlers(),
                         fastClient());
  client.start();
  Recorder serverSide;
  auto server = startServer(serverSide, true, port);
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));
}

TEST_F(TransportTest, HeartbeatTimeoutDetectsASilentServer) {
  // A "server" that accepts and then never reads nor writes.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  Recorder clientSide;
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", silent.local_endpoint().port(),
                         clientSide.handlers(), fastClient());
  client.start();
  boost::asio::ip::tcp::socket accepted = silent.accept();
  ASSERT_TRUE(waitUntil([&] { return clientSide.closeCount() >= 1; }));
  // (It may be connected again by now: the listen backlog completes handshakes unaccepted.)
  std::lock_guard lock(clientSide.mutex);
  EXPECT_EQ(clientSide.closes[0].code(), api::StatusCode::kUnavailable);
  EXPECT_NE(clientSide.closes[0].message().find("no heartbeat"), std::string::npos)
      << clientSide.closes[0].toString();
}

TEST_F(TransportTest, APeerThatStopsReadingIsCutOffWhenTheQueueIsFull) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  Recorder clientSide;
  TransportClientOptions options = fastClient();
  options.transport.heartbeatInterval = 60s;  // only the queue limit may close it here
  options.transport.maxQueuedBytes = 1024 * 1024;
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", silent.local_endpoint().port(),
                         clientSide.handlers(), options);
  client.start();
  boost::asio::ip::tcp::socket accepted = silent.accept();
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));
  ConnectionPtr connection = client.connection();
  ASSERT_TRUE(connection);
  // Kernel buffers take a few megabytes first; keep sending until the queue overflows.
  const std::string chunk(64 * 1024, 'x');
  ASSERT_TRUE(waitUntil([&] {
    connection->send(chunk);
    return clientSide.closeCount() > 0;
  }));
  std::lock_guard lock(clientSide.mutex);
  EXPECT_EQ(clientSide.closes[0].code(), api::StatusCode::kResourceExhausted)
      << clientSide.closes[0].toString();
}

TEST_F(TransportTest, HeartbeatTimeoutDetectsASilentClient) {
  Recorder serverSide;
  auto server = startServer(serverSide);
  RawConnection raw(server->port());
  ASSERT_TRUE(waitUntil([&] { return serverSide.connects == 1; }));
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
  EXPECT_NE(serverSide.lastClose().message().find("no heartbeat"), std::string::npos);
  EXPECT_TRUE(waitUntil([&] { return server->connectionCount() == 0; }));
}

TEST_F(TransportTest, HeartbeatsKeepAnIdleConnectionOpen) {
  Recorder serverSide, clientSide;
  auto server = startServer(serverSide);
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));
  // Twenty heartbeat intervals later (three missed would close it), still the same connection.
  auto deadline = std::chrono::steady_clock::now() + 20 * fastTransport().heartbeatInterval;
  EXPECT_FALSE(waitUntil([&] { return clientSide.closeCount() > 0; },
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - std::chrono::steady_clock::now())));
  EXPECT_EQ(clientSide.connects, 1);
  ASSERT_TRUE(client.send("still here"));
  ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() == 1; }));
}

TEST_F(TransportTest, GarbageOnTheServerPortIsRefused) {
  Recorder serverSide;
  auto server = startServer(serverSide);
  std::vector<std::string> garbage = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",      // a huge length: over the maximum
      std::string("\x00\x00\x00\x00", 4),       // an empty frame
      std::string("\x00\x00\x00\x02\x07x", 6),  // an unknown frame kind
  };
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (auto& c : random) c = static_cast<char>(rng());
  random[0] = '\x7f';  // make sure its length is over the maximum
  garbage.push_back(random);
  for (const auto& bytes : garbage) {
    RawConnection raw(server->port());
    raw.send(bytes);
    bool closed = false;
    raw.readUntilClosed(&closed);
    EXPECT_TRUE(closed);
  }
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == garbage.size(); }));
  EXPECT_EQ(serverSide.closes[0].code(), api::StatusCode::kResourceExhausted);
  EXPECT_EQ(serverSide.closes[1].code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(serverSide.closes[2].code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(serverSide.messageCount(), 0u);

  // Still serving.
  Recorder clientSide;
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return client.send("ok"); }));
  ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() == 1; }));
}

TEST_F(TransportTest, OversizedMessagesAreRefused) {
  Recorder serverSide, clientSide;
  TransportOptions small = fastTransport();
  small.maxMessageBytes = 1000;
  auto server = startServer(serverSide, true, 0, small);
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 1; }));
  // The echo ("echo:" + 995 bytes) is exactly the maximum: it passes both ways.
  ASSERT_TRUE(client.send(std::string(995, 'a')));
  ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() == 1; }));
  ASSERT_TRUE(client.send(std::string(1001, 'a')));  // the client's own limit is larger
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
  EXPECT_EQ(serverSide.lastClose().code(), api::StatusCode::kResourceExhausted);
  EXPECT_EQ(serverSide.messageCount(), 1u);
  ASSERT_TRUE(waitUntil([&] { return clientSide.closeCount() == 1; }));

  // A sender refuses what is over its own maximum without sending anything.
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 2; }));
  ConnectionPtr c = client.connection();
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->send(std::string(fastTransport().maxMessageBytes + 1, 'a')));
  EXPECT_TRUE(c->open());
}

TEST_F(TransportTest, CloseFromEitherSide) {
  Recorder serverSide, clientSide;
  auto server = startServer(serverSide);
  TransportClient client(runtime_, *clientExecutor_, "127.0.0.1", server->port(),
                         clientSide.handlers(), fastClient());
  client.start();
  ASSERT_TRUE(waitUntil([&] { return serverSide.connects == 1; }));
  ConnectionPtr serverEnd;
  {
    std::lock_guard lock(serverSide.mutex);
    serverEnd = serverSide.last;
  }
  serverEnd->close();
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
  EXPECT_EQ(serverSide.lastClose().code(), api::StatusCode::kCancelled);
  EXPECT_FALSE(serverEnd->open());
  EXPECT_FALSE(serverEnd->send("late"));
  // The client notices and comes back.
  ASSERT_TRUE(waitUntil([&] { return clientSide.connects == 2 && serverSide.connects == 2; }));
}

TEST_F(TransportTest, StopWhileTrafficFlows) {
  for (int round = 0; round < 5; ++round) {
    Recorder serverSide, clientSide;
    auto server = startServer(serverSide);
    std::atomic<bool> stopped{false};
    std::atomic<int> lateCallbacks{0};
    TransportHandlers h = clientSide.handlers();
    auto inner = h.onMessage;
    h.onMessage = [&, inner](const ConnectionPtr& c, std::string p) {
      if (stopped) ++lateCallbacks;
      inner(c, std::move(p));
    };
    auto client = std::make_unique<TransportClient>(runtime_, *clientExecutor_, "127.0.0.1",
                                                    server->port(), h, fastClient());
    client->start();
    ASSERT_TRUE(waitUntil([&] { return client->connection() != nullptr; }));
    std::atomic<bool> done{false};
    std::vector<std::thread> senders;
    for (int t = 0; t < 3; ++t) {
      senders.emplace_back([&] {
        while (!done) client->send(std::string(100, 'x'));
      });
    }
    ASSERT_TRUE(waitUntil([&] { return clientSide.messageCount() > 100; }));
    if (round % 2 == 0) {
      server->stop();
      client->stop();
    } else {
      client->stop();
      server->stop();
    }
    stopped = true;
    EXPECT_FALSE(client->send("after stop"));
    done = true;
    for (auto& s : senders) s.join();
    clientExecutor_->drain();
    serverExecutor_->drain();
    EXPECT_EQ(lateCallbacks, 0);
    client.reset();
    server.reset();
  }
}

TEST_F(TransportTest, StopFromInsideACallback) {
  Recorder serverSide;
  auto server = startServer(serverSide);
  std::unique_ptr<TransportClient> client;
  std::promise<void> stoppedInCallback;
  TransportHandlers h;
  h.onConnected = [&](const ConnectionPtr&) {
    client->stop();
    stoppedInCallback.set_value();
  };
  client = std::make_unique<TransportClient>(runtime_, *clientExecutor_, "127.0.0.1",
                                             server->port(), h, fastClient());
  client->start();
  auto f = stoppedInCallback.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(client->connection(), nullptr);
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
}

TEST(TransportBackoffTest, DoublesUpToTheMaximumWithJitterBelow) {
  TransportClientOptions options;
  options.initialBackoff = 100ms;
  options.maxBackoff = 1000ms;
  options.jitter = 0.5;
  EXPECT_EQ(reconnectDelay(options, 0, 0.0), 100ms);
  EXPECT_EQ(reconnectDelay(options, 1, 0.0), 200ms);
  EXPECT_EQ(reconnectDelay(options, 2, 0.0), 400ms);
  EXPECT_EQ(reconnectDelay(options, 3, 0.0), 800ms);
  EXPECT_EQ(reconnectDelay(options, 4, 0.0), 1000ms);
  EXPECT_EQ(reconnectDelay(options, 1000, 0.0), 1000ms);  // no overflow
  EXPECT_EQ(reconnectDelay(options, 0, 1.0), 50ms);
  EXPECT_EQ(reconnectDelay(options, 10, 0.5), 750ms);
  options.jitter = 0;
  EXPECT_EQ(reconnectDelay(options, 2, 1.0), 400ms);
  options.jitter = 7;  // clamped to 1
  EXPECT_EQ(reconnectDelay(options, 2, 1.0), 0ms);
}

TEST_F(TransportTest, BadListenAddress) {
  Recorder r;
  TransportServerOptions badAddress;
  badAddress.address = "not-an-ip";
  TransportServer server(runtime_, *serverExecutor_, r.handlers(), badAddress);
  EXPECT_EQ(server.start().code(), api::StatusCode::kInvalidArgument);
  TransportServer ok(runtime_, *serverExecutor_, r.handlers());
  ASSERT_TRUE(ok.start().isOk());
  EXPECT_EQ(ok.start().code(), api::StatusCode::kFailedPrecondition);
  TransportServerOptions samePort;
  samePort.port = ok.port();
  TransportServer taken(runtime_, *serverExecutor_, r.handlers(), samePort);
  // SO_REUSEADDR does not let two listeners share a port.
  EXPECT_EQ(taken.start().code(), api::StatusCode::kUnavailable);
}

// --- bounds on what a peer can make the server hold (#20) -----------------------------------

using ::tessera::testing::residentBytes;

// A frame header announcing `length` bytes (kind byte included).
std::string frameHeader(uint32_t length) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(length >> 24);
  out[1] = static_cast<char>(length >> 16);
  out[2] = static_cast<char>(length >> 8);
  out[3] = static_cast<char>(length);
  return out;
}

// A whole message frame (kind 0) carrying `payload`.
std::string messageFrame(std::string_view payload) {
  return frameHeader(static_cast<uint32_t>(payload.size() + 1)) + '\0' + std::string(payload);
}

class TransportBoundsTest : public TransportTest {
 protected:
  // A server whose peers are never declared dead by heartbeats during a test: only the bound
  // under test closes connections.
  std::unique_ptr<TransportServer> startBounded(Recorder& recorder, AdmissionOptions admission,
                                                TransportOptions transport = quietTransport()) {
    TransportServerOptions options;
    options.transport = transport;
    options.admission = admission;
    auto server =
        std::make_unique<TransportServer>(runtime_, *serverExecutor_, recorder.handlers(), options);
    EXPECT_TRUE(server->start().isOk());
    return server;
  }
  static TransportOptions quietTransport() {
    TransportOptions options;
    options.heartbeatInterval = 60s;
    return options;
  }
};

TEST_F(TransportBoundsTest, StalledMaximumFramesDoNotReserveWhatTheyAnnounce) {
  Recorder serverSide;
  AdmissionOptions admission;
  admission.handshakeTimeout = 60s;
  auto server = startBounded(serverSide, admission);
  const size_t frameBytes = quietTransport().maxMessageBytes;
  constexpr int kStalled = 20;
  size_t before = residentBytes();
  ASSERT_GT(before, 0u);
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(server->port()));
    // The largest frame allowed, announced; its kind byte and a little of it sent; then silence.
    ASSERT_TRUE(stalled.back()->send(frameHeader(static_cast<uint32_t>(frameBytes + 1)) + '\0' +
                                     std::string(1000, 'x')));
  }
  ASSERT_TRUE(waitUntil([&] { return server->pendingConnectionCount() == kStalled; }));
  // Taking what the headers announce would add kStalled * 16 MiB; give it the time to try.
  EXPECT_FALSE(waitUntil([&] { return residentBytes() > before + kStalled * frameBytes / 4; }, 2s))
      << "grew by " << (residentBytes() - before) / 1024 << " KiB";
  // Each of them is still being read: one that completes its frame is delivered.
  ASSERT_TRUE(stalled[0]->send(std::string(frameBytes - 1000, 'y')));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 1; }));
  EXPECT_EQ(serverSide.messages[0].size(), frameBytes);
  EXPECT_TRUE(waitUntil(
      [&] { return server->pendingConnectionCount() == static_cast<size_t>(kStalled - 1); }));
}

TEST_F(TransportBoundsTest, ConnectionsBeyondThePendingLimitAreClosedAtAccept) {
  Recorder serverSide;
  AdmissionOptions admission;
  admission.maxPendingConnections = 3;
  admission.handshakeTimeout = 60s;
  auto server = startBounded(serverSide, admission);
  std::vector<std::unique_ptr<RawConnection>> strangers;
  for (int i = 0; i < 3; ++i) strangers.push_back(std::make_unique<RawConnection>(server->port()));
  ASSERT_TRUE(waitUntil([&] { return serverSide.connects == 3; }));
  EXPECT_EQ(server->pendingConnectionCount(), 3u);

  RawConnection extra(server->port());
  bool closed = false;
  EXPECT_EQ(extra.readUntilClosed(&closed), "");
  EXPECT_TRUE(closed) << "the connection over the limit was left open";
  EXPECT_EQ(serverSide.connects, 3) << "the owner heard of a refused connection";

  // A stranger that sends a first message is no longer pending, which makes room for another.
  ASSERT_TRUE(strangers[0]->send(messageFrame("register")));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 1; }));
  ASSERT_TRUE(waitUntil([&] { return server->pendingConnectionCount() == 2; }));
  RawConnection admitted(server->port());
  ASSERT_TRUE(waitUntil([&] { return serverSide.connects == 4; }));
  EXPECT_TRUE(waitUntil([&] {
    return server->pendingConnectionCount() == 3 && server->connectionCount() == 4;
  })) << server->pendingConnectionCount()
      << " pending of " << server->connectionCount();
}

TEST_F(TransportBoundsTest, AStalledPendingConnectionIsClosedAtTheHandshakeDeadline) {
  Recorder serverSide;
  AdmissionOptions admission;
  admission.handshakeTimeout = 300ms;
  auto server = startBounded(serverSide, admission);
  RawConnection registered(server->port());
  ASSERT_TRUE(registered.send(messageFrame("register")));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 1; }));
  RawConnection stalled(server->port());
  // A ping is not a first message; then a frame that never completes.
  ASSERT_TRUE(stalled.send(frameHeader(1) + '\1' + frameHeader(1000) + '\0' + "abc"));
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
  EXPECT_EQ(serverSide.lastClose().code(), api::StatusCode::kDeadlineExceeded)
      << serverSide.lastClose().toString();
  bool closed = false;
  stalled.readUntilClosed(&closed);
  EXPECT_TRUE(closed);
  // The connection that sent a message stays, however long it is silent afterwards. (The
  // server forgets the closed one on its own strand: wait for that, not for the close.)
  EXPECT_TRUE(waitUntil([&] {
    return server->connectionCount() == 1 && server->pendingConnectionCount() == 0;
  })) << server->pendingConnectionCount()
      << " pending of " << server->connectionCount();
  ASSERT_TRUE(registered.send(messageFrame("still here")));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 2; }));
}

TEST_F(TransportBoundsTest, PendingConnectionsShareABudgetOfUnfinishedFrames) {
  Recorder serverSide;
  AdmissionOptions admission;
  admission.handshakeTimeout = 60s;
  admission.maxPendingBytes = 256 * 1024;
  auto server = startBounded(serverSide, admission);
  RawConnection greedy(server->port());
  // One frame of 1 MiB from a stranger: past the budget before it completes.
  greedy.send(frameHeader(1024 * 1024 + 1) + '\0' + std::string(1024 * 1024, 'x'));
  ASSERT_TRUE(waitUntil([&] { return serverSide.closeCount() == 1; }));
  EXPECT_EQ(serverSide.lastClose().code(), api::StatusCode::kResourceExhausted)
      << serverSide.lastClose().toString();
  // Its share is given back: a stranger with a first message inside the budget gets through.
  RawConnection modest(server->port());
  ASSERT_TRUE(modest.send(messageFrame(std::string(200 * 1024, 'm'))));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 1; }));
  // Once it is no longer pending, the budget does not apply to it.
  ASSERT_TRUE(modest.send(messageFrame(std::string(1024 * 1024, 'n'))));
  ASSERT_TRUE(waitUntil([&] { return serverSide.messageCount() == 2; }));
}

TEST_F(TransportBoundsTest, ReadingPausesWhileTheOwnerIsBehindAndResumes) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> handled{0};
  TransportHandlers handlers;
  handlers.onMessage = [&, released](const ConnectionPtr&, std::string) {
    if (handled++ == 0) released.wait();  // the owner is stuck on the first message
  };
  TransportServerOptions options;
  options.transport = quietTransport();
  options.transport.maxMessageBytes = 64 * 1024;
  options.transport.maxBytesInFlight = 256 * 1024;
  TransportServer server(runtime_, *serverExecutor_, handlers, options);
  ASSERT_TRUE(server.start().isOk());
  RawConnection peer(server.port());
  std::string burst;
  for (int i = 0; i < 64; ++i) burst += messageFrame(std::string(60 * 1024, 'b'));
  // 3.75 MiB: more than the kernel buffers take while the server does not read, so the sender
  // blocks; finish the send on a thread.
  std::thread sender([&] { peer.send(burst); });
  ASSERT_TRUE(waitUntil([&] { return handled == 1; }));
  release.set_value();
  EXPECT_TRUE(waitUntil([&] { return handled == 64; }));
  sender.join();
  EXPECT_EQ(server.connectionCount(), 1u);
}

}  // namespace
}  // namespace tessera::kernel::net

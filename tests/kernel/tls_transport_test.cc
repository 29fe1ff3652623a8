#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "kernel/net/tls.h"
#include "kernel/net/transport.h"
#include "kernel/runtime/runtime.h"
#include "tests/kernel/http_test_util.h"
#include "tests/support/tls.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;
using testing::waitUntil;

std::shared_ptr<TlsContext> makeContext(const tessera::testing::TestPki& pki, bool verify) {
  TlsSettings s;
  s.enabled = true;
  s.certFile = pki.certFile();
  s.keyFile = pki.keyFile();
  s.caFile = pki.caFile();
  s.verifyCert = verify;
  auto created = TlsContext::create(s);
  EXPECT_TRUE(created) << created.status().toString();
  return created ? *created : nullptr;
}

struct Inbox {
  std::mutex mutex;
  std::vector<std::string> messages;
  size_t size() {
    std::lock_guard lock(mutex);
    return messages.size();
  }
};

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    serverExecutor_ = runtime_.makeExecutor();
    clientExecutor_ = runtime_.makeExecutor();
  }
  void TearDown() override { runtime_.stop(); }

  std::unique_ptr<TransportServer> startServer(std::shared_ptr<TlsContext> tls) {
    TransportHandlers handlers;
    handlers.onMessage = [](const ConnectionPtr& c, std::string payload) {
      c->send("echo:" + payload);
    };
    TransportServerOptions options;
    options.tls = std::move(tls);
    options.admission.handshakeTimeout = 5s;
    auto server = std::make_unique<TransportServer>(runtime_, *serverExecutor_, handlers, options);
    EXPECT_TRUE(server->start().isOk());
    return server;
  }

  std::unique_ptr<TransportClient> startClient(uint16_t port, std::shared_ptr<TlsContext> tls,
                                               Inbox& inbox) {
    TransportHandlers handlers;
    handlers.onMessage = [&inbox](const ConnectionPtr&, std::string payload) {
      std::lock_guard lock(inbox.mutex);
      inbox.messages.push_back(std::move(payload));
    };
    TransportClientOptions options;
    options.initialBackoff = 10ms;
    options.maxBackoff = 100ms;
    options.connectTimeout = 2s;
    options.tls = std::move(tls);
    auto client = std::make_unique<TransportClient>(runtime_, *clientExecutor_, "127.0.0.1", port,
                                                    handlers, options);
    client->start();
    return client;
  }

  tessera::testing::TestPki pki_;
  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> serverExecutor_;
  std::unique_ptr<runtime::StrandExecutor> clientExecutor_;
};

TEST_F(TlsTransportTest, MessagesFlowOverTls) {
  auto server = startServer(makeContext(pki_, true));
  Inbox inbox;
  auto client = startClient(server->port(), makeContext(pki_, true), inbox);
  ASSERT_TRUE(waitUntil([&] { return client->connection() && client->connection()->open(); }));
  ASSERT_TRUE(client->send("hello"));
  ASSERT_TRUE(waitUntil([&] { return inbox.size() == 1; }));
  EXPECT_EQ(inbox.messages[0], "echo:hello");
  client->stop();
  server->stop();
}

TEST_F(TlsTransportTest, APlainClientNeverConnectsToATlsServer) {
  auto server = startServer(makeContext(pki_, false));
  Inbox inbox;
  auto client = startClient(server->port(), nullptr, inbox);
  // The plain client's frame is not a TLS handshake: the server closes it without a message.
  ASSERT_TRUE(waitUntil([&] { return client->connection() != nullptr; }));
  client->send("hello");
  EXPECT_FALSE(waitUntil([&] { return inbox.size() > 0; }, 1s));
  EXPECT_EQ(server->connectionCount(), 0u);
  client->stop();
  server->stop();
}

}  // namespace
}  // namespace tessera::kernel::net

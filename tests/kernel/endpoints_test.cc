#include "kernel/http/endpoints.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <atomic>

#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"

namespace tessera::kernel::http {
namespace {

using namespace std::chrono_literals;

constexpr auto kTimeout = std::chrono::milliseconds(10000);

class EndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    executor_ = runtime_.makeExecutor();
    SharedEndpoints endpoints;
    endpoints.version = VersionInfo{"0.1.0", "2026-11-22 01:00:00", 1795309200, "builder", "abc123",
                                    "main",  std::nullopt};
    endpoints.flags = [] {
      return std::map<std::string, std::string>{{"port", "5050"}, {"zk", "zk://***@host/x"}};
    };
    endpoints.metrics = &metrics_;
    endpoints.defaultSnapshotTimeout = 2s;
    ASSERT_TRUE(registerSharedEndpoints(*router_, *executor_, std::move(endpoints)));
    net::HttpServerOptions options;
    options.metrics = &metrics_;
    server_ = std::make_unique<net::HttpServer>(runtime_, router_, options);
    ASSERT_TRUE(server_->start());
  }

  void TearDown() override {
    server_->stop();
    executor_->drain();
    runtime_.stop();
  }

  net::ClientResponse get(std::string_view target) {
    auto response = net::httpRequest("GET", "127.0.0.1", server_->port(), target, {}, "", kTimeout);
    EXPECT_TRUE(response) << response.status().toString();
    return response ? *response : net::ClientResponse{};
  }

  static Poco::JSON::Object::Ptr parse(const std::string& body) {
    Poco::JSON::Parser parser;
    return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
  }

  runtime::Runtime runtime_;
  runtime::MetricsRegistry metrics_{runtime_.io()};
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::shared_ptr<net::Router> router_ = std::make_shared<net::Router>();
  std::unique_ptr<net::HttpServer> server_;
};

TEST_F(EndpointsTest, HealthIsAnEmpty200) {
  auto response = get("/health");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "");
}

TEST_F(EndpointsTest, HealthIs503WhileAReachableGaugeReadsZero) {
  auto gaugeExecutor = runtime_.makeExecutor();
  {
    std::atomic<double> reachable = 0;
    runtime::ScopedMetrics module(metrics_, *gaugeExecutor);
    module.gauge("containerizer/docker/daemon_reachable", [&] { return reachable.load(); });
    module.gauge("containerizer/docker/running", [] { return 0.0; });  // not a health gauge
    auto down = get("/health");
    EXPECT_EQ(down.status, 503);
    EXPECT_EQ(parse(down.body)->getValue<std::string>("message"),
              "unreachable: 'containerizer/docker/daemon_reachable' is 0");
    reachable = 1;
    auto up = get("/health");
    EXPECT_EQ(up.status, 200);
    EXPECT_EQ(up.body, "");
  }
  gaugeExecutor->drain();
}

TEST_F(EndpointsTest, VersionHasMesosFields) {
  auto response = get("/version");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "application/json");
  auto object = parse(response.body);
  EXPECT_EQ(object->getValue<std::string>("version"), "0.1.0");
  EXPECT_EQ(object->getValue<std::string>("build_date"), "2026-11-22 01:00:00");
  EXPECT_EQ(object->getValue<double>("build_time"), 1795309200);
  EXPECT_EQ(object->getValue<std::string>("build_user"), "builder");
  EXPECT_EQ(object->getValue<std::string>("git_sha"), "abc123");
  EXPECT_EQ(object->getValue<std::string>("git_branch"), "main");
  EXPECT_FALSE(object->has("git_tag"));
}

TEST_F(EndpointsTest, FlagsAreNestedUnderFlags) {
  auto response = get("/flags");
  EXPECT_EQ(response.status, 200);
  auto flags = parse(response.body)->getObject("flags");
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->getValue<std::string>("port"), "5050");
  EXPECT_EQ(flags->getValue<std::string>("zk"), "zk://***@host/x");
}

TEST_F(EndpointsTest, MetricsSnapshotIsFlatJson) {
  auto gaugeExecutor = runtime_.makeExecutor();
  {
    runtime::ScopedMetrics module(metrics_, *gaugeExecutor);
    module.gauge("master/uptime_secs", [] { return 12.5; });
    module.counter("master/tasks_finished").increment(3);
    get("/health");
    auto response = get("/metrics/snapshot");
    EXPECT_EQ(response.status, 200);
    auto object = parse(response.body);
    EXPECT_EQ(object->getValue<double>("master/uptime_secs"), 12.5);
    EXPECT_EQ(object->getValue<int>("master/tasks_finished"), 3);
    EXPECT_GE(object->getValue<int>("http/requests"), 2);
    EXPECT_GE(object->getValue<int>("http/responses_2xx"), 1);
    EXPECT_GE(object->getValue<int>("http/connections"), 1);  // earlier ones may still close

    EXPECT_EQ(get("/metrics/snapshot?timeout=5secs").status, 200);
    EXPECT_EQ(get("/metrics/snapshot?timeout=1.5mins").status, 200);
    auto bad = get("/metrics/snapshot?timeout=soon");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("invalid timeout 'soon'"), std::string::npos) << bad.body;
  }
  gaugeExecutor->drain();
}

TEST_F(EndpointsTest, MetricsSnapshotHonoursTheTimeout) {
  auto blocked = runtime_.makeExecutor();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  blocked->post([released] { released.wait(); });
  metrics_.gauge("stuck/value", blocked.get(), [] { return 1.0; });
  auto response = get("/metrics/snapshot?timeout=50ms");
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(parse(response.body)->has("stuck/value"));
  EXPECT_TRUE(parse(response.body)->has("http/requests"));
  metrics_.removeGauge("stuck/value");
  release.set_value();
  blocked->drain();
}

TEST_F(EndpointsTest, MetricsIsPrometheusText) {
  metrics_.counter("master/tasks_finished").increment();
  auto response = get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response.body.find("# TYPE tessera_master_tasks_finished counter\n"
                               "tessera_master_tasks_finished 1\n"),
            std::string::npos)
      << response.body;
}

TEST_F(EndpointsTest, RegisteringTwiceFailsAndLeavesTheFirstInPlace) {
  SharedEndpoints again;
  again.metrics = &metrics_;
  EXPECT_EQ(registerSharedEndpoints(*router_, *executor_, again).code(),
            api::StatusCode::kAlreadyExists);
  EXPECT_EQ(get("/version").status, 200);

  net::Router fresh;
  EXPECT_EQ(registerSharedEndpoints(fresh, *executor_, SharedEndpoints{}).code(),
            api::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::kernel::http

// The Marathon app model: Marathon 1.x's defaults, validation (422 details with the failing
// path), partial updates, ids and timestamps.
#include "modules/framework_marathon/app.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::modules::marathon {
namespace {

using ::testing::HasSubstr;

const Clock::time_point kNow = Clock::time_point(std::chrono::milliseconds(1796617445123));

App parsed(std::string_view json) {
  auto result = parseApp(json, kNow);
  EXPECT_TRUE(std::holds_alternative<App>(result))
      << (std::holds_alternative<AppError>(result) ? std::get<AppError>(result).toJson() : "");
  return std::holds_alternative<App>(result) ? std::get<App>(result) : App{};
}

AppError refused(std::string_view json) {
  auto result = parseApp(json, kNow);
  EXPECT_TRUE(std::holds_alternative<AppError>(result)) << json;
  return std::holds_alternative<AppError>(result) ? std::get<AppError>(result) : AppError{};
}

bool hasPath(const AppError& error, std::string_view path) {
  for (const auto& violation : error.details) {
    if (violation.path == path) return true;
  }
  return false;
}

TEST(MarathonAppTest, DefaultsAreMarathons) {
  App app = parsed(R"({"id": "web", "cmd": "sleep 100"})");
  EXPECT_EQ(app.id, "/web");
  EXPECT_EQ(app.cpus, 1.0);
  EXPECT_EQ(app.mem, 128.0);
  EXPECT_EQ(app.disk, 0.0);
  EXPECT_EQ(app.instances, 1);
  EXPECT_EQ(app.backoffSeconds, 1.0);
  EXPECT_EQ(app.backoffFactor, 1.15);
  EXPECT_EQ(app.upgradeStrategy.minimumHealthCapacity, 1.0);
  EXPECT_EQ(app.upgradeStrategy.maximumOverCapacity, 1.0);
  EXPECT_EQ(app.killSelection, "YOUNGEST_FIRST");
  ASSERT_EQ(app.portDefinitions.size(), 1u);
  EXPECT_EQ(app.portDefinitions[0].port, 0);
  EXPECT_EQ(app.version, kNow);
}

TEST(MarathonAppTest, ReadsAFullDefinition) {
  App app = parsed(R"({
    "id": "/prod/web/api", "cmd": "python -m http.server $PORT0", "cpus": 0.5, "mem": 64,
    "instances": 3, "env": {"A": "1"}, "labels": {"team": "x"},
    "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"]],
    "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
      "portMappings": [{"containerPort": 80, "hostPort": 0}]}},
    "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0,
      "gracePeriodSeconds": 5}],
    "uris": ["http://x/a.tgz"], "unreachableStrategy": "disabled",
    "tasksRunning": 7, "versionInfo": {"lastScalingAt": "x"}})");
  EXPECT_EQ(app.id, "/prod/web/api");
  EXPECT_EQ(app.cpus, 0.5);
  EXPECT_EQ(app.instances, 3);
  EXPECT_EQ(app.env.at("A"), "1");
  ASSERT_EQ(app.constraints.size(), 2u);
  EXPECT_EQ(app.constraints[1].value, "3");
  ASSERT_TRUE(app.container && app.container->docker);
  EXPECT_EQ(app.container->docker->network, "BRIDGE");
  EXPECT_EQ(app.portCount(), 1u);
  ASSERT_EQ(app.healthChecks.size(), 1u);
  EXPECT_EQ(app.healthChecks[0].protocol, "MESOS_HTTP") << "kept as given, as Marathon does";
  EXPECT_EQ(app.healthChecks[0].gracePeriodSeconds, 5);
  EXPECT_EQ(app.healthChecks[0].intervalSeconds, 60);
  ASSERT_EQ(app.fetch.size(), 1u);
  EXPECT_TRUE(app.fetch[0].extract);
  EXPECT_TRUE(app.unreachableStrategy.disabled);
}

TEST(MarathonAppTest, InvalidJsonIs400) {
  AppError error = refused(R"({"id": "x", )");
  EXPECT_EQ(error.status, 400);
  EXPECT_THAT(error.toJson(), HasSubstr(R"("message":"Invalid JSON")"));
}

TEST(MarathonAppTest, ValidationFailuresAre422WithThePath) {
  AppError error = refused(R"({"id": "x", "cmd": "c", "cpus": -1, "instances": -2,
    "upgradeStrategy": {"minimumHealthCapacity": 1.5}})");
  EXPECT_EQ(error.status, 422);
  EXPECT_EQ(error.message, "Object is not valid");
  EXPECT_TRUE(hasPath(error, "/cpus"));
  EXPECT_TRUE(hasPath(error, "/instances"));
  EXPECT_TRUE(hasPath(error, "/upgradeStrategy/minimumHealthCapacity"));
  EXPECT_THAT(error.toJson(),
              HasSubstr(R"("path":"/cpus","errors":["got -1.0, expected 0.0 or more"])"));

  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "cmd": "c", "mem": "lots"})"), "/mem"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "Upper", "cmd": "c"})"), "/id"));
  EXPECT_TRUE(hasPath(refused(R"({"cmd": "c"})"), "/id"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "x"})"), "/"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "cmd": "c", "args": ["a"]})"), "/"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "container": {"type": "DOCKER", "docker": {}}})"),
                      "/container/docker/image"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "cmd": "c", "constraints": [["hostname", "NOPE"]]})"),
                      "/constraints(0)"));
  EXPECT_TRUE(hasPath(
      refused(R"({"id": "x", "cmd": "c", "healthChecks": [{"protocol": "TCP", "portIndex": 3}]})"),
      "/healthChecks(0)"));
}

TEST(MarathonAppTest, HealthCheckProtocolsComeBackAsGiven) {
  App app = parsed(R"({"id": "/hc", "cmd": "x", "portDefinitions": [{"port": 0}, {"port": 0}],
    "healthChecks": [
      {"protocol": "HTTP", "path": "/a", "ignoreHttp1xx": true},
      {"protocol": "HTTPS", "portIndex": 1},
      {"protocol": "TCP"},
      {"protocol": "COMMAND", "command": {"value": "true"}},
      {"protocol": "MESOS_HTTPS", "path": "/b", "ignoreHttp1xx": true, "delaySeconds": 2}]})");
  ASSERT_EQ(app.healthChecks.size(), 5u);
  const std::string json = appToJson(app);
  for (const char* protocol : {"HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTPS"}) {
    EXPECT_THAT(json, HasSubstr(fmt::format(R"("protocol":"{}")", protocol)));
  }
  // ignoreHttp1xx is Marathon's own HTTP checks' (Mesos's have none).
  EXPECT_THAT(json, HasSubstr(R"("path":"/a","portIndex":0,)"));
  EXPECT_THAT(json, HasSubstr(R"("path":"/b","portIndex":0,"gracePeriodSeconds":300,)"
                              R"("intervalSeconds":60,"timeoutSeconds":20,)"
                              R"("maxConsecutiveFailures":3,"delaySeconds":2})"));
  EXPECT_TRUE(app.healthChecks[0].ignoreHttp1xx);
  EXPECT_FALSE(app.healthChecks[4].ignoreHttp1xx);
  App again = parsed(json);
  EXPECT_FALSE(app.configDiffers(again));
  ASSERT_EQ(again.healthChecks.size(), 5u);
  EXPECT_EQ(again.healthChecks[4].protocol, "MESOS_HTTPS");
  // The agent gets the first Mesos-level one (COMMAND is Mesos's too).
  ASSERT_NE(app.agentHealthCheck(), nullptr);
  EXPECT_EQ(app.agentHealthCheck()->protocol, "COMMAND");

  for (const char* protocol : {"MESOS_TCP", "MESOS_HTTP"}) {
    App one = parsed(fmt::format(R"({{"id": "/m", "cmd": "x",
      "healthChecks": [{{"protocol": "{}"}}]}})",
                                 protocol));
    EXPECT_EQ(one.healthChecks[0].protocol, protocol);
    EXPECT_THAT(appToJson(one), HasSubstr(fmt::format(R"("protocol":"{}")", protocol)));
  }
}

TEST(MarathonAppTest, HealthCheckProtocolsAreMarathons) {
  // No MESOS_COMMAND in Marathon (COMMAND is already run by Mesos).
  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "cmd": "c",
    "healthChecks": [{"protocol": "MESOS_COMMAND", "command": {"value": "true"}}]})"),
                      "/healthChecks(0)/protocol"));
  EXPECT_TRUE(hasPath(refused(R"({"id": "x", "cmd": "c",
    "healthChecks": [{"protocol": "MESOS_UDP"}]})"),
                      "/healthChecks(0)/protocol"));
  // One Mesos-level check at most (COMMAND ones not counted, as Marathon).
  AppError two = refused(R"({"id": "x", "cmd": "c",
    "healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP"}]})");
  EXPECT_TRUE(hasPath(two, "/"));
  EXPECT_THAT(two.toJson(), HasSubstr("AppDefinition can contain at most one Mesos health check"));
  parsed(R"({"id": "x", "cmd": "c", "healthChecks": [{"protocol": "MESOS_HTTP"},
    {"protocol": "COMMAND", "command": {"value": "true"}}, {"protocol": "HTTP"}]})");
}

TEST(MarathonAppTest, UpdatesArePartialAndIgnoreReadOnlyFields) {
  App current = parsed(R"({"id": "/web", "cmd": "sleep 100", "mem": 64, "instances": 2})");
  const auto later = kNow + std::chrono::seconds(5);
  auto scaled = updateApp(current, R"({"instances": 5, "tasksRunning": 2, "id": "/other"})", later);
  ASSERT_TRUE(std::holds_alternative<App>(scaled));
  const App& s = std::get<App>(scaled);
  EXPECT_EQ(s.id, "/web");
  EXPECT_EQ(s.instances, 5);
  EXPECT_EQ(s.mem, 64.0);
  EXPECT_EQ(s.version, later);
  EXPECT_EQ(s.lastScalingAt, later);
  EXPECT_EQ(s.lastConfigChangeAt, kNow);
  EXPECT_FALSE(current.configDiffers(s));

  auto changed = updateApp(current, R"({"cmd": "sleep 200"})", later);
  ASSERT_TRUE(std::holds_alternative<App>(changed));
  EXPECT_EQ(std::get<App>(changed).lastConfigChangeAt, later);
  EXPECT_TRUE(current.configDiffers(std::get<App>(changed)));

  auto bad = updateApp(current, R"({"cpus": -3})", later);
  ASSERT_TRUE(std::holds_alternative<AppError>(bad));
  EXPECT_TRUE(hasPath(std::get<AppError>(bad), "/cpus"));
}

TEST(MarathonAppTest, AppToJsonRoundTrips) {
  App app = parsed(R"({"id": "/a/b", "cmd": "x", "instances": 4, "labels": {"k": "v"},
    "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]})");
  const std::string json = appToJson(app);
  EXPECT_THAT(json, HasSubstr(R"("id":"/a/b")"));
  EXPECT_THAT(json, HasSubstr(R"("version":"2026-12-07T04:24:05.123Z")"));
  EXPECT_THAT(json, HasSubstr(R"("versionInfo":)"));
  App again = parsed(json);
  EXPECT_FALSE(app.configDiffers(again));
  EXPECT_EQ(again.instances, 4);
}

TEST(MarathonAppTest, IdsAreNormalised) {
  EXPECT_EQ(normaliseAppId("prod//web/"), "/prod/web");
  EXPECT_EQ(normaliseAppId("/prod/web"), "/prod/web");
  EXPECT_EQ(normaliseAppId("api", "/prod"), "/prod/api");
  EXPECT_EQ(normaliseAppId("../db", "/prod/web"), "/prod/db");
  EXPECT_EQ(normaliseAppId("my.app-1"), "/my.app-1");
  EXPECT_EQ(normaliseAppId("Web"), std::nullopt);
  EXPECT_EQ(normaliseAppId("-web"), std::nullopt);
  EXPECT_EQ(normaliseAppId("a_b"), std::nullopt);
}

TEST(MarathonAppTest, TimestampsAreIsoUtcWithMillis) {
  EXPECT_EQ(isoTimestamp(kNow), "2026-12-07T04:24:05.123Z");
}

TEST(MarathonAppTest, StoredAppsComeBackWithTheirVersions) {
  App app = parsed(R"({"id": "/a", "cmd": "x", "portDefinitions": []})");
  app.lastScalingAt = kNow + std::chrono::seconds(3);
  auto again = appFromJson(appToJson(app));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version, kNow);
  EXPECT_EQ(again->lastScalingAt, kNow + std::chrono::seconds(3));
  EXPECT_TRUE(again->portDefinitions.empty());
  EXPECT_EQ(parseIsoTimestamp("2026-12-07T04:24:05.123Z"), kNow);
  EXPECT_EQ(parseIsoTimestamp("yesterday"), std::nullopt);
}

}  // namespace
}  // namespace tessera::modules::marathon

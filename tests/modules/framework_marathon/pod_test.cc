// Pod definitions (POST/PUT /v2/pods): Marathon's defaults, 422 with the failing paths, the
// JSON written back and read from the store, and the instance/task ids.

#include "modules/framework_marathon/pod.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::modules::marathon {
namespace {

using ::testing::HasSubstr;

const Clock::time_point kNow = Clock::time_point(std::chrono::seconds(1'800'000'000));

constexpr std::string_view kTwoContainers = R"({
  "id": "/prod/web",
  "labels": {"team": "blue"},
  "environment": {"SHARED": "1"},
  "scaling": {"kind": "fixed", "instances": 2},
  "containers": [
    {"name": "web", "resources": {"cpus": 0.25, "mem": 64},
     "exec": {"command": {"shell": "sleep 1000"}},
     "endpoints": [{"name": "http", "hostPort": 0}],
     "environment": {"ROLE": "web"}},
    {"name": "sidecar", "resources": {"cpus": 0.1, "mem": 32, "disk": 5},
     "exec": {"command": {"shell": "sleep 2000"}},
     "healthCheck": {"exec": {"command": {"shell": "true"}}}}
  ],
  "networks": [{"mode": "host"}],
  "scheduling": {"backoff": {"backoff": 2, "backoffFactor": 1.5},
                 "placement": {"constraints": [{"fieldName": "hostname", "operator": "UNIQUE"}]}},
  "status": "STABLE", "instances": []
})";

Pod parsed(std::string_view json) {
  auto result = parsePod(json, kNow);
  if (auto* error = std::get_if<AppError>(&result)) {
    ADD_FAILURE() << error->toJson();
    return {};
  }
  return std::get<Pod>(result);
}

AppError refused(std::string_view json) {
  auto result = parsePod(json, kNow);
  EXPECT_TRUE(std::holds_alternative<AppError>(result)) << "accepted: " << json;
  return std::holds_alternative<AppError>(result) ? std::get<AppError>(result) : AppError{};
}

std::vector<std::string> paths(const AppError& error) {
  std::vector<std::string> out;
  for (const auto& violation : error.details) out.push_back(violation.path);
  return out;
}

TEST(PodTest, ReadsAPodWithMarathonsDefaults) {
  Pod pod = parsed(kTwoContainers);
  EXPECT_EQ(pod.id, "/prod/web");
  EXPECT_EQ(pod.instances, 2);
  ASSERT_EQ(pod.containers.size(), 2u);
  EXPECT_EQ(pod.containers[0].name, "web");
  EXPECT_DOUBLE_EQ(pod.containers[0].resources.cpus, 0.25);
  EXPECT_DOUBLE_EQ(pod.containers[0].resources.disk, 0.0);
  EXPECT_EQ(pod.containers[0].command, "sleep 1000");
  EXPECT_EQ(pod.containers[0].environment.at("ROLE"), "web");
  ASSERT_EQ(pod.containers[0].endpoints.size(), 1u);
  EXPECT_EQ(pod.containers[0].endpoints[0].hostPort, 0);
  EXPECT_EQ(pod.containers[0].endpoints[0].protocol, std::vector<std::string>{"tcp"});
  ASSERT_TRUE(pod.containers[1].healthCheck);
  EXPECT_EQ(pod.containers[1].healthCheck->type, "exec");
  EXPECT_EQ(pod.containers[1].healthCheck->shell, "true");
  EXPECT_EQ(pod.containers[1].healthCheck->gracePeriodSeconds, 300);
  EXPECT_EQ(pod.containers[1].healthCheck->delaySeconds, 15);
  EXPECT_EQ(pod.environment.at("SHARED"), "1");
  EXPECT_DOUBLE_EQ(pod.backoffSeconds, 2.0);
  EXPECT_DOUBLE_EQ(pod.backoffFactor, 1.5);
  EXPECT_DOUBLE_EQ(pod.maxLaunchDelaySeconds, 300.0);
  ASSERT_EQ(pod.constraints.size(), 1u);
  EXPECT_EQ(pod.constraints[0].op, "UNIQUE");
  EXPECT_DOUBLE_EQ(pod.executorResources.cpus, 0.1);
  EXPECT_DOUBLE_EQ(pod.executorResources.mem, 32.0);
  EXPECT_EQ(pod.version, kNow);

  const PodResources total = pod.instanceResources();
  EXPECT_DOUBLE_EQ(total.cpus, 0.45);
  EXPECT_DOUBLE_EQ(total.mem, 128.0);
  EXPECT_DOUBLE_EQ(total.disk, 15.0);

  // A minimal pod: one instance, Marathon's container resources.
  Pod small = parsed(R"({"id": "p", "containers": [{"name": "c", "resources": {},
    "exec": {"command": {"shell": "true"}}}]})");
  EXPECT_EQ(small.id, "/p");
  EXPECT_EQ(small.instances, 1);
  EXPECT_DOUBLE_EQ(small.containers[0].resources.cpus, 1.0);
  EXPECT_DOUBLE_EQ(small.containers[0].resources.mem, 128.0);
}

TEST(PodTest, RefusesBadDefinitionsWithTheFailingPaths) {
  EXPECT_EQ(refused("{not json").status, 400);

  auto error = refused(R"({"id": "/p", "containers": [
    {"name": "c", "resources": {"cpus": -1, "mem": "lots"}, "exec": {"command": {"shell": "x"}}},
    {"name": "c", "resources": {}},
    {"name": "Bad_Name", "resources": {}, "exec": {"command": {"shell": "x"}}}],
    "scaling": {"kind": "elastic", "instances": -2}})");
  EXPECT_EQ(error.status, 422);
  EXPECT_EQ(error.message, "Object is not valid");
  EXPECT_THAT(paths(error), ::testing::IsSupersetOf(
                                {"/containers(0)/resources/cpus", "/containers(0)/resources/mem",
                                 "/containers(1)/name", "/containers(1)/exec",
                                 "/containers(2)/name", "/scaling/kind", "/scaling/instances"}));
  EXPECT_THAT(error.toJson(), HasSubstr(R"("path":"/containers(0)/resources/cpus")"));

  EXPECT_THAT(paths(refused(R"({"id": "/p"})")), ::testing::Contains("/containers"));
  EXPECT_THAT(paths(refused(R"({"id": "/p", "containers": []})")),
              ::testing::Contains("/containers"));
  EXPECT_THAT(paths(refused(R"({"containers": [{"name": "c", "resources": {},
    "exec": {"command": {"shell": "x"}}}]})")),
              ::testing::Contains("/id"));
  EXPECT_THAT(paths(refused(R"({"id": "/P!", "containers": [{"name": "c", "resources": {},
    "exec": {"command": {"shell": "x"}}}]})")),
              ::testing::Contains("/id"));
  // What is not supported is refused rather than silently ignored.
  EXPECT_THAT(paths(refused(R"({"id": "/p", "networks": [{"mode": "container"}],
    "containers": [{"name": "c", "resources": {}, "exec": {"command": {"shell": "x"}}}]})")),
              ::testing::Contains("/networks(0)/mode"));
  EXPECT_THAT(paths(refused(R"({"id": "/p", "containers": [{"name": "c", "resources": {},
    "image": {"kind": "DOCKER", "id": "busybox"}, "exec": {"command": {"shell": "x"}}}]})")),
              ::testing::Contains("/containers(0)/image"));
  // Two endpoints of one instance on the same host port.
  EXPECT_THAT(paths(refused(R"({"id": "/p", "containers": [
    {"name": "a", "resources": {}, "exec": {"command": {"shell": "x"}},
     "endpoints": [{"name": "x", "hostPort": 8080}]},
    {"name": "b", "resources": {}, "exec": {"command": {"shell": "x"}},
     "endpoints": [{"name": "y", "hostPort": 8080}]}]})")),
              ::testing::Contains("/containers(1)/endpoints(0)/hostPort"));
  EXPECT_THAT(paths(refused(R"({"id": "/p", "containers": [{"name": "c", "resources": {},
    "exec": {"command": {"shell": "x"}}}],
    "scheduling": {"placement": {"constraints": [{"fieldName": "rack", "operator": "LIKE"}]}}})")),
              ::testing::Contains("/scheduling/placement/constraints(0)/value"));
}

TEST(PodTest, WritesEveryDefaultAndReadsItselfBack) {
  Pod pod = parsed(kTwoContainers);
  const std::string json = podToJson(pod);
  EXPECT_THAT(json, HasSubstr(R"("id":"/prod/web")"));
  EXPECT_THAT(json, HasSubstr(R"("scaling":{"kind":"fixed","instances":2})"));
  EXPECT_THAT(json, HasSubstr(R"("exec":{"command":{"shell":"sleep 1000"}})"));
  EXPECT_THAT(json, HasSubstr(R"("networks":[{"mode":"host"}])"));
  EXPECT_THAT(json, HasSubstr(R"("executorResources":{"cpus":0.1,"mem":32)"));
  EXPECT_THAT(json, HasSubstr(R"("version":"2027-01-15T08:00:00.000Z")"));
  EXPECT_THAT(json, HasSubstr(R"("fieldName":"hostname","operator":"UNIQUE")"));

  auto back = podFromJson(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->version, pod.version);
  EXPECT_EQ(podToJson(*back), json);
  EXPECT_FALSE(podFromJson(R"({"id": "/p"})"));
}

TEST(PodTest, HealthChecksAreReadWithTheirDefaultsAndWrittenBack) {
  Pod pod = parsed(R"({"id": "/hc", "containers": [
    {"name": "web", "resources": {}, "exec": {"command": {"shell": "x"}},
     "endpoints": [{"name": "http", "hostPort": 0}, {"name": "admin", "hostPort": 0}],
     "healthCheck": {"http": {"endpoint": "http", "path": "/ping", "scheme": "HTTPS"},
                     "gracePeriodSeconds": 5, "intervalSeconds": 2, "maxConsecutiveFailures": 0,
                     "timeoutSeconds": 1, "delaySeconds": 0}},
    {"name": "db", "resources": {}, "exec": {"command": {"shell": "x"}},
     "endpoints": [{"name": "pg", "hostPort": 0}],
     "healthCheck": {"tcp": {"endpoint": "pg"}}},
    {"name": "job", "resources": {}, "exec": {"command": {"shell": "x"}},
     "healthCheck": {"exec": {"command": {"argv": ["/bin/test", "-f", "ok"]}}}}]})");
  ASSERT_EQ(pod.containers.size(), 3u);
  const auto& http = *pod.containers[0].healthCheck;
  EXPECT_EQ(http.type, "http");
  EXPECT_EQ(http.endpoint, "http");
  EXPECT_EQ(http.path, "/ping");
  EXPECT_EQ(http.scheme, "HTTPS");
  EXPECT_EQ(http.gracePeriodSeconds, 5);
  EXPECT_EQ(http.maxConsecutiveFailures, 0);
  EXPECT_EQ(http.delaySeconds, 0);
  EXPECT_EQ(pod.containers[1].healthCheck->type, "tcp");
  EXPECT_EQ(pod.containers[1].healthCheck->intervalSeconds, 60);
  EXPECT_EQ(pod.containers[2].healthCheck->argv.size(), 3u);

  const std::string json = podToJson(pod);
  EXPECT_THAT(json,
              HasSubstr(R"("healthCheck":{"http":{"endpoint":"http","path":"/ping",)"
                        R"("scheme":"HTTPS"},"gracePeriodSeconds":5,"intervalSeconds":2,)"
                        R"("maxConsecutiveFailures":0,"timeoutSeconds":1,"delaySeconds":0})"));
  EXPECT_THAT(json, HasSubstr(R"("healthCheck":{"tcp":{"endpoint":"pg"},"gracePeriodSeconds":300,)"
                              R"("intervalSeconds":60,"maxConsecutiveFailures":3,)"
                              R"("timeoutSeconds":20,"delaySeconds":15})"));
  EXPECT_THAT(json, HasSubstr(R"("exec":{"command":{"argv":["/bin/test","-f","ok"]}})"));
  auto back = podFromJson(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(podToJson(*back), json);
}

TEST(PodTest, BadHealthChecksAreRefusedWithTheirPaths) {
  auto withCheck = [](std::string_view check) {
    return fmt::format(R"({{"id": "/p", "containers": [{{"name": "c", "resources": {{}},
      "exec": {{"command": {{"shell": "x"}}}}, "endpoints": [{{"name": "http"}}],
      "healthCheck": {}}}]}})",
                       check);
  };
  EXPECT_THAT(paths(refused(withCheck(R"({"gracePeriodSeconds": 5})"))),
              ::testing::Contains("/containers(0)/healthCheck"));
  EXPECT_THAT(
      paths(refused(withCheck(R"({"http": {"endpoint": "http"}, "tcp": {"endpoint": "http"}})"))),
      ::testing::Contains("/containers(0)/healthCheck"));
  EXPECT_THAT(paths(refused(withCheck(R"({"http": {"endpoint": "nope"}})"))),
              ::testing::Contains("/containers(0)/healthCheck/http/endpoint"));
  EXPECT_THAT(paths(refused(withCheck(R"({"tcp": {}})"))),
              ::testing::Contains("/containers(0)/healthCheck/tcp/endpoint"));
  EXPECT_THAT(paths(refused(withCheck(R"({"http": {"endpoint": "http", "scheme": "FTP"}})"))),
              ::testing::Contains("/containers(0)/healthCheck/http/scheme"));
  EXPECT_THAT(paths(refused(withCheck(R"({"exec": {"command": {}}})"))),
              ::testing::Contains("/containers(0)/healthCheck/exec/command"));
  EXPECT_THAT(paths(refused(withCheck(R"({"exec": {"command": {"shell": "true"}},
    "intervalSeconds": -1})"))),
              ::testing::Contains("/containers(0)/healthCheck/intervalSeconds"));
}

TEST(PodTest, InstanceAndTaskIdsNameTheirPod) {
  const std::string instance = newInstanceId("/prod/web");
  EXPECT_TRUE(instance.starts_with("prod_web.instance-")) << instance;
  auto name = parsePodTaskId(instance + ".sidecar");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->instanceId, instance);
  EXPECT_EQ(name->podId, "/prod/web");
  EXPECT_EQ(name->container, "sidecar");
  // App task ids are not pod task ids.
  EXPECT_FALSE(parsePodTaskId("prod_web.1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
  EXPECT_FALSE(parsePodTaskId(instance));
}

}  // namespace
}  // namespace tessera::modules::marathon

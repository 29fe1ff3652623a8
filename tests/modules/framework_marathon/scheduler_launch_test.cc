// The Marathon engine launches an app's instances from offers: resources of acceptable roles,
// host ports, Marathon's environment, Docker and health-check settings; declines and
// suppresses what it does not need.

#include <gtest/gtest.h>

#include "modules/framework_marathon/sched_task_builder.h"
#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

using LaunchTest = SchedulerHarness;

double scalarOf(const v1::TaskInfo& task, const std::string& name) {
  double total = 0;
  for (const auto& resource : task.resources()) {
    if (resource.name() == name) total += resource.scalar().value();
  }
  return total;
}

TEST_F(LaunchTest, LaunchesInstancesWithMarathonsEnvironment) {
  App app = makeApp("/prod/web", 3);
  app.labels = {{"team", "blue"}};
  app.env = {{"GREETING", "hi"}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  EXPECT_GE(driver.revives, 1);

  const int suppressed = driver.suppresses;
  scheduler->offers({offer()});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 3u);
  std::set<std::string> ports;
  for (const auto& task : tasks) {
    EXPECT_TRUE(task.task_id().value().starts_with("prod_web.")) << task.task_id().value();
    EXPECT_EQ(appIdOfTask(task.task_id().value()), "/prod/web");
    EXPECT_EQ(task.name(), "web.prod");
    EXPECT_DOUBLE_EQ(scalarOf(task, "cpus"), 0.1);
    EXPECT_DOUBLE_EQ(scalarOf(task, "mem"), 16);
    EXPECT_EQ(task.command().value(), "sleep 1000");
    EXPECT_TRUE(task.command().shell());
    EXPECT_EQ(task.command().user(), "root");
    auto port = envOf(task, "PORT0");
    ASSERT_TRUE(port);
    ports.insert(*port);
    const int number = std::stoi(*port);
    EXPECT_GE(number, 31000);
    EXPECT_LE(number, 31099);
    EXPECT_EQ(envOf(task, "PORT"), port);
    EXPECT_EQ(envOf(task, "PORTS"), port);
    EXPECT_EQ(envOf(task, "HOST"), "host1");
    EXPECT_EQ(envOf(task, "MESOS_TASK_ID"), task.task_id().value());
    EXPECT_EQ(envOf(task, "MARATHON_APP_ID"), "/prod/web");
    EXPECT_EQ(envOf(task, "MARATHON_APP_VERSION"), isoTimestamp(app.version));
    EXPECT_EQ(envOf(task, "MARATHON_APP_RESOURCE_CPUS"), "0.1");
    EXPECT_EQ(envOf(task, "MARATHON_APP_RESOURCE_MEM"), "16.0");
    EXPECT_EQ(envOf(task, "MARATHON_APP_RESOURCE_DISK"), "0.0");
    EXPECT_EQ(envOf(task, "MARATHON_APP_LABELS"), "TEAM");
    EXPECT_EQ(envOf(task, "MARATHON_APP_LABEL_TEAM"), "blue");
    EXPECT_EQ(envOf(task, "GREETING"), "hi");
    ASSERT_EQ(task.labels().labels_size(), 1);
    EXPECT_EQ(task.labels().labels(0).key(), "team");
  }
  EXPECT_EQ(ports.size(), 3u) << "each task has its own host port";
  // Nothing waits any more: offers are suppressed.
  EXPECT_EQ(driver.suppresses, suppressed + 1);
  EXPECT_EQ(scheduler->counts("/prod/web").staged, 3);
  EXPECT_EQ(scheduler->tasks("/prod/web").size(), 3u);
  EXPECT_TRUE(scheduler->queue().empty());
}

TEST_F(LaunchTest, FillsFromSeveralOffersAndDeclinesTheRestWithAFilter) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/a", 3)}, {}, {}, false).isOk());
  // Room for two tasks only (mem), then a second offer for the third.
  scheduler->offers({offer("cpus:4;mem:40;ports:[31000-31010]")});
  EXPECT_EQ(driver.launched().size(), 2u);
  ASSERT_EQ(scheduler->queue().size(), 1u);
  EXPECT_EQ(scheduler->queue()[0].count, 1);
  scheduler->offers({offer("cpus:0.05;mem:400;ports:[31000-31010]", "a2", "host2")});
  ASSERT_EQ(driver.declines.size(), 1u);
  ASSERT_TRUE(driver.declines[0].filters);
  EXPECT_GT(driver.declines[0].filters->refuse_seconds(), 0);
  scheduler->offers({offer("cpus:1;mem:400;ports:[31000-31010]", "a2", "host2")});
  EXPECT_EQ(driver.launched().size(), 3u);
  // An offer nobody needs: declined for long.
  scheduler->offers({offer()});
  ASSERT_EQ(driver.declines.size(), 2u);
  EXPECT_GE(driver.declines[1].filters->refuse_seconds(), 60);
}

TEST_F(LaunchTest, RequirePortsTakesExactlyTheDefinedPorts) {
  App app = makeApp("/fixed", 1);
  app.requirePorts = true;
  app.portDefinitions = {PortDefinition{31005, "tcp", "http", {}},
                         PortDefinition{31007, "tcp", "", {}}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer("cpus:1;mem:100;ports:[31006-31010]")});
  EXPECT_TRUE(driver.launched().empty()) << "31005 is not offered";
  scheduler->offers({offer("cpus:1;mem:100;ports:[31000-31010]")});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(envOf(tasks[0], "PORT0"), "31005");
  EXPECT_EQ(envOf(tasks[0], "PORT1"), "31007");
  EXPECT_EQ(envOf(tasks[0], "PORTS"), "31005,31007");
  EXPECT_EQ(envOf(tasks[0], "PORT_HTTP"), "31005");
  EXPECT_EQ(envOf(tasks[0], "PORT_31005"), "31005");
  ASSERT_EQ(scheduler->tasks("/fixed").size(), 1u);
  EXPECT_EQ(scheduler->tasks("/fixed")[0].ports, (std::vector<int>{31005, 31007}));
}

TEST_F(LaunchTest, DockerBridgeHealthCheckKillPolicyFetchAndArgs) {
  App app = makeApp("/docker", 1);
  app.cmd.reset();
  app.args = std::vector<std::string>{"serve", "--verbose"};
  Container container;
  container.type = "DOCKER";
  container.docker = DockerContainer{"nginx:1.9", "BRIDGE", false, true, {{"label", "x=y"}}};
  container.portMappings = {PortMapping{80, 0, 10001, "tcp", "web", {}}};
  app.container = container;
  app.taskKillGracePeriodSeconds = 7;
  app.fetch = {FetchUri{"http://example.com/a.tgz", true, false, false, std::nullopt}};
  HealthCheck check;
  check.protocol = "MESOS_HTTP";
  check.path = "/health";
  check.portIndex = 0;
  check.maxConsecutiveFailures = 2;
  check.gracePeriodSeconds = 11;
  check.intervalSeconds = 3;
  HealthCheck second;
  second.protocol = "TCP";
  app.healthChecks = {check, second};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 1u);
  const auto& task = tasks[0];
  EXPECT_FALSE(task.command().shell());
  EXPECT_FALSE(task.command().has_value()) << "Docker's entrypoint gets the args";
  ASSERT_EQ(task.command().arguments_size(), 2);
  EXPECT_EQ(task.command().arguments(0), "serve");
  ASSERT_EQ(task.command().uris_size(), 1);
  EXPECT_EQ(task.command().uris(0).value(), "http://example.com/a.tgz");
  EXPECT_TRUE(task.command().uris(0).extract());
  ASSERT_EQ(task.container().type(), v1::ContainerInfo::DOCKER);
  EXPECT_EQ(task.container().docker().image(), "nginx:1.9");
  EXPECT_EQ(task.container().docker().network(), v1::ContainerInfo::DockerInfo::BRIDGE);
  EXPECT_TRUE(task.container().docker().force_pull_image());
  ASSERT_EQ(task.container().docker().port_mappings_size(), 1);
  EXPECT_EQ(task.container().docker().port_mappings(0).container_port(), 80u);
  const auto hostPort = task.container().docker().port_mappings(0).host_port();
  EXPECT_EQ(envOf(task, "PORT0"), std::to_string(hostPort));
  EXPECT_EQ(envOf(task, "PORT_WEB"), std::to_string(hostPort));
  EXPECT_EQ(envOf(task, "MARATHON_APP_DOCKER_IMAGE"), "nginx:1.9");
  EXPECT_EQ(task.kill_policy().grace_period().nanoseconds(), 7'000'000'000);
  ASSERT_TRUE(task.has_health_check());
  EXPECT_EQ(task.health_check().type(), v1::HealthCheck::HTTP);
  EXPECT_EQ(task.health_check().http().path(), "/health");
  EXPECT_EQ(task.health_check().http().port(), 80u) << "MESOS_HTTP, BRIDGE: the container port";
  EXPECT_EQ(task.health_check().consecutive_failures(), 2u);
  EXPECT_DOUBLE_EQ(task.health_check().grace_period_seconds(), 11);
  EXPECT_DOUBLE_EQ(task.health_check().interval_seconds(), 3);
  EXPECT_EQ(scheduler->tasks("/docker")[0].servicePorts, (std::vector<int>{10001}));
}

TEST_F(LaunchTest, TheAgentGetsTheMesosLevelCheckAndMarathonLevelOnesProbeTheHostPort) {
  App app = makeApp("/bridged", 1);
  Container container;
  container.type = "DOCKER";
  container.docker = DockerContainer{"nginx:1.9", "BRIDGE", false, false, {}};
  container.portMappings = {PortMapping{80, 0, 10001, "tcp", "web", {}},
                            PortMapping{81, 0, 10002, "tcp", "admin", {}}};
  app.container = container;
  HealthCheck http;  // Marathon-level: Marathon probes host:hostPort, so does the agent here
  http.protocol = "HTTP";
  http.portIndex = 0;
  app.healthChecks = {http};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 1u);
  ASSERT_TRUE(tasks[0].has_health_check());
  EXPECT_EQ(tasks[0].health_check().type(), v1::HealthCheck::HTTP);
  EXPECT_EQ(tasks[0].health_check().http().scheme(), "http");
  EXPECT_EQ(tasks[0].health_check().http().port(),
            tasks[0].container().docker().port_mappings(0).host_port());

  App both = makeApp("/both", 1);
  both.container = container;
  HealthCheck tcp;
  tcp.protocol = "MESOS_TCP";
  tcp.portIndex = 1;
  tcp.delaySeconds = 4;
  both.healthChecks = {http, tcp};
  ASSERT_TRUE(scheduler->deploy({both}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 2u);
  const auto& task = tasks[1];
  ASSERT_TRUE(task.has_health_check());
  EXPECT_EQ(task.health_check().type(), v1::HealthCheck::TCP) << "the Mesos-level one";
  EXPECT_EQ(task.health_check().tcp().port(), 81u) << "MESOS_TCP: the container port";
  EXPECT_DOUBLE_EQ(task.health_check().delay_seconds(), 4);
}

TEST_F(LaunchTest, ArgsWithoutDockerRunTheFirstArgument) {
  App app = makeApp("/args", 1);
  app.cmd.reset();
  app.args = std::vector<std::string>{"/bin/sleep", "100"};
  app.portDefinitions.clear();
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_FALSE(tasks[0].command().shell());
  EXPECT_EQ(tasks[0].command().value(), "/bin/sleep");
  EXPECT_EQ(tasks[0].command().arguments_size(), 2);
  EXPECT_FALSE(envOf(tasks[0], "PORT0")) << "no ports asked for";
}

TEST_F(LaunchTest, AcceptedResourceRolesSelectReservedResources) {
  App app = makeApp("/ops", 1);
  app.acceptedResourceRoles = {"ops"};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31010]")});
  EXPECT_TRUE(driver.launched().empty()) << "only unreserved resources were offered";
  scheduler->offers({offer("cpus(ops):1;mem(ops):100;ports(ops):[32000-32000];cpus:4;mem:4096")});
  auto tasks = driver.launched();
  ASSERT_EQ(tasks.size(), 1u);
  for (const auto& resource : tasks[0].resources()) {
    ASSERT_GT(resource.reservations_size(), 0) << resource.name();
    EXPECT_EQ(resource.reservations(resource.reservations_size() - 1).role(), "ops");
  }
  EXPECT_EQ(envOf(tasks[0], "PORT0"), "32000");
}

TEST_F(LaunchTest, RefusedLaunchIsForgottenAndRetried) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/a", 1)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  ASSERT_EQ(driver.accepts.size(), 1u);
  ASSERT_TRUE(driver.accepts[0].done);
  driver.accepts[0].done(api::Status(api::StatusCode::kInvalidArgument, "offer is gone"));
  EXPECT_TRUE(scheduler->tasks("/a").empty());
  scheduler->offers({offer()});
  EXPECT_EQ(driver.launched().size(), 2u);
}

TEST_F(LaunchTest, StatusUpdatesAreAcknowledgedAndPublished) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/a", 1)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  const auto id = driver.launched().at(0).task_id().value();
  scheduler->update(makeStatus(id, v1::TASK_RUNNING));
  EXPECT_EQ(driver.acks, std::vector<std::string>{id});
  EXPECT_EQ(scheduler->counts("/a").running, 1);
  ASSERT_TRUE(scheduler->tasks("/a")[0].startedAt);
  const std::string event = lastEventOf("status_update_event");
  for (const char* field :
       {"\"eventType\":\"status_update_event\"", "\"timestamp\":", "\"slaveId\":\"a1\"",
        "\"taskStatus\":\"TASK_RUNNING\"", "\"appId\":\"/a\"", "\"host\":\"host1\"", "\"ports\":[",
        "\"version\":"}) {
    EXPECT_NE(event.find(field), std::string::npos) << field << " in " << event;
  }
  EXPECT_NE(event.find(id), std::string::npos);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing

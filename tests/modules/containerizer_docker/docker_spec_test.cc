// The create body, parameters, image names and the log demuxer: no engine needed.
#include "modules/containerizer_docker/docker_spec.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::modules::containerizer_docker {
namespace {

using Poco::JSON::Object;
using ::testing::HasSubstr;

api::ContainerConfig dockerConfig() {
  api::ContainerConfig config;
  config.containerId = "c1";
  config.agentId = "a1";
  config.frameworkId = "f1";
  config.taskId = "t1";
  config.sandboxDirectory = "/work/sandbox";
  config.command.set_shell(true);
  config.command.set_value("echo hi");
  config.container.emplace();
  config.container->set_type(v1::ContainerInfo::DOCKER);
  config.container->mutable_docker()->set_image("tessera-test/busybox");
  config.resources = api::Resources::parse("cpus:0.5;mem:64;ports:[31000-31010]").value();
  config.environment = {{"MESOS_SANDBOX", "/work/sandbox"}, {"MESOS_TASK_ID", "t1"}};
  return config;
}

Object::Ptr bodyOf(const api::ContainerConfig& config) {
  auto body = containerCreateBody(config, "/var/agent");
  EXPECT_TRUE(body) << body.status().message();
  if (!body) return nullptr;
  return Poco::JSON::Parser().parse(*body).extract<Object::Ptr>();
}

std::string joinedArray(Poco::JSON::Array::Ptr array) {
  std::string out;
  for (size_t i = 0; array && i < array->size(); ++i) {
    if (!out.empty()) out += "|";
    out += array->getElement<std::string>(i);
  }
  return out;
}

TEST(DockerSpecTest, ShellCommandRunsUnderShWithTheSandboxMountedAndLimitsSet) {
  auto body = bodyOf(dockerConfig());
  ASSERT_TRUE(body);
  EXPECT_EQ(body->getValue<std::string>("Image"), "tessera-test/busybox");
  EXPECT_EQ(joinedArray(body->getArray("Entrypoint")), "/bin/sh|-c");
  EXPECT_EQ(joinedArray(body->getArray("Cmd")), "echo hi");
  const std::string env = joinedArray(body->getArray("Env"));
  EXPECT_THAT(env, HasSubstr("MESOS_SANDBOX=/mnt/mesos/sandbox"));
  EXPECT_THAT(env, HasSubstr("MESOS_TASK_ID=t1"));
  auto labels = body->getObject("Labels");
  EXPECT_EQ(labels->getValue<std::string>(kLabelContainerId), "c1");
  EXPECT_EQ(labels->getValue<std::string>(kLabelWorkDir), "/var/agent");
  EXPECT_EQ(labels->getValue<std::string>(kLabelTaskId), "t1");
  auto host = body->getObject("HostConfig");
  EXPECT_EQ(joinedArray(host->getArray("Binds")), "/work/sandbox:/mnt/mesos/sandbox:rw");
  EXPECT_EQ(host->getValue<int64_t>("CpuShares"), 512);
  EXPECT_EQ(host->getValue<int64_t>("Memory"), 64 * 1024 * 1024);
  EXPECT_EQ(host->getValue<int64_t>("MemorySwap"), 64 * 1024 * 1024);
  EXPECT_EQ(host->getValue<std::string>("NetworkMode"), "host");
}

TEST(DockerSpecTest, ArgvCommandVolumesAndEnvironment) {
  auto config = dockerConfig();
  config.command.set_shell(false);
  config.command.clear_value();
  config.command.add_arguments("httpd");
  config.command.add_arguments("-f");
  auto* variable = config.command.mutable_environment()->add_variables();
  variable->set_name("GREETING");
  variable->set_value("hello");
  auto* volume = config.container->add_volumes();
  volume->set_container_path("/data");
  volume->set_host_path("/srv/data");
  volume->set_mode(v1::Volume::RO);
  auto* relative = config.container->add_volumes();
  relative->set_container_path("/scratch");
  relative->set_host_path("scratch");
  auto body = bodyOf(config);
  ASSERT_TRUE(body);
  EXPECT_FALSE(body->has("Entrypoint"));
  EXPECT_EQ(joinedArray(body->getArray("Cmd")), "httpd|-f");
  EXPECT_THAT(joinedArray(body->getArray("Env")), HasSubstr("GREETING=hello"));
  EXPECT_EQ(joinedArray(body->getObject("HostConfig")->getArray("Binds")),
            "/work/sandbox:/mnt/mesos/sandbox:rw|/srv/data:/data:ro|"
            "/work/sandbox/scratch:/scratch:rw");
}

TEST(DockerSpecTest, BridgePortMappingsInsideThePortsResources) {
  auto config = dockerConfig();
  auto* docker = config.container->mutable_docker();
  docker->set_network(v1::ContainerInfo::DockerInfo::BRIDGE);
  auto* mapping = docker->add_port_mappings();
  mapping->set_host_port(31005);
  mapping->set_container_port(80);
  auto body = bodyOf(config);
  ASSERT_TRUE(body);
  auto host = body->getObject("HostConfig");
  EXPECT_EQ(host->getValue<std::string>("NetworkMode"), "bridge");
  auto bindings = host->getObject("PortBindings")->getArray("80/tcp");
  ASSERT_TRUE(bindings);
  EXPECT_EQ(bindings->getObject(0)->getValue<std::string>("HostPort"), "31005");
  EXPECT_TRUE(body->getObject("ExposedPorts")->has("80/tcp"));
}

TEST(DockerSpecTest, HostPortOutsideThePortsResourcesIsRefused) {
  auto config = dockerConfig();
  auto* docker = config.container->mutable_docker();
  docker->set_network(v1::ContainerInfo::DockerInfo::BRIDGE);
  auto* mapping = docker->add_port_mappings();
  mapping->set_host_port(8080);
  mapping->set_container_port(80);
  auto body = containerCreateBody(config, "/var/agent");
  ASSERT_FALSE(body);
  EXPECT_EQ(body.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(body.status().message(), HasSubstr("host port 8080"));
  EXPECT_THAT(body.status().message(), HasSubstr("[31000-31010]"));
}

TEST(DockerSpecTest, PortMappingsNeedBridge) {
  auto config = dockerConfig();
  auto* mapping = config.container->mutable_docker()->add_port_mappings();
  mapping->set_host_port(31001);
  mapping->set_container_port(80);
  auto body = containerCreateBody(config, "/var/agent");
  ASSERT_FALSE(body);
  EXPECT_THAT(body.status().message(), HasSubstr("BRIDGE"));
}

TEST(DockerSpecTest, ParametersMapOntoTheCreateBody) {
  auto config = dockerConfig();
  auto* docker = config.container->mutable_docker();
  auto add = [&](const std::string& key, const std::string& value) {
    auto* parameter = docker->add_parameters();
    parameter->set_key(key);
    parameter->set_value(value);
  };
  add("env", "A=1");
  add("label", "team=web");
  add("user", "nobody");
  add("workdir", "/tmp");
  add("hostname", "box");
  add("cap-add", "NET_ADMIN");
  add("cap-drop", "MKNOD");
  add("ulimit", "nofile=1024:2048");
  add("shm-size", "64m");
  add("dns", "127.0.0.53");
  add("add-host", "db:127.0.0.2");
  add("entrypoint", "/bin/env");
  add("volume", "/srv:/srv:ro");
  add("memory-reservation", "16m");
  auto body = bodyOf(config);
  ASSERT_TRUE(body);
  auto host = body->getObject("HostConfig");
  EXPECT_THAT(joinedArray(body->getArray("Env")), HasSubstr("A=1"));
  EXPECT_EQ(body->getObject("Labels")->getValue<std::string>("team"), "web");
  EXPECT_EQ(body->getValue<std::string>("User"), "nobody");
  EXPECT_EQ(body->getValue<std::string>("WorkingDir"), "/tmp");
  EXPECT_EQ(body->getValue<std::string>("Hostname"), "box");
  EXPECT_EQ(joinedArray(host->getArray("CapAdd")), "NET_ADMIN");
  EXPECT_EQ(joinedArray(host->getArray("CapDrop")), "MKNOD");
  auto ulimit = host->getArray("Ulimits")->getObject(0);
  EXPECT_EQ(ulimit->getValue<std::string>("Name"), "nofile");
  EXPECT_EQ(ulimit->getValue<int64_t>("Soft"), 1024);
  EXPECT_EQ(ulimit->getValue<int64_t>("Hard"), 2048);
  EXPECT_EQ(host->getValue<int64_t>("ShmSize"), 64 * 1024 * 1024);
  EXPECT_EQ(joinedArray(host->getArray("Dns")), "127.0.0.53");
  EXPECT_EQ(joinedArray(host->getArray("ExtraHosts")), "db:127.0.0.2");
  EXPECT_EQ(joinedArray(body->getArray("Entrypoint")), "/bin/env");
  EXPECT_THAT(joinedArray(host->getArray("Binds")), HasSubstr("/srv:/srv:ro"));
  EXPECT_EQ(host->getValue<int64_t>("MemoryReservation"), 16 * 1024 * 1024);
}

TEST(DockerSpecTest, UnknownParameterIsRefusedByName) {
  auto config = dockerConfig();
  auto* parameter = config.container->mutable_docker()->add_parameters();
  parameter->set_key("device");
  parameter->set_value("/dev/sda");
  auto body = containerCreateBody(config, "/var/agent");
  ASSERT_FALSE(body);
  EXPECT_THAT(body.status().message(), HasSubstr("docker parameter 'device' is not supported"));
  EXPECT_THAT(body.status().message(), HasSubstr("cap-add"));
}

TEST(DockerSpecTest, NoImageIsRefused) {
  auto config = dockerConfig();
  config.container->mutable_docker()->clear_image();
  auto body = containerCreateBody(config, "/var/agent");
  ASSERT_FALSE(body);
  EXPECT_THAT(body.status().message(), HasSubstr("no image"));
}

TEST(DockerSpecTest, ImageReferencesAndSizes) {
  EXPECT_EQ(splitImage("busybox").tag, "latest");
  EXPECT_EQ(splitImage("registry:5000/team/app:1.2").image, "registry:5000/team/app");
  EXPECT_EQ(splitImage("registry:5000/team/app:1.2").tag, "1.2");
  EXPECT_EQ(splitImage("registry:5000/team/app").tag, "latest");
  EXPECT_EQ(splitImage("app@sha256:abc").tag, "");
  EXPECT_EQ(parseDockerSize("1g").value(), 1024LL * 1024 * 1024);
  EXPECT_EQ(parseDockerSize("512").value(), 512);
  EXPECT_FALSE(parseDockerSize("12x"));
  EXPECT_FALSE(parseDockerSize("m"));
  EXPECT_EQ(containerName("abc"), "tessera-abc");
}

TEST(DockerSpecTest, LogDemuxerSplitsFramesAcrossChunks) {
  std::string out, err;
  LogDemuxer demuxer(
      [&](int stream, std::string_view payload) { (stream == 2 ? err : out).append(payload); });
  auto frame = [](char stream, const std::string& payload) {
    std::string header(8, '\0');
    header[0] = stream;
    header[7] = static_cast<char>(payload.size());
    return header + payload;
  };
  const std::string stream = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "world\n");
  // Byte by byte: every boundary inside headers and payloads.
  for (char c : stream) demuxer.feed(std::string_view(&c, 1));
  EXPECT_EQ(out, "hello\nworld\n");
  EXPECT_EQ(err, "oops\n");
}

}  // namespace
}  // namespace tessera::modules::containerizer_docker

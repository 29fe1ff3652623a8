#include "kernel/http/mesos_json.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

namespace tessera::kernel::http {
namespace {

using Poco::JSON::Object;

api::Resources parse(std::string_view text) {
  auto resources = api::Resources::parse(text);
  EXPECT_TRUE(resources.isOk()) << text;
  return resources.isOk() ? *resources : api::Resources();
}

Object::Ptr parseObject(const std::string& json) {
  return Poco::JSON::Parser().parse(json).extract<Object::Ptr>();
}

// Mesos prints ranges and sets with ", " between elements (its Value operator<<).
TEST(MesosJsonTest, RangesAndSetsPrintAsMesosDoes) {
  EXPECT_EQ(rangesText({}), "[]");
  EXPECT_EQ(rangesText({{31000, 32000}}), "[31000-32000]");
  EXPECT_EQ(rangesText({{31000, 31005}, {31007, 32000}}), "[31000-31005, 31007-32000]");
  EXPECT_EQ(setText({"a", "b"}), "{a, b}");
}

TEST(MesosJsonTest, ResourcesObjectSumsRolesAndAlwaysShowsTheStandardScalars) {
  const api::Resources resources =
      parse("cpus:2;cpus(web):1.5;ports:[31000-31005,31007-32000];disks:{sda,sdb}");
  const std::string json = writeJson([&](JsonWriter& w) { writeResources(w, resources); });
  // Keys sorted, as Mesos's JSON::Object prints them.
  EXPECT_EQ(json, R"({"cpus":3.5,"disk":0,"disks":"{sda, sdb}","gpus":0,"mem":0,)"
                  R"("ports":"[31000-31005, 31007-32000]"})");
  EXPECT_EQ(writeJson([](JsonWriter& w) { writeResources(w, api::Resources()); }),
            R"({"cpus":0,"disk":0,"gpus":0,"mem":0})");
}

TEST(MesosJsonTest, ResourcesArrayIsTheV1Form) {
  const api::Resources resources = parse("cpus:1;ports:[1-3]");
  const std::string json = writeJson([&](JsonWriter& w) { writeResourcesArray(w, resources); });
  EXPECT_EQ(json, resources.toJson());
  auto array = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Array::Ptr>();
  EXPECT_EQ(array->size(), 2u);
}

TEST(MesosJsonTest, AttributesPrintTheirValues) {
  v1::AgentInfo info;
  auto* rack = info.add_attributes();
  rack->set_name("rack");
  rack->set_type(v1::Value::TEXT);
  rack->mutable_text()->set_value("r1");
  auto* level = info.add_attributes();
  level->set_name("level");
  level->set_type(v1::Value::SCALAR);
  level->mutable_scalar()->set_value(2.5);
  auto* span = info.add_attributes();
  span->set_name("span");
  span->set_type(v1::Value::RANGES);
  for (auto [b, e] : {std::pair{1, 2}, std::pair{4, 8}}) {
    auto* range = span->mutable_ranges()->add_range();
    range->set_begin(b);
    range->set_end(e);
  }
  EXPECT_EQ(writeJson([&](JsonWriter& w) { writeAttributes(w, info.attributes()); }),
            R"({"level":2.5,"rack":"r1","span":"[1-2, 4-8]"})");
}

TEST(MesosJsonTest, TaskAndExecutorCarryMesosFields) {
  v1::TaskInfo info;
  info.set_name("web");
  info.mutable_task_id()->set_value("t-1");
  auto* label = info.mutable_labels()->add_labels();
  label->set_key("k");
  label->set_value("v");
  const api::Resources resources = parse("cpus:1;mem:64;ports:[8080-8080]");
  const std::vector<std::pair<v1::TaskState, double>> statuses = {{v1::TASK_STAGING, 1.5},
                                                                  {v1::TASK_RUNNING, 2}};
  const TaskView task{info, "f-1", "a-S0", v1::TASK_RUNNING, "", resources, statuses};
  auto object = parseObject(writeJson([&](JsonWriter& w) { writeTask(w, task); }));
  EXPECT_EQ(object->getValue<std::string>("id"), "t-1");
  EXPECT_EQ(object->getValue<std::string>("name"), "web");
  EXPECT_EQ(object->getValue<std::string>("framework_id"), "f-1");
  EXPECT_EQ(object->getValue<std::string>("executor_id"), "");
  EXPECT_EQ(object->getValue<std::string>("slave_id"), "a-S0");
  EXPECT_EQ(object->getValue<std::string>("agent_id"), "a-S0");
  EXPECT_EQ(object->getValue<std::string>("state"), "TASK_RUNNING");
  EXPECT_EQ(object->getValue<std::string>("role"), "*");
  EXPECT_EQ(object->getObject("resources")->getValue<std::string>("ports"), "[8080-8080]");
  auto history = object->getArray("statuses");
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->getObject(0)->getValue<std::string>("state"), "TASK_STAGING");
  EXPECT_EQ(history->getObject(0)->getValue<double>("timestamp"), 1.5);
  EXPECT_EQ(
      object->getObject("labels")->getArray("labels")->getObject(0)->getValue<std::string>("key"),
      "k");

  const ExecutorView executor{"t-1", "Command Executor", "t-1", "c-1", "/sandbox",
                              "f-1", resources};
  auto running = parseObject(writeJson([&](JsonWriter& w) {
    writeExecutor(w, executor, {&task, 1}, {});
  }));
  EXPECT_EQ(running->getValue<std::string>("directory"), "/sandbox");
  EXPECT_EQ(running->getValue<std::string>("container"), "c-1");
  EXPECT_EQ(running->getArray("tasks")->size(), 1u);
  EXPECT_EQ(running->getArray("queued_tasks")->size(), 0u);
  EXPECT_EQ(running->getArray("completed_tasks")->size(), 0u);
  auto done = parseObject(writeJson([&](JsonWriter& w) {
    writeExecutor(w, executor, {}, {&task, 1});
  }));
  EXPECT_EQ(done->getArray("tasks")->size(), 0u);
  EXPECT_EQ(done->getArray("completed_tasks")->size(), 1u);
}

TEST(MesosJsonTest, FrameworkAndAgentFields) {
  v1::FrameworkInfo framework;
  framework.set_name("marathon");
  framework.set_user("root");
  framework.set_checkpoint(true);
  framework.add_capabilities()->set_type(v1::FrameworkInfo::Capability::PARTITION_AWARE);
  const std::vector<std::string> roles = {"web", "batch"};
  auto object = parseObject(writeJson([&](JsonWriter& w) {
    w.beginObject();
    writeFrameworkFields(w, "f-1", framework, roles);
    w.endObject();
  }));
  EXPECT_EQ(object->getValue<std::string>("id"), "f-1");
  EXPECT_EQ(object->getValue<std::string>("name"), "marathon");
  EXPECT_EQ(object->getValue<std::string>("role"), "web");
  EXPECT_EQ(object->getArray("roles")->size(), 2u);
  EXPECT_TRUE(object->getValue<bool>("checkpoint"));
  EXPECT_EQ(object->getArray("capabilities")->getElement<std::string>(0), "PARTITION_AWARE");

  v1::AgentInfo agent;
  agent.set_hostname("host1");
  agent.set_port(5051);
  auto slave = parseObject(writeJson([&](JsonWriter& w) {
    w.beginObject();
    writeAgentFields(w, "a-S0", "slave(1)@10.0.0.1:5051", agent);
    w.endObject();
  }));
  EXPECT_EQ(slave->getValue<std::string>("id"), "a-S0");
  EXPECT_EQ(slave->getValue<std::string>("pid"), "slave(1)@10.0.0.1:5051");
  EXPECT_EQ(slave->getValue<std::string>("hostname"), "host1");
  EXPECT_EQ(slave->getValue<int>("port"), 5051);
  EXPECT_EQ(slave->getObject("attributes")->size(), 0u);
}

}  // namespace
}  // namespace tessera::kernel::http

// `tessera execute` (runExecute) against a fake master that offers, takes the LAUNCH and reports
// the task's states.

#include "kernel/cli/execute.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "kernel/runtime/runtime.h"
#include "tests/scheduler/fake_master.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::cli {
namespace {

using namespace std::chrono_literals;
using scheduler::testing::FakeMaster;
using v1::scheduler::Call;
using v1::scheduler::Event;

// Scripts the master: offers after SUBSCRIBED (one too small, one that fits), and on the LAUNCH
// reports RUNNING then `final`.
void scriptTask(FakeMaster& master, v1::TaskState final, const std::string& message) {
  master.onCall([&master, final, message](const Call& call) {
    if (call.type() == Call::SUBSCRIBE) {
      Event offers;
      offers.set_type(Event::OFFERS);
      *offers.mutable_offers()->add_offers() =
          scheduler::testing::makeOffer("o-small", "agent-2", "cpus:0.01;mem:8");
      *offers.mutable_offers()->add_offers() =
          scheduler::testing::makeOffer("o-big", "agent-1", "cpus:2;mem:1024");
      master.send(offers);
    } else if (call.type() == Call::ACCEPT) {
      const auto& task = call.accept().operations(0).launch().task_infos(0);
      master.send(scheduler::testing::makeUpdate(task.task_id().value(), v1::TASK_RUNNING, "u1"));
      master.send(scheduler::testing::makeUpdate(task.task_id().value(), final, "u2", message));
    }
  });
}

struct ExecuteRun {
  int code = -1;
  std::string out;
  std::string err;
};

ExecuteRun execute(const std::vector<std::string>& args) {
  std::ostringstream out;
  std::ostringstream err;
  ExecuteRun run;
  run.code = runExecute(args, out, err);
  run.out = out.str();
  run.err = err.str();
  return run;
}

TEST(ExecuteTest, FinishedTaskExitsZero) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptTask(master, v1::TASK_FINISHED, "Command exited with status 0");
    auto run = execute({"--master=" + master.address(), "--name=cluster-test", "--command=echo hi",
                        "--env={\"A\":\"1\"}"});
    EXPECT_EQ(run.code, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("Received status update TASK_RUNNING for task 'cluster-test'"),
              std::string::npos)
        << run.out;
    EXPECT_NE(run.out.find("Received status update TASK_FINISHED for task 'cluster-test'"),
              std::string::npos)
        << run.out;

    auto accepts = master.callsOf(Call::ACCEPT);
    ASSERT_EQ(accepts.size(), 1u);
    EXPECT_EQ(accepts[0].call.accept().offer_ids(0).value(), "o-big");
    const auto& op = accepts[0].call.accept().operations(0);
    EXPECT_EQ(op.type(), v1::Offer::Operation::LAUNCH);
    const auto& task = op.launch().task_infos(0);
    EXPECT_EQ(task.task_id().value(), "cluster-test");
    EXPECT_EQ(task.agent_id().value(), "agent-1");
    EXPECT_EQ(task.command().value(), "echo hi");
    EXPECT_TRUE(task.command().shell());
    ASSERT_EQ(task.command().environment().variables_size(), 1);
    EXPECT_EQ(task.command().environment().variables(0).name(), "A");
    auto resources = api::Resources::fromProto(task.resources());
    ASSERT_TRUE(resources.isOk());
    EXPECT_EQ(*resources, api::Resources::parse("cpus:0.1;mem:32").value());

    auto declines = master.callsOf(Call::DECLINE);
    ASSERT_EQ(declines.size(), 1u);
    EXPECT_EQ(declines[0].call.decline().offer_ids(0).value(), "o-small");

    auto acks = master.callsOf(Call::ACKNOWLEDGE);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[0].call.acknowledge().uuid(), "u1");
    EXPECT_EQ(acks[1].call.acknowledge().uuid(), "u2");
    EXPECT_EQ(acks[1].call.acknowledge().task_id().value(), "cluster-test");
    ASSERT_EQ(master.callsOf(Call::TEARDOWN).size(), 1u);
    // TEARDOWN comes last, after the acknowledgements.
    EXPECT_EQ(master.calls().back().call.type(), Call::TEARDOWN);
    auto subscribe = master.callsOf(Call::SUBSCRIBE).at(0).call.subscribe().framework_info();
    EXPECT_EQ(subscribe.name(), "tessera-execute");
    EXPECT_EQ(subscribe.roles(0), "*");
  }
  runtime.stop();
}

TEST(ExecuteTest, FailedTaskExitsWithItsStatus) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptTask(master, v1::TASK_FAILED, "Command exited with status 3");
    auto run = execute({"--master=" + master.address(), "--name=fails", "--command=exit 3",
                        "--docker_image=busybox", "--framework_name=fw"});
    EXPECT_EQ(run.code, 3) << run.out << run.err;
    EXPECT_NE(run.out.find("Received status update TASK_FAILED for task 'fails': Command exited "
                           "with status 3"),
              std::string::npos)
        << run.out;
    EXPECT_EQ(master.callsOf(Call::ACKNOWLEDGE).size(), 2u);
    EXPECT_EQ(master.callsOf(Call::TEARDOWN).size(), 1u);
    auto accepts = master.callsOf(Call::ACCEPT);
    ASSERT_EQ(accepts.size(), 1u);
    const auto& task = accepts[0].call.accept().operations(0).launch().task_infos(0);
    EXPECT_EQ(task.container().type(), v1::ContainerInfo::DOCKER);
    EXPECT_EQ(task.container().docker().image(), "busybox");
  }
  runtime.stop();
}

TEST(ExecuteTest, KilledTaskExitsOne) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptTask(master, v1::TASK_KILLED, "");
    auto run = execute({"--master=" + master.address(), "--name=k", "--command=sleep 100"});
    EXPECT_EQ(run.code, 1) << run.out << run.err;
  }
  runtime.stop();
}

TEST(ExecuteTest, InterruptKillsTheTaskAndTearsDown) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    master.onCall([&master](const Call& call) {
      if (call.type() == Call::SUBSCRIBE) {
        Event offers;
        offers.set_type(Event::OFFERS);
        *offers.mutable_offers()->add_offers() =
            scheduler::testing::makeOffer("o-1", "agent-1", "cpus:1;mem:128");
        master.send(offers);
      } else if (call.type() == Call::ACCEPT) {
        master.send(scheduler::testing::makeUpdate("sleeper", v1::TASK_RUNNING, "u1"));
      }
    });
    std::promise<ExecuteRun> done;
    std::thread thread([&] {
      done.set_value(
          execute({"--master=" + master.address(), "--name=sleeper", "--command=sleep 1000"}));
    });
    ASSERT_TRUE(master.waitForCalls(Call::ACKNOWLEDGE, 1));
    // The signal goes to the command's thread, which has SIGINT blocked and waits for it.
    pthread_kill(thread.native_handle(), SIGINT);
    auto future = done.get_future();
    ASSERT_EQ(future.wait_for(20s), std::future_status::ready);
    thread.join();
    auto run = future.get();
    EXPECT_EQ(run.code, 128 + SIGINT) << run.out << run.err;
    auto kills = master.callsOf(Call::KILL);
    ASSERT_EQ(kills.size(), 1u);
    EXPECT_EQ(kills[0].call.kill().task_id().value(), "sleeper");
    EXPECT_EQ(kills[0].call.kill().agent_id().value(), "agent-1");
    EXPECT_EQ(master.callsOf(Call::TEARDOWN).size(), 1u);
  }
  runtime.stop();
}

TEST(ExecuteTest, KillAfterKillsTheRunningTask) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    master.onCall([&master](const Call& call) {
      if (call.type() == Call::SUBSCRIBE) {
        Event offers;
        offers.set_type(Event::OFFERS);
        *offers.mutable_offers()->add_offers() =
            scheduler::testing::makeOffer("o-1", "agent-1", "cpus:1;mem:128");
        master.send(offers);
      } else if (call.type() == Call::ACCEPT) {
        master.send(scheduler::testing::makeUpdate("k", v1::TASK_RUNNING, "u1"));
      } else if (call.type() == Call::KILL) {
        master.send(scheduler::testing::makeUpdate("k", v1::TASK_KILLED, "u2"));
      }
    });
    auto run = execute(
        {"--master=" + master.address(), "--name=k", "--command=sleep 1000", "--kill_after=50ms"});
    EXPECT_EQ(run.code, 1) << run.out << run.err;
    EXPECT_EQ(master.callsOf(Call::KILL).size(), 1u);
    EXPECT_NE(run.out.find("TASK_KILLED"), std::string::npos) << run.out;
  }
  runtime.stop();
}

TEST(ExecuteTest, UnreachableMasterIsOneClearError) {
  uint16_t port = testing::freePort();
  std::string master = fmt::format("127.0.0.1:{}", port);
  auto started = std::chrono::steady_clock::now();
  auto run =
      execute({"--master=" + master, "--name=x", "--command=true", "--connect_timeout=1secs"});
  EXPECT_NE(run.code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_NE(run.err.find(fmt::format("tessera execute: cannot reach the master at '{}'", master)),
            std::string::npos)
      << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST(ExecuteTest, BadFlagsAreErrors) {
  // Nothing answers on port 1: no leader is found within --connect_timeout.
  auto zk = execute({"--master=zk://127.0.0.1:1/tessera", "--name=x", "--command=true",
                     "--connect_timeout=1secs"});
  EXPECT_EQ(zk.code, 1);
  EXPECT_NE(zk.err.find("no leading master found under 'zk://127.0.0.1:1/tessera' within 1secs"),
            std::string::npos)
      << zk.err;
  auto badZk = execute({"--master=zk://127.0.0.1/tessera", "--name=x", "--command=true"});
  EXPECT_EQ(badZk.code, 1);
  EXPECT_NE(badZk.err.find("flag '--master': 'zk://127.0.0.1/tessera': server '127.0.0.1' is not "
                           "host:port"),
            std::string::npos)
      << badZk.err;
  auto resources =
      execute({"--master=127.0.0.1:5050", "--name=x", "--command=true", "--resources=cpus:x"});
  EXPECT_EQ(resources.code, 1);
  EXPECT_NE(resources.err.find("flag '--resources'"), std::string::npos) << resources.err;
  auto env = execute({"--master=127.0.0.1:5050", "--name=x", "--command=true", "--env=[1]"});
  EXPECT_EQ(env.code, 1);
  EXPECT_NE(env.err.find("flag '--env'"), std::string::npos) << env.err;
  EXPECT_EQ(execute({"--name=x", "--command=true"}).code, 1);  // --master is required
}

constexpr const char* kTaskJson = R"({
  "name": "from-json",
  "task_id": {"value": "json-1"},
  "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}],
  "command": {"value": "echo hi", "shell": true,
              "uris": [{"value": "http://example.com/a.tgz", "extract": true}]},
  "health_check": {"type": "TCP", "tcp": {"port": 8080}, "interval_seconds": 3},
  "labels": {"labels": [{"key": "k", "value": "v"}]}
})";

// The task as the master received it in the one ACCEPT.
void expectJsonTask(FakeMaster& master) {
  auto accepts = master.callsOf(Call::ACCEPT);
  ASSERT_EQ(accepts.size(), 1u);
  const auto& task = accepts[0].call.accept().operations(0).launch().task_infos(0);
  EXPECT_EQ(task.name(), "from-json");
  EXPECT_EQ(task.task_id().value(), "json-1");
  EXPECT_EQ(task.agent_id().value(), "agent-1");  // from the offer
  EXPECT_EQ(task.command().value(), "echo hi");
  ASSERT_EQ(task.command().uris_size(), 1);
  EXPECT_TRUE(task.command().uris(0).extract());
  EXPECT_EQ(task.health_check().type(), v1::HealthCheck::TCP);
  EXPECT_EQ(task.health_check().tcp().port(), 8080u);
  EXPECT_EQ(task.labels().labels(0).key(), "k");
  auto resources = api::Resources::fromProto(task.resources());
  ASSERT_TRUE(resources.isOk());
  EXPECT_EQ(*resources, api::Resources::parse("cpus:0.5;mem:64").value());
}

TEST(ExecuteTest, TaskFlagLaunchesTheWholeTaskInfo) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptTask(master, v1::TASK_FINISHED, "Command exited with status 0");
    auto run = execute({"--master=" + master.address(), std::string("--task=") + kTaskJson});
    EXPECT_EQ(run.code, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("Received status update TASK_FINISHED for task 'json-1'"),
              std::string::npos)
        << run.out;
    expectJsonTask(master);
  }
  runtime.stop();
}

TEST(ExecuteTest, TaskFlagReadsAFile) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "task.json").string();
  {
    std::ofstream file(path);
    file << kTaskJson;
  }
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptTask(master, v1::TASK_FINISHED, "Command exited with status 0");
    auto run = execute({"--master=" + master.address(), "--task=file://" + path});
    EXPECT_EQ(run.code, 0) << run.out << run.err;
    expectJsonTask(master);
  }
  runtime.stop();
}

TEST(ExecuteTest, TaskFlagErrorsNameTheFlags) {
  const std::string master = "--master=127.0.0.1:5050";
  const std::string task = std::string("--task=") + kTaskJson;
  for (const char* piece : {"--command=true", "--name=x", "--resources=cpus:1"}) {
    auto both = execute({master, task, piece});
    EXPECT_EQ(both.code, 1);
    const std::string name = std::string(piece).substr(0, std::string(piece).find('='));
    EXPECT_NE(both.err.find(fmt::format("flags '--task' and '{}' are mutually exclusive", name)),
              std::string::npos)
        << both.err;
  }
  auto invalid = execute({master, "--task={\"name\": "});
  EXPECT_EQ(invalid.code, 1);
  EXPECT_NE(invalid.err.find("flag '--task'"), std::string::npos) << invalid.err;
  auto unknown = execute({master, R"(--task={"name":"a","task_id":{"value":"a"},)"
                                  R"("command":{"value":"true"},"helth_check":{}})"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("flag '--task'"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("helth_check"), std::string::npos) << unknown.err;
  auto noId = execute({master, R"(--task={"name":"a","command":{"value":"true"}})"});
  EXPECT_EQ(noId.code, 1);
  EXPECT_NE(noId.err.find("flag '--task': the task has no 'task_id'"), std::string::npos)
      << noId.err;
  auto missingFile = execute({master, "--task=file:///nonexistent/task.json"});
  EXPECT_EQ(missingFile.code, 1);  // loadFlags() names the flag on stderr
  auto group = execute({master, R"(--task_group={"tasks":[]})"});
  EXPECT_EQ(group.code, 1);
  EXPECT_NE(group.err.find("flag '--task_group': the task group has no 'tasks'"), std::string::npos)
      << group.err;
  auto neither = execute({master});
  EXPECT_EQ(neither.code, 1);
  EXPECT_NE(neither.err.find("flag '--name' is required"), std::string::npos) << neither.err;
}

// Scripts the master for a LAUNCH_GROUP: RUNNING for every task, then `final(task id)`.
void scriptGroup(FakeMaster& master, std::function<v1::TaskState(const std::string&)> final) {
  master.onCall([&master, final](const Call& call) {
    if (call.type() == Call::SUBSCRIBE) {
      Event offers;
      offers.set_type(Event::OFFERS);
      *offers.mutable_offers()->add_offers() =
          scheduler::testing::makeOffer("o-big", "agent-1", "cpus:2;mem:1024");
      master.send(offers);
    } else if (call.type() == Call::ACCEPT) {
      int n = 0;
      for (const auto& task : call.accept().operations(0).launch_group().task_group().tasks()) {
        const std::string& id = task.task_id().value();
        master.send(scheduler::testing::makeUpdate(id, v1::TASK_RUNNING, "r" + std::to_string(n)));
        master.send(scheduler::testing::makeUpdate(id, final(id), "e" + std::to_string(n++)));
      }
    }
  });
}

constexpr const char* kGroupJson =
    R"({"tasks":[{"name":"a","task_id":{"value":"a"},"command":{"value":"true"},)"
    R"("resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}}]},)"
    R"({"task_id":{"value":"b"},"command":{"value":"true"},)"
    R"("resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.2}}]}]})";

TEST(ExecuteTest, TaskGroupLaunchesWithADefaultExecutorAndExitsZeroWhenAllFinish) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptGroup(master, [](const std::string&) { return v1::TASK_FINISHED; });
    auto run = execute({"--master=" + master.address(), std::string("--task_group=") + kGroupJson});
    EXPECT_EQ(run.code, 0) << run.out << run.err;
    for (const char* id : {"a", "b"}) {
      EXPECT_NE(run.out.find(fmt::format("Received status update TASK_FINISHED for task '{}'", id)),
                std::string::npos)
          << run.out;
    }
    auto accepts = master.callsOf(Call::ACCEPT);
    ASSERT_EQ(accepts.size(), 1u);
    const auto& op = accepts[0].call.accept().operations(0);
    EXPECT_EQ(op.type(), v1::Offer::Operation::LAUNCH_GROUP);
    EXPECT_EQ(op.launch_group().executor().type(), v1::ExecutorInfo::DEFAULT);
    ASSERT_EQ(op.launch_group().task_group().tasks_size(), 2);
    EXPECT_EQ(op.launch_group().task_group().tasks(1).name(), "b");  // the id when unnamed
    EXPECT_EQ(op.launch_group().task_group().tasks(1).agent_id().value(), "agent-1");
    EXPECT_EQ(master.calls().back().call.type(), Call::TEARDOWN);
  }
  runtime.stop();
}

TEST(ExecuteTest, TaskGroupWithAFailedTaskExitsNonZero) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    scriptGroup(master, [](const std::string& id) {
      return id == "a" ? v1::TASK_FAILED : v1::TASK_KILLED;
    });
    auto run = execute({"--master=" + master.address(), std::string("--task_group=") + kGroupJson});
    EXPECT_NE(run.code, 0) << run.out << run.err;
    EXPECT_NE(run.out.find("Received status update TASK_KILLED for task 'b'"), std::string::npos)
        << run.out;
  }
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::cli

// The agent's health checks end to end: a real master and agent in one process (the cluster
// fixture), tasks as real processes with the native containerizer, a framework through the v1
// scheduler API watching the updates. The cgroup test also gives the agent the cgroups isolator
// module and runs its tasks in PID namespaces; it skips without root or writable cgroups (a
// failure under CI=true).

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/cluster/cluster_fixture.h"
#include "tests/support/ci.h"

namespace tessera::kernel::cluster::testing {
namespace {

namespace fs = std::filesystem;
using tessera::testing::freePort;
using tessera::testing::waitFor;

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Fast checks: no delay, every 0.2s, 1s timeout, killed after 3 failures.
v1::HealthCheck fastCheck(v1::HealthCheck::Type type) {
  v1::HealthCheck check;
  check.set_type(type);
  check.set_delay_seconds(0);
  check.set_interval_seconds(0.2);
  check.set_timeout_seconds(1);
  check.set_consecutive_failures(3);
  check.set_grace_period_seconds(20);
  return check;
}

v1::HealthCheck httpCheck(uint16_t port, const std::string& path) {
  auto check = fastCheck(v1::HealthCheck::HTTP);
  check.mutable_http()->set_port(port);
  check.mutable_http()->set_path(path);
  return check;
}

// A static file server on `port` serving the sandbox's www/ directory (python's http.server).
std::string httpServer(uint16_t port) {
  return fmt::format(
      "mkdir -p www && echo ok > www/health && cd www && "
      "exec python3 -m http.server {} --bind 127.0.0.1",
      port);
}

bool isHealthUpdate(const v1::TaskStatus& status) {
  return status.state() == v1::TASK_RUNNING &&
         status.reason() == v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED &&
         status.has_healthy();
}

class HealthCheckTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    if (::testing::Test::HasFatalFailure()) return;
    if (::access("/bin/sh", X_OK) != 0) GTEST_SKIP() << "no /bin/sh";
  }

  // Launches task `taskId` running `command` with `check` on the next offer of agent 0.
  void launch(TestFramework& framework, const std::string& taskId, const std::string& command,
              const v1::HealthCheck& check) {
    auto offer = framework.offer();
    ASSERT_TRUE(offer);
    v1::Offer::Operation operation;
    operation.set_type(v1::Offer::Operation::LAUNCH);
    auto* task = operation.mutable_launch()->add_task_infos();
    task->set_name(taskId);
    task->mutable_task_id()->set_value(taskId);
    *task->mutable_agent_id() = offer->agent_id();
    *task->mutable_resources() = api::Resources::parse("cpus:0.1;mem:64").value().toProto();
    task->mutable_command()->set_value(command);
    *task->mutable_health_check() = check;
    task->mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(200'000'000);
    v1::Filters filters;
    filters.set_refuse_seconds(0);
    auto accepted = framework.call([id = offer->id(), operation, filters](
                                       api::SchedulerDriver& driver, api::CallCallback done) {
      driver.accept({id}, {operation}, filters, std::move(done));
    });
    ASSERT_TRUE(accepted) << accepted.toString();
  }

  // The next health update of `taskId` (other updates are skipped).
  std::optional<v1::TaskStatus> healthUpdate(TestFramework& framework, const std::string& taskId) {
    return framework.updateWhere(taskId, isHealthUpdate);
  }

  // The sandbox of `taskId` on agent `slot` (its only run).
  static fs::path sandboxOf(const AgentSlot& slot, const std::string& frameworkId,
                            const std::string& taskId) {
    fs::path runs = slot.workDir / "slaves" / slot.agent->id() / "frameworks" / frameworkId /
                    "executors" / taskId / "runs";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(runs, error)) return entry.path();
    return {};
  }
};

TEST_F(HealthCheckTest, AnHttpCheckReportsHealthAndKillsTheTaskOnceItKeepsFailing) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  const uint16_t port = freePort();
  launch(framework, "web", httpServer(port), httpCheck(port, "/health"));
  ASSERT_FALSE(HasFatalFailure());

  auto healthy = healthUpdate(framework, "web");
  ASSERT_TRUE(healthy) << "no health update";
  EXPECT_TRUE(healthy->healthy());

  // The served file goes: 404s from now on.
  fs::path sandbox = sandboxOf(agentAt(0), framework.frameworkId, "web");
  ASSERT_FALSE(sandbox.empty());
  ASSERT_TRUE(fs::remove(sandbox / "www" / "health"));

  auto unhealthy = framework.updateWhere(
      "web", [](const v1::TaskStatus& s) { return isHealthUpdate(s) && !s.healthy(); });
  ASSERT_TRUE(unhealthy) << "no unhealthy update";
  EXPECT_NE(unhealthy->message().find("404"), std::string::npos) << unhealthy->message();

  auto terminal = framework.terminalUpdate("web");
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED);
  EXPECT_NE(terminal->message().find("health check failed"), std::string::npos)
      << terminal->message();
  EXPECT_TRUE(terminal->has_healthy());
  EXPECT_FALSE(terminal->healthy());
}

TEST_F(HealthCheckTest, AnHttpsCheckReportsHealthOverTls) {
  if (::access("/usr/bin/openssl", X_OK) != 0) {
    TESSERA_SKIP_UNLESS_CI("no /usr/bin/openssl to make the test server's certificate");
  }
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  // A self-signed certificate made in the sandbox, and python's file server behind TLS.
  TempDir scripts;
  const fs::path server = scripts.path() / "tls_server.py";
  std::ofstream(server) << "import http.server, ssl, sys\n"
                           "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
                           "ctx.load_cert_chain('cert.pem', 'key.pem')\n"
                           "srv = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])),\n"
                           "    http.server.SimpleHTTPRequestHandler)\n"
                           "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
                           "srv.serve_forever()\n";
  const uint16_t port = freePort();
  auto check = httpCheck(port, "/cert.pem");
  check.mutable_http()->set_scheme("https");
  launch(framework, "tls",
         fmt::format("/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem "
                     "-out cert.pem -days 1 -subj /CN=localhost 2>/dev/null && "
                     "exec python3 {} {}",
                     server.string(), port),
         check);
  ASSERT_FALSE(HasFatalFailure());
  auto healthy = healthUpdate(framework, "tls");
  ASSERT_TRUE(healthy);
  EXPECT_TRUE(healthy->healthy()) << healthy->message();

  // Served over TLS, so a 404 is an HTTPS answer too.
  fs::path sandbox = sandboxOf(agentAt(0), framework.frameworkId, "tls");
  ASSERT_FALSE(sandbox.empty());
  ASSERT_TRUE(fs::remove(sandbox / "cert.pem"));
  auto unhealthy = framework.updateWhere(
      "tls", [](const v1::TaskStatus& s) { return isHealthUpdate(s) && !s.healthy(); });
  ASSERT_TRUE(unhealthy);
  EXPECT_NE(unhealthy->message().find("HTTPS health check of port"), std::string::npos)
      << unhealthy->message();
  EXPECT_NE(unhealthy->message().find("404"), std::string::npos) << unhealthy->message();
}

TEST_F(HealthCheckTest, ATcpCheckGoesHealthyWhenTheTaskListens) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  const uint16_t port = freePort();
  auto check = fastCheck(v1::HealthCheck::TCP);
  check.mutable_tcp()->set_port(port);
  launch(framework, "listener",
         fmt::format("exec python3 -c \"import socket,time; s=socket.socket(); "
                     "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                     "s.bind(('127.0.0.1', {})); s.listen(64); time.sleep(600)\"",
                     port),
         check);
  ASSERT_FALSE(HasFatalFailure());
  auto healthy = healthUpdate(framework, "listener");
  ASSERT_TRUE(healthy);
  EXPECT_TRUE(healthy->healthy());
}

TEST_F(HealthCheckTest, ATcpCheckOfAPortNobodyListensOnKillsTheTask) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto check = fastCheck(v1::HealthCheck::TCP);
  check.mutable_tcp()->set_port(freePort());
  check.set_grace_period_seconds(0);
  check.set_consecutive_failures(2);
  launch(framework, "deaf", "exec sleep 600", check);
  ASSERT_FALSE(HasFatalFailure());
  auto unhealthy = healthUpdate(framework, "deaf");
  ASSERT_TRUE(unhealthy);
  EXPECT_FALSE(unhealthy->healthy());
  auto terminal = framework.terminalUpdate("deaf");
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED);
  EXPECT_NE(terminal->message().find("health check failed"), std::string::npos)
      << terminal->message();
}

TEST_F(HealthCheckTest, AHangingCommandCheckTimesOutAndCountsAsAFailure) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto check = fastCheck(v1::HealthCheck::COMMAND);
  check.mutable_command()->set_value("exec sleep 100");
  check.set_timeout_seconds(0.3);
  check.set_grace_period_seconds(0);
  check.set_consecutive_failures(2);
  launch(framework, "hangs", "exec sleep 600", check);
  ASSERT_FALSE(HasFatalFailure());
  auto unhealthy = healthUpdate(framework, "hangs");
  ASSERT_TRUE(unhealthy);
  EXPECT_FALSE(unhealthy->healthy());
  EXPECT_NE(unhealthy->message().find("timed out"), std::string::npos) << unhealthy->message();
  auto terminal = framework.terminalUpdate("hangs");
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED);
  EXPECT_NE(terminal->message().find("timed out"), std::string::npos) << terminal->message();
}

TEST_F(HealthCheckTest, ACommandCheckThatSucceedsMakesTheTaskHealthy) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto check = fastCheck(v1::HealthCheck::COMMAND);
  // Runs in the sandbox, with the task's $MESOS_SANDBOX.
  check.mutable_command()->set_value("test -f ready && test \"$PWD\" = \"$MESOS_SANDBOX\"");
  launch(framework, "cmd", "touch ready && exec sleep 600", check);
  ASSERT_FALSE(HasFatalFailure());
  auto healthy = healthUpdate(framework, "cmd");
  ASSERT_TRUE(healthy);
  EXPECT_TRUE(healthy->healthy());
}

TEST_F(HealthCheckTest, ChecksResumeAfterTheAgentRestarts) {
  startCluster(1);
  ASSERT_FALSE(HasFatalFailure());
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  const uint16_t port = freePort();
  launch(framework, "web", httpServer(port), httpCheck(port, "/health"));
  ASSERT_FALSE(HasFatalFailure());
  auto healthy = healthUpdate(framework, "web");
  ASSERT_TRUE(healthy);
  EXPECT_TRUE(healthy->healthy());

  fs::path sandbox = sandboxOf(agentAt(0), framework.frameworkId, "web");
  ASSERT_FALSE(sandbox.empty());
  restartAgent(agentAt(0));
  ASSERT_FALSE(HasFatalFailure());

  // The recovered agent checks again: the failure is seen and the task killed. (The healthy
  // update may come again first: it is resent when its acknowledgement was not checkpointed.)
  ASSERT_TRUE(fs::remove(sandbox / "www" / "health"));
  auto unhealthy = framework.updateWhere(
      "web", [](const v1::TaskStatus& s) { return isHealthUpdate(s) && !s.healthy(); });
  ASSERT_TRUE(unhealthy) << "no unhealthy update after the restart";
  auto terminal = framework.terminalUpdate("web");
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->state(), v1::TASK_KILLED);
  EXPECT_NE(terminal->message().find("health check failed"), std::string::npos)
      << terminal->message();
}

// The COMMAND check's process joins the task's cgroups (the cgroups isolator's, one per
// container) and its PID namespace (namespaces/pid): what it sees of both is what the task sees.
class IsolatedHealthCheckTest : public HealthCheckTest {
 protected:
  void TearDown() override {
    if (agent_) {
      agent_.reset();
      destroyAll();
      host_->stopAll();
      host_.reset();
    }
    HealthCheckTest::TearDown();
  }

  // An agent with the cgroups isolator and PID namespaces; false (and why) if it cannot start.
  bool startIsolatedAgent(std::string& why) {
    const std::string lib = TESSERA_BINARY_DIR "/lib/tessera/";
    const std::string root = fmt::format("tessera_health_test_{}", ::getpid());
    const std::string isolation = "cgroups/cpu,cgroups/mem";
    auto loaded = manager_.load(
        {{lib + "libtessera_containerizer_native.so", kNative, api::Parameters(), "test", {}},
         {lib + "libtessera_isolator_cgroups.so",
          "org_tessera_isolator_cgroups",
          api::Parameters(std::vector<std::pair<std::string, std::string>>{{"isolation", isolation},
                                                                           {"cgroups_root", root}}),
          "test",
          {}}});
    if (!loaded) {
      why = loaded.toString();
      return false;
    }
    workDir_ = dir_.path() / "isolated";
    fs::create_directories(workDir_);
    auto store = state::FileStore::open(workDir_ / "state");
    if (!store) {
      why = store.status().toString();
      return false;
    }
    store_ = std::move(store).value();
    modules::HostServices services;
    services.runtime = &runtime_;
    services.role = "agent";
    services.workDir = workDir_.string();
    services.state = store_.get();
    services.metricsFor = [this](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
      return std::make_unique<runtime::ScopedMetrics>(metrics_, executor);
    };
    services.routerFor = [this](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
      return std::make_unique<net::ExecutorRouter>(router_, executor);
    };
    host_ = std::make_unique<modules::ModuleHost>(manager_, std::move(services));
    auto isolator = host_->create<api::Isolator>("org_tessera_isolator_cgroups");
    if (!isolator) {
      why = isolator.status().toString();
      return false;
    }
    auto containerizer = host_->create<api::Containerizer>(kNative);
    if (!containerizer) {
      why = containerizer.status().toString();
      return false;
    }
    containerizer_ = *containerizer;
    containerizerExecutor_ = host_->executorOf(containerizer_);
    agent::AgentServices agentServices;
    agentServices.runtime = &runtime_;
    agentServices.metrics = &metrics_;
    agentServices.router = router_;
    agentServices.state = store_.get();
    agentServices.containerizers = {{kNative, containerizer_, containerizerExecutor_}};
    agentServices.isolators = {{*isolator, host_->executorOf(*isolator)}};
    agent::AgentOptions options = agentOptions;
    options.workDir = workDir_.string();
    options.hostname = "isolated";
    options.routePrefix = "/slave(9)";
    options.stateRoot = "/agents/9/";
    options.isolation = "namespaces/pid";  // the native containerizer's own
    agent_ = std::make_unique<agent::Agent>(std::move(agentServices), std::move(options));
    auto started = agent_->start();
    if (!started) {
      why = started.toString();
      return false;
    }
    return waitFor([&] { return !agent_->id().empty(); }, kWait);
  }

  void destroyAll() {
    auto* containerizer = containerizer_;
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    containerizerExecutor_->post([containerizer, done] {
      containerizer->containers([containerizer, done](std::vector<std::string> ids) {
        if (ids.empty()) return done->set_value();
        auto left = std::make_shared<size_t>(ids.size());
        for (const auto& id : ids) {
          containerizer->destroy(id, 0ns, [done, left](api::Status) {
            if (--*left == 0) done->set_value();
          });
        }
      });
    });
    future.wait_for(kWait);
  }

  fs::path sandboxOf(const std::string& frameworkId, const std::string& taskId) {
    fs::path runs = workDir_ / "slaves" / agent_->id() / "frameworks" / frameworkId / "executors" /
                    taskId / "runs";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(runs, error)) return entry.path();
    return {};
  }

  TempDir dir_;
  fs::path workDir_;
  modules::ModuleManager manager_;
  runtime::MetricsRegistry metrics_{runtime_.io()};
  std::shared_ptr<net::Router> router_ = std::make_shared<net::Router>();
  std::unique_ptr<state::FileStore> store_;
  std::unique_ptr<modules::ModuleHost> host_;
  api::Containerizer* containerizer_ = nullptr;
  api::Executor* containerizerExecutor_ = nullptr;
  std::unique_ptr<agent::Agent> agent_;
};

TEST_F(IsolatedHealthCheckTest, ACommandCheckRunsInTheTasksCgroupsAndPidNamespace) {
  if (::geteuid() != 0) TESSERA_SKIP_UNLESS_CI("the cgroups isolator needs root");
  startMaster();
  ASSERT_FALSE(HasFatalFailure());
  std::string why;
  if (!startIsolatedAgent(why)) {
    TESSERA_SKIP_UNLESS_CI("no agent with the cgroups isolator: " << why);
  }
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto check = fastCheck(v1::HealthCheck::COMMAND);
  check.mutable_command()->set_value(
      "cat /proc/self/cgroup > check.cgroup.tmp && mv check.cgroup.tmp check.cgroup && "
      "readlink /proc/self/ns/pid > check.pidns.tmp && mv check.pidns.tmp check.pidns");
  launch(framework, "inside",
         "cat /proc/self/cgroup > task.cgroup && readlink /proc/self/ns/pid > task.pidns && "
         "exec sleep 600",
         check);
  ASSERT_FALSE(HasFatalFailure());
  auto healthy = healthUpdate(framework, "inside");
  ASSERT_TRUE(healthy);
  EXPECT_TRUE(healthy->healthy()) << healthy->message();

  fs::path sandbox = sandboxOf(framework.frameworkId, "inside");
  ASSERT_FALSE(sandbox.empty());
  ASSERT_TRUE(waitFor([&] { return fs::exists(sandbox / "check.pidns"); }, kWait));
  const std::string taskCgroups = readFile(sandbox / "task.cgroup");
  const std::string containerId = sandbox.filename().string();
  // The task is in its own cgroups (named after its container), and so is the check.
  EXPECT_NE(taskCgroups.find(containerId), std::string::npos) << taskCgroups;
  EXPECT_EQ(readFile(sandbox / "check.cgroup"), taskCgroups);
  EXPECT_NE(readFile("/proc/self/cgroup"), taskCgroups);
  // ...and in the task's PID namespace, not the agent's.
  const std::string taskNamespace = readFile(sandbox / "task.pidns");
  EXPECT_FALSE(taskNamespace.empty());
  EXPECT_EQ(readFile(sandbox / "check.pidns"), taskNamespace);
  char own[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/pid", own, sizeof own - 1), 0);
  EXPECT_NE(taskNamespace, std::string(own) + "\n");
}

}  // namespace
}  // namespace tessera::kernel::cluster::testing

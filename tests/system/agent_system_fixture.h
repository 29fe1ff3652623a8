#pragma once

// A master and one agent as real processes (`tessera master`, `tessera agent`), and `tessera
// execute` against them, for the system tests of what the agent runs for frameworks (task
// groups, health checks, the fetcher). The agent can be SIGKILLed and started again on the same
// work dir.

#include <errno.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/ci.h"
#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {

class AgentSystemFixture : public ::testing::Test {
 protected:
  void TearDown() override {
    run_.reset();  // SIGKILL: a task it leaves is the agent's to clean up, killed below
    if (agent_) {
      agent_->kill(SIGTERM);
      agent_->wait(std::chrono::seconds(30));
    }
    agent_.reset();
    master_.reset();
    killLeftovers();
  }

  /// SIGKILLs whatever a container of this agent left running (each carries the agent's work
  /// dir in its environment), so a failed test leaves no task behind.
  void killLeftovers() const {
    const std::string marker = agentWorkDir().string();
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
      std::ifstream in(entry.path() / "environ");
      std::string environ((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (environ.find(marker) == std::string::npos) continue;
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") == std::string::npos) {
        ::kill(static_cast<pid_t>(std::stol(name)), SIGKILL);
      }
    }
  }

  std::map<std::string, std::string> env() const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv,
                                     const std::function<bool()>& ready) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    if (!waitFor(ready, std::chrono::seconds(60))) {
      ADD_FAILURE() << "the process did not become ready: " << (*process)->err();
      return nullptr;
    }
    return std::move(process).value();
  }

  static bool httpOk(uint16_t port, const std::string& path) {
    auto response = httpRequest(port, "GET", path);
    return response && response->status == 200;
  }

  void startMaster() {
    master_ = launch({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                      fmt::format("--work_dir={}", (dir_.path() / "master").string()), "--quiet"},
                     [this] { return httpOk(masterPort_, "/state"); });
    ASSERT_TRUE(master_);
  }

  std::filesystem::path agentWorkDir() const { return dir_.path() / "agent"; }

  /// Starts the agent (again, on the same work dir) and waits until the master has it active.
  void startAgent(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "agent",
                                     fmt::format("--port={}", agentPort_),
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--work_dir={}", agentWorkDir().string()),
                                     "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]",
                                     "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    agent_ = launch(std::move(argv), [this] {
      return httpOk(agentPort_, "/state") && activatedAgents(masterPort_) == 1;
    });
    ASSERT_TRUE(agent_);
  }

  /// SIGKILLs the agent and waits until the master has noticed (so a restart re-registers).
  void killAgent() {
    ASSERT_TRUE(agent_);
    agent_->kill(SIGKILL);
    ASSERT_TRUE(agent_->wait(std::chrono::seconds(10)));
    agent_.reset();
  }

  /// `tessera execute` with `args`, not waited for; kept in run_.
  void execute(std::vector<std::string> args) {
    std::vector<std::string> argv = {tesseraBinary().string(), "execute",
                                     fmt::format("--master=127.0.0.1:{}", masterPort_)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    ASSERT_TRUE(process) << process.status().message();
    run_ = std::move(process).value();
  }

  /// Waits until `tessera execute` printed `text`.
  bool waitForOutput(const std::string& text,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return run_ && waitFor([&] { return run_->out().find(text) != std::string::npos; }, timeout);
  }

  bool waitForState(const std::string& taskId, const std::string& state) {
    return waitFor([&] { return taskState(masterPort_, taskId) == state; },
                   std::chrono::seconds(60));
  }

  /// A v1 JSON resource list of cpus and mem.
  static std::string resources(double cpus, double mem) {
    return fmt::format(R"([{{"name":"cpus","type":"SCALAR","scalar":{{"value":{}}}}},)"
                       R"({{"name":"mem","type":"SCALAR","scalar":{{"value":{}}}}}])",
                       cpus, mem);
  }

  /// A v1 TaskInfo as JSON, with `extra` fields (each `"key": value`) appended.
  static std::string taskJson(const std::string& id, const std::string& command, double cpus,
                              double mem, const std::string& extra = "") {
    return fmt::format(
        R"({{"name":"{0}","task_id":{{"value":"{0}"}},"command":{{"value":{1}}},"resources":{2}{3}}})",
        id, jsonString(command), resources(cpus, mem), extra.empty() ? "" : "," + extra);
  }

  /// `text` as a JSON string literal.
  static std::string jsonString(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        default:
          out += c;
      }
    }
    return out + "\"";
  }

  static bool processAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

  /// The pid written to `file`, once it is there; 0 if it never comes.
  static pid_t pidIn(const std::filesystem::path& file) {
    pid_t pid = 0;
    waitFor([&] {
      std::ifstream in(file);
      return static_cast<bool>(in >> pid) && pid > 0;
    });
    return pid;
  }

  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
  std::unique_ptr<Subprocess> master_;
  std::unique_ptr<Subprocess> agent_;
  std::unique_ptr<Subprocess> run_;
};

}  // namespace tessera::testing

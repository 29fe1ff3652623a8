// Keeps the README's examples true. A ``` block preceded by `<!-- readme-test: <name> -->` belongs
// to example <name>:
// - `local`: every line is run against a live `tessera local` and must succeed;
// - `ha`: the zoo.cfg and the commands of the three-ZooKeeper, three-master walkthrough, run as
//   written (on free ports, in a temp dir), then failed over as the prose after them says;
// - `secure`: the credentials, the ACLs and the commands of the secure cluster;
// - `tls`: the CA made with openssl and a master and an agent speaking TLS only.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void replaceAll(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The ``` blocks marked `<!-- readme-test: <name> -->` (one marker per block), in README order,
// each as its non-empty lines.
std::vector<std::vector<std::string>> readmeBlocks(std::string_view name) {
  std::ifstream in(fs::path(TESSERA_SOURCE_DIR) / "README.md");
  const std::string marker = fmt::format("<!-- readme-test: {} -->", name);
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  bool marked = false, inBlock = false;
  while (std::getline(in, line)) {
    if (line.find(marker) != std::string::npos) {
      marked = true;
    } else if (marked && !inBlock && line.rfind("```", 0) == 0) {
      inBlock = true;
      blocks.emplace_back();
    } else if (inBlock && line.rfind("```", 0) == 0) {
      inBlock = marked = false;
    } else if (inBlock && !line.empty()) {
      blocks.back().push_back(line);
    }
  }
  return blocks;
}

std::vector<std::string> readmeCommands() {
  std::vector<std::string> commands;
  for (const auto& block : readmeBlocks("local")) {
    commands.insert(commands.end(), block.begin(), block.end());
  }
  return commands;
}

TEST(ReadmeTest, ExamplesRunAgainstTesseraLocal) {
  auto commands = readmeCommands();
  ASSERT_GE(commands.size(), 3u) << "no marked examples found in README.md";

  TempDir config;
  uint16_t port = freePort();
  uint16_t marathonPort = freePort();
  uint16_t chronosPort = freePort();
  auto daemon =
      Subprocess::start({{tesseraBinary().string(), "local", "--port=" + std::to_string(port),
                          "--marathon_port=" + std::to_string(marathonPort),
                          "--chronos_port=" + std::to_string(chronosPort)},
                         {{"TESSERA_CONFIG_DIR", config.path().string()}},
                         {},
                         std::nullopt});
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(waitFor([&] {
    auto health = httpRequest(port, "GET", "/health");
    auto marathon = httpRequest(marathonPort, "GET", "/ping");
    auto chronos = httpRequest(chronosPort, "GET", "/scheduler/jobs");
    return health && health->status == 200 && marathon && marathon->status == 200 && chronos &&
           chronos->status == 200;
  })) << (*daemon)->err();

  for (std::string command : commands) {
    // The README speaks of the default port and build dir; the test uses its own.
    replaceAll(command, "localhost:5050", fmt::format("localhost:{}", port));
    replaceAll(command, "127.0.0.1:5050", fmt::format("127.0.0.1:{}", port));
    replaceAll(command, "localhost:8080", fmt::format("localhost:{}", marathonPort));
    replaceAll(command, "localhost:4400", fmt::format("localhost:{}", chronosPort));
    replaceAll(command, "build/bin/tessera", tesseraBinary().string());
    auto shell = Subprocess::start({{"/bin/sh", "-c", command},
                                    {{"TESSERA_CONFIG_DIR", config.path().string()}},
                                    {},
                                    fs::path(TESSERA_SOURCE_DIR)});
    ASSERT_TRUE(shell);
    ASSERT_TRUE((*shell)->wait(std::chrono::seconds(60))) << command;
    EXPECT_EQ((*shell)->exitCode(), 0) << command << "\n" << (*shell)->out() << (*shell)->err();
  }
  (*daemon)->kill(SIGTERM);
  ASSERT_TRUE((*daemon)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*daemon)->exitCode(), 0);
}

// Replaces each `from` of `table` by its `to` in one pass over `text`, so that a replacement is
// never replaced again (a free port may contain "2888"); at one position the first entry wins.
std::string substitute(const std::string& text,
                       const std::vector<std::pair<std::string, std::string>>& table) {
  std::string out;
  for (size_t at = 0; at < text.size();) {
    auto hit = std::find_if(table.begin(), table.end(), [&](const auto& entry) {
      return text.compare(at, entry.first.size(), entry.first) == 0;
    });
    if (hit == table.end()) {
      out += text[at++];
    } else {
      out += hit->second;
      at += hit->first.size();
    }
  }
  return out;
}

// The value of `--flag=value` in a command line, "" when absent.
std::string flagValue(const std::string& line, const std::string& flag) {
  auto at = line.find(flag + "=");
  if (at == std::string::npos) return "";
  at += flag.size() + 1;
  return line.substr(at, line.find_first_of(" \t\"'", at) - at);
}

// NAME for a line `NAME=value` (a shell variable assignment), "" otherwise.
std::string assignedVariable(const std::string& line) {
  const auto equals = line.find('=');
  if (equals == std::string::npos || equals == 0 || std::isdigit(line[0])) return "";
  for (size_t i = 0; i < equals; ++i) {
    if (!std::isalnum(static_cast<unsigned char>(line[i])) && line[i] != '_') return "";
  }
  return line.substr(0, equals);
}

std::string tail(const std::string& text, size_t bytes = 1500) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

// The README's HA walkthrough played on this machine: its ports become free ones, its paths the
// temp dir's, its terminals children of the test.
class HaWalkthrough {
 public:
  static constexpr int kZooKeepers = 3;
  static constexpr std::chrono::milliseconds kRequestTimeout = 3s;

  HaWalkthrough() {
    std::set<uint16_t> taken;
    auto port = [&] {
      uint16_t chosen;
      do {
        chosen = freePort();
      } while (!taken.insert(chosen).second);
      return std::to_string(chosen);
    };
    // The README's ports, paths and build dir, and this run's.
    for (const char* readme : {"2181", "2182", "2183", "2888", "2889", "2890", "3888", "3889",
                               "3890", "5050", "5060", "5070", "5051"}) {
      table_.emplace_back(readme, port());
    }
    for (const char* readme : {"/var/lib/zookeeper/", "/etc/zookeeper/", "/var/lib/tessera/"}) {
      table_.emplace_back(readme, (dir_.path() / fs::path(readme).relative_path()).string());
    }
    table_.emplace_back("build/bin/tessera", tesseraBinary().string());
    env_ = {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  ~HaWalkthrough() {
    // A test that failed half-way: Ctrl-C kills the task rather than leave its `sleep` behind.
    if (execute && execute->running()) {
      execute->kill(SIGINT);
      execute->wait(10s);
    }
  }

  // README text as this run (and, for 1..3, ZooKeeper server `server`, the README showing zk1's)
  // sees it.
  std::string localize(const std::string& text, int server = 0) const {
    auto table = table_;
    if (server > 0) {
      table.insert(table.begin(), {{"zk1", fmt::format("zk{}", server)},
                                   {"2181", table_[static_cast<size_t>(server) - 1].second}});
    }
    return substitute(text, table);
  }

  // Writes ZooKeeper server `server`'s zoo.cfg from the README's, where the README's command line
  // expects it, and the `myid` in its dataDir. Test-only additions: loopback only and no admin
  // server (Jetty's :8080 is one port for every server on the machine).
  void writeZooCfg(const std::vector<std::string>& block, int server) {
    std::string config;
    for (const auto& line : block) {
      const std::string local = localize(line, server);
      config += local + "\n";
      if (local.rfind("dataDir=", 0) == 0) {
        fs::path dataDir = local.substr(std::string("dataDir=").size());
        fs::create_directories(dataDir);
        std::ofstream(dataDir / "myid") << server << "\n";
      }
    }
    config += "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n";
    const fs::path path = localize("/etc/zookeeper/zk1/zoo.cfg", server);
    fs::create_directories(path.parent_path());
    std::ofstream(path) << config;
  }

  // Starts `line` (localized) in the background, as a terminal of its own; the process is the
  // command itself (`exec`), so signals reach it.
  std::unique_ptr<Subprocess> start(const std::string& line,
                                    std::map<std::string, std::string> extraEnv = {}) {
    auto env = env_;
    env.insert(extraEnv.begin(), extraEnv.end());
    auto process = Subprocess::start({{"/bin/sh", "-c", "exec " + line}, env, {}, dir_.path()});
    EXPECT_TRUE(process) << line << ": " << process.status().toString();
    return process ? std::move(*process) : nullptr;
  }

  // Runs `line` (localized) to completion: its exit code (-1: still running after a minute) and
  // stdout, stderr.
  std::tuple<int, std::string, std::string> run(const std::string& line) {
    auto process = Subprocess::start({{"/bin/sh", "-c", line}, env_, {}, dir_.path()});
    if (!process) return {-1, "", process.status().toString()};
    if (!(*process)->wait(60s)) return {-1, (*process)->out(), (*process)->err()};
    return {(*process)->exitCode().value_or(-1), (*process)->out(), (*process)->err()};
  }

  // `NAME=value`: evaluated by the shell, NAME is then set for every later line.
  void assign(const std::string& name, const std::string& line) {
    auto [code, out, err] = run(line + "\nprintf '%s' \"$" + name + "\"");
    EXPECT_EQ(code, 0) << line << "\n" << err;
    env_[name] = out;
  }

  // False once a ZooKeeper server has exited (a config it rejects, a port taken).
  bool zooKeepersRunning() {
    return std::all_of(zooKeepers.begin(), zooKeepers.end(),
                       [](const auto& server) { return server && server->running(); });
  }

  // The port of the one running master whose /state says it leads; 0 when none or several do.
  uint16_t leader() {
    uint16_t leader = 0;
    int count = 0;
    for (auto& [port, master] : masters) {
      if (!master || !master->running()) continue;
      auto state = getJson(port, "/state", kRequestTimeout);
      if (state && state->has("leader") &&
          state->getValue<std::string>("leader") == state->getValue<std::string>("pid")) {
        leader = port;
        ++count;
      }
    }
    return count == 1 ? leader : 0;
  }

  // The tails of every process's output, for failure messages.
  std::string diagnostics() const {
    std::string text;
    auto add = [&](const std::string& who, const std::unique_ptr<Subprocess>& process) {
      if (!process) return;
      text += fmt::format("--- {}:\n{}{}\n", who, tail(process->out()), tail(process->err()));
    };
    for (size_t i = 0; i < zooKeepers.size(); ++i) add(fmt::format("zk{}", i + 1), zooKeepers[i]);
    for (const auto& [port, master] : masters) add(fmt::format("master :{}", port), master);
    add("agent", agent);
    add("execute", execute);
    return text;
  }

  // Declared first so that they go last, once every process below is gone.
 private:
  TempDir dir_;
  TempDir config_;
  std::vector<std::pair<std::string, std::string>> table_;  // README text -> this run's
  std::map<std::string, std::string> env_;                  // and the block's variables

  // Stopped in reverse: the task's framework, the agent, the masters, then ZooKeeper.
 public:
  std::vector<std::unique_ptr<Subprocess>> zooKeepers;
  std::map<uint16_t, std::unique_ptr<Subprocess>> masters;  // by port
  std::unique_ptr<Subprocess> agent;
  std::unique_ptr<Subprocess> execute;
};

TEST(ReadmeTest, HaWalkthroughElectsFailsOverAndResolves) {
  TESSERA_REQUIRE_ZOOKEEPER();
  const auto blocks = readmeBlocks("ha");
  ASSERT_EQ(blocks.size(), 2u)
      << "README.md: want the marked zoo.cfg and commands of the HA section";
  const auto& zooCfg = blocks[0];
  const auto& commands = blocks[1];

  HaWalkthrough walk;
  std::string resolveLine, taskName;
  bool redirectChecked = false;
  for (const std::string& readmeLine : commands) {
    SCOPED_TRACE(readmeLine);
    const std::string line = walk.localize(readmeLine);
    if (line.find("QuorumPeerMain") != std::string::npos) {
      // "# and zk2, zk3": the same command line with each one's config.
      for (int server = 1; server <= HaWalkthrough::kZooKeepers; ++server) {
        walk.writeZooCfg(zooCfg, server);
        walk.zooKeepers.push_back(walk.start(
            walk.localize(readmeLine, server),
            {{"JAVA_TOOL_OPTIONS", "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"}}));
        ASSERT_TRUE(walk.zooKeepers.back());
      }
    } else if (auto name = assignedVariable(line); !name.empty()) {
      walk.assign(name, line);
    } else if (line.find("tessera master") != std::string::npos) {
      const auto port = static_cast<uint16_t>(std::stoi(flagValue(line, "--port")));
      auto& master = walk.masters[port] = walk.start(line);
      ASSERT_TRUE(master);
      // Healthy once it has reached ZooKeeper (which needs a quorum of the three servers).
      bool healthy = false;
      waitFor(
          [&] {
            auto health = httpRequest(port, "GET", "/health", "", HaWalkthrough::kRequestTimeout);
            healthy = health && health->status == 200;
            return healthy || !walk.zooKeepersRunning();
          },
          90s);
      ASSERT_TRUE(healthy && walk.zooKeepersRunning()) << walk.diagnostics();
    } else if (line.find("tessera agent") != std::string::npos) {
      walk.agent = walk.start(line);
      ASSERT_TRUE(walk.agent);
      ASSERT_TRUE(waitFor(
          [&] {
            const uint16_t leader = walk.leader();
            return leader != 0 && activatedAgents(leader, HaWalkthrough::kRequestTimeout) == 1;
          },
          60s))
          << walk.diagnostics();
    } else if (line.find("tessera execute") != std::string::npos) {
      taskName = flagValue(line, "--name");
      walk.execute = walk.start(line);
      ASSERT_TRUE(walk.execute);
      ASSERT_TRUE(waitFor(
          [&] {
            const uint16_t leader = walk.leader();
            return leader != 0 &&
                   taskState(leader, taskName, HaWalkthrough::kRequestTimeout) == "TASK_RUNNING";
          },
          60s))
          << walk.diagnostics();
    } else {
      // A one-shot command, typed once the masters have settled on a leader.
      uint16_t leader = 0;
      if (!walk.masters.empty()) {
        ASSERT_TRUE(waitFor([&] { return (leader = walk.leader()) != 0; }, 60s))
            << walk.diagnostics();
      }
      auto [code, out, err] = walk.run(line);
      EXPECT_EQ(code, 0) << out << err;
      if (line.find("tessera resolve") != std::string::npos) {
        resolveLine = line;
        EXPECT_EQ(out, fmt::format("127.0.0.1:{}\n", leader)) << err;
      } else if (line.find("/master/redirect") != std::string::npos) {
        redirectChecked = true;
        EXPECT_THAT(out, ::testing::StartsWith("HTTP/1.1 307 "));
        EXPECT_THAT(out, ::testing::HasSubstr(fmt::format("Location: //127.0.0.1:{}\r\n", leader)));
      }
    }
  }
  // The walkthrough as the issue and the prose promise it.
  ASSERT_EQ(walk.zooKeepers.size(), 3u);
  ASSERT_EQ(walk.masters.size(), 3u);
  ASSERT_TRUE(walk.agent && walk.execute) << "the commands start no agent or no task";
  ASSERT_FALSE(resolveLine.empty()) << "the commands have no `tessera resolve`";
  ASSERT_TRUE(redirectChecked) << "the commands ask no /master/redirect";

  // "Kill the leader (`kill -9`): within about `--zk_session_timeout` another master leads, the
  // agent re-registers with it bringing its running task, and `tessera execute` re-subscribes".
  const uint16_t first = walk.leader();
  ASSERT_NE(first, 0);
  walk.masters[first]->kill(SIGKILL);
  ASSERT_TRUE(walk.masters[first]->wait(10s));
  uint16_t second = 0;
  ASSERT_TRUE(waitFor([&] { return (second = walk.leader()) != 0; }, 60s)) << walk.diagnostics();
  ASSERT_NE(second, first);
  ASSERT_TRUE(
      waitFor([&] { return activatedAgents(second, HaWalkthrough::kRequestTimeout) == 1; }, 60s))
      << walk.diagnostics();
  ASSERT_TRUE(waitFor(
      [&] { return taskState(second, taskName, HaWalkthrough::kRequestTimeout) == "TASK_RUNNING"; },
      60s))
      << walk.diagnostics();
  ASSERT_TRUE(waitFor(
      [&] {
        auto out = walk.execute->out();
        return out.find("Subscribed") != out.rfind("Subscribed");  // twice
      },
      60s))
      << walk.diagnostics();
  // The same `tessera resolve` now names the new leader.
  std::string resolved;
  EXPECT_TRUE(waitFor(
      [&] {
        resolved = std::get<1>(walk.run(resolveLine));
        return resolved == fmt::format("127.0.0.1:{}\n", second);
      },
      60s))
      << resolved;

  // Ctrl-C on `tessera execute` kills its task (no `sleep` outlives the test).
  walk.execute->kill(SIGINT);
  ASSERT_TRUE(walk.execute->wait(30s)) << walk.diagnostics();
  EXPECT_TRUE(waitFor(
      [&] { return taskState(second, taskName, HaWalkthrough::kRequestTimeout) == "TASK_KILLED"; },
      30s))
      << walk.diagnostics();
}

// The README's secure cluster: its credentials and ACL files and its commands, run as written
// (on free ports, in a temp dir); each `# NNN` comment is the status the line must print, and
// no output of any of it may hold a secret but the lines that pass one.
// Runs README `line` with a shell in `dir` and expects it to exit 0 and, when it ends in a
// `# text` comment, to print exactly that text; `out` is what it printed.
void runShellLine(const std::string& line, const std::map<std::string, std::string>& env,
                  const fs::path& dir, std::string& out) {
  auto shell = Subprocess::start({{"/bin/sh", "-c", line}, env, {}, dir});
  ASSERT_TRUE(shell);
  ASSERT_TRUE((*shell)->wait(std::chrono::seconds(60)));
  out = (*shell)->out();
  EXPECT_EQ((*shell)->exitCode(), 0) << out << (*shell)->err();
  if (auto comment = line.rfind("# "); comment != std::string::npos) {
    std::string expected = line.substr(comment + 2);
    while (!expected.empty() && std::isspace(static_cast<unsigned char>(expected.back()))) {
      expected.pop_back();
    }
    EXPECT_EQ(out, expected) << (*shell)->err();
  }
}

TEST(ReadmeTest, SecureClusterAuthenticatesAndAuthorizes) {
  const auto blocks = readmeBlocks("secure");
  ASSERT_EQ(blocks.size(), 3u) << "README.md: want the credentials, the ACLs and the commands";
  TempDir dir;
  auto join = [](const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    return text;
  };
  std::ofstream(dir.path() / "credentials") << join(blocks[0]);
  std::ofstream(dir.path() / "acls.json") << join(blocks[1]);
  std::vector<std::string> secrets;
  for (const auto& line : blocks[0]) {
    secrets.push_back(line.substr(line.find(' ') + 1));
    if (line.rfind("agent ", 0) == 0) std::ofstream(dir.path() / "agent-credential") << line;
  }
  const uint16_t masterPort = freePort();
  const uint16_t agentPort = freePort();
  const std::vector<std::pair<std::string, std::string>> table = {
      {"/etc/tessera", dir.path().string()},
      {"/var/lib/tessera", dir.path().string()},
      {"localhost:5050", fmt::format("localhost:{}", masterPort)},
      {"127.0.0.1:5050", fmt::format("127.0.0.1:{}", masterPort)},
      {"--port=5050", fmt::format("--port={}", masterPort)},
      {"--port=5051", fmt::format("--port={}", agentPort)},
      {"build/bin/tessera", tesseraBinary().string()}};
  const std::map<std::string, std::string> env = {{"TESSERA_CONFIG_DIR", dir.path().string()}};
  std::vector<std::unique_ptr<Subprocess>> daemons;
  std::string outputs;
  const std::string opsSecret = secrets.at(0);
  auto activated = [&] {
    auto shell = Subprocess::start(
        {{"/bin/sh", "-c",
          fmt::format("curl -s -u ops:{} localhost:{}/state", opsSecret, masterPort)},
         env,
         {},
         dir.path()});
    if (!shell || !(*shell)->wait(std::chrono::seconds(20))) return false;
    return (*shell)->out().find("\"activated_slaves\":1") != std::string::npos;
  };
  for (const std::string& readmeLine : blocks[2]) {
    SCOPED_TRACE(readmeLine);
    const std::string line = substitute(readmeLine, table);
    if (line.find("tessera master") != std::string::npos ||
        line.find("tessera agent") != std::string::npos) {
      auto daemon = Subprocess::start({{"/bin/sh", "-c", "exec " + line}, env, {}, dir.path()});
      ASSERT_TRUE(daemon);
      daemons.push_back(std::move(daemon).value());
      const bool master = line.find("tessera master") != std::string::npos;
      ASSERT_TRUE(waitFor(
          [&] {
            if (!master) return activated();
            auto health = httpRequest(masterPort, "GET", "/health");
            return health && health->status == 200;
          },
          60s))
          << daemons.back()->err();
      continue;
    }
    std::string out;
    ASSERT_NO_FATAL_FAILURE(runShellLine(line, env, dir.path(), out));
    if (line.find("tessera execute") != std::string::npos) {
      EXPECT_THAT(out, ::testing::HasSubstr("TASK_FINISHED"));
    }
  }
  for (auto& daemon : daemons) {
    daemon->kill(SIGTERM);
    EXPECT_TRUE(daemon->wait(std::chrono::seconds(30)));
    outputs += daemon->out() + daemon->err();
  }
  for (const auto& secret : secrets) {
    EXPECT_EQ(outputs.find(secret), std::string::npos) << "secret leaked into:\n" << outputs;
  }
}

// The README's TLS cluster: the CA and certificate made with the openssl command line, a master
// with --ssl_* flags and an agent with LIBPROCESS_SSL_* variables (on free ports, in a temp
// dir); each `# NNN` comment is what the line must print. The agent registering over TLS shows
// that it trusted the master's certificate.
TEST(ReadmeTest, TlsClusterFromTheCaOnwards) {
  const auto blocks = readmeBlocks("tls");
  ASSERT_EQ(blocks.size(), 1u) << "README.md: want the TLS walkthrough's commands";
  TempDir dir;
  const uint16_t masterPort = freePort();
  const uint16_t agentPort = freePort();
  const std::vector<std::pair<std::string, std::string>> table = {
      {"/etc/tessera", dir.path().string()},
      {"/var/lib/tessera", dir.path().string()},
      {"127.0.0.1:5050", fmt::format("127.0.0.1:{}", masterPort)},
      {"--port=5050", fmt::format("--port={}", masterPort)},
      {"--port=5051", fmt::format("--port={}", agentPort)},
      {"build/bin/tessera", tesseraBinary().string()}};
  const std::map<std::string, std::string> env = {{"TESSERA_CONFIG_DIR", dir.path().string()}};
  // What curl --cacert reads from the master at `path` (empty on failure).
  auto overTls = [&](const std::string& path) {
    auto shell =
        Subprocess::start({{"/bin/sh", "-c",
                            fmt::format("curl -s --cacert {}/tls/ca.crt https://127.0.0.1:{}{}",
                                        dir.path().string(), masterPort, path)},
                           env,
                           {},
                           dir.path()});
    if (!shell || !(*shell)->wait(std::chrono::seconds(20))) return std::string();
    return (*shell)->out();
  };
  std::vector<std::unique_ptr<Subprocess>> daemons;
  for (const std::string& readmeLine : blocks[0]) {
    SCOPED_TRACE(readmeLine);
    const std::string line = substitute(readmeLine, table);
    if (line.find("tessera master") != std::string::npos ||
        line.find("tessera agent") != std::string::npos) {
      // `exec` before the binary (after any VAR=value in front): the signal reaches tessera.
      std::string command = line;
      const std::string binary = tesseraBinary().string();
      command.replace(command.find(binary), binary.size(), "exec " + binary);
      auto daemon = Subprocess::start({{"/bin/sh", "-c", command}, env, {}, dir.path()});
      ASSERT_TRUE(daemon);
      daemons.push_back(std::move(daemon).value());
      const bool master = line.find("tessera master") != std::string::npos;
      ASSERT_TRUE(waitFor(
          [&] {
            if (master) return overTls("/version").find("\"version\"") != std::string::npos;
            return overTls("/state").find("\"activated_slaves\":1") != std::string::npos;
          },
          60s))
          << daemons.back()->err();
      continue;
    }
    std::string out;
    ASSERT_NO_FATAL_FAILURE(runShellLine(line, env, dir.path(), out));
  }
  EXPECT_EQ(daemons.size(), 2u);
  for (auto& daemon : daemons) {
    daemon->kill(SIGTERM);
    EXPECT_TRUE(daemon->wait(std::chrono::seconds(30)));
  }
}

}  // namespace
}  // namespace tessera::testing

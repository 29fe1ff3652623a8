// System tests of the `tessera` binary: real processes, real sockets on loopback.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const fs::path kTestModules = fs::path(TESSERA_BINARY_DIR) / "tests" / "modules";

std::string manifestFor(const std::string& target, const std::string& name) {
  return fmt::format(R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "{}"}}]}}]}})",
                     (kTestModules / ("lib" + target + ".so")).string(), name);
}

// Runs tessera to completion (a command that is expected to end by itself).
std::unique_ptr<Subprocess> runToEnd(std::vector<std::string> args,
                                     std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), tesseraBinary().string());
  auto process = Subprocess::start({args, env, {"TESSERA_CONFIG_DIR"}, std::nullopt});
  EXPECT_TRUE(process) << process.status().toString();
  EXPECT_TRUE((*process)->wait(std::chrono::seconds(60))) << "tessera did not exit";
  return std::move(process).value();
}

// A `tessera local` on a free port, stopped with SIGKILL if a test fails half-way.
class LocalDaemon {
 public:
  explicit LocalDaemon(std::vector<std::string> extra = {},
                       std::map<std::string, std::string> env = {},
                       fs::path binary = tesseraBinary())
      : port_(freePort()) {
    // Marathon and Chronos off: their default ports (8080, 4400) are not free in parallel tests.
    std::vector<std::string> args = {binary.string(), "local", "--port=" + std::to_string(port_),
                                     "--marathon_port=0", "--chronos_port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    env["TESSERA_CONFIG_DIR"] = config_.path().string();
    auto started = Subprocess::start({args, env, {}, std::nullopt});
    EXPECT_TRUE(started) << started.status().toString();
    process_ = std::move(started).value();
  }

  /// Waits until /health answers 200; false if the process died or time ran out.
  bool ready() {
    return waitFor([&] {
             if (!process_->running()) return true;
             auto response = httpRequest(port_, "GET", "/health");
             return response && response->status == 200;
           }) &&
           process_->running();
  }

  uint16_t port() const { return port_; }
  Subprocess& process() { return *process_; }

 private:
  uint16_t port_;
  TempDir config_;
  std::unique_ptr<Subprocess> process_;
};

Poco::JSON::Object::Ptr parseObject(const std::string& body) {
  Poco::JSON::Parser parser;
  return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
}

TEST(CliTest, ModulesListsTheDefaultManifest) {
  auto process = runToEnd({"modules"});
  EXPECT_EQ(process->exitCode(), 0) << process->err();
  EXPECT_THAT(process->out(), HasSubstr("org_tessera_system_metrics"));
  EXPECT_THAT(process->out(), HasSubstr("anonymous"));
  EXPECT_THAT(process->out(), HasSubstr("libtessera_system_metrics.so"));
  EXPECT_THAT(process->out(), HasSubstr("org_tessera_allocator_drf"));
  EXPECT_THAT(process->out(), HasSubstr("allocation_interval=1secs"));
}

// The header's column starts: where each of its words begins.
std::vector<size_t> columnStarts(const std::string& header) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] != ' ' && (i == 0 || header[i - 1] == ' ')) starts.push_back(i);
  }
  return starts;
}

// Every row of `tessera modules`' table has a cell starting exactly under each header word
// (the cells themselves hold no blanks here), and there are at least `minRows` rows.
void expectColumnsLineUp(const std::string& table, size_t minRows) {
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), minRows + 1) << table;
  auto starts = columnStarts(lines[0]);
  ASSERT_EQ(starts.size(), 5u) << lines[0];
  for (size_t row = 1; row < lines.size(); ++row) {
    const std::string& line = lines[row];
    // The last column (parameters) may be empty; the four others are always there.
    auto cells = columnStarts(line);
    ASSERT_GE(cells.size(), 4u) << line;
    std::vector<size_t> expected(starts.begin(),
                                 starts.begin() + std::min(cells.size(), starts.size()));
    EXPECT_EQ(cells, expected) << "row " << row << " out of line with the header:\n" << table;
    EXPECT_EQ(line.find_last_not_of(' '), line.size() - 1) << "trailing blanks: '" << line << "'";
  }
}

TEST(CliTest, ModulesTableLinesUpWithTheDefaultManifest) {
  // org_tessera_containerizer_native is wider than the 30 columns the table once had.
  auto process = runToEnd({"modules"});
  ASSERT_EQ(process->exitCode(), 0) << process->err();
  expectColumnsLineUp(process->out(), 5);
}

TEST(CliTest, ModulesTableLinesUpWithLongNamesAndPaths) {
  // A library path far longer than any fixed column, beside a short one.
  TempDir dir;
  fs::path deep = dir.path() / std::string(80, 'd');
  fs::create_directories(deep);
  fs::copy_file(kTestModules / "libtest_good_other.so", deep / "libtest_good_other.so");
  auto manifest = dir.write(
      "m.json",
      fmt::format(R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_test_good",
      "parameters": [{{"key": "greeting", "value": "hej"}}]}}]}}, {{"file": "{}", "modules":
      [{{"name": "org_tessera_test_other"}}]}}]}})",
                  (kTestModules / "libtest_good.so").string(),
                  (deep / "libtest_good_other.so").string()));
  auto process = runToEnd({"modules", "--modules=" + manifest.string()});
  ASSERT_EQ(process->exitCode(), 0) << process->err();
  EXPECT_THAT(process->out(), HasSubstr("greeting=hej"));
  expectColumnsLineUp(process->out(), 2);
}

TEST(CliTest, ModulesPrintsJsonWithParameters) {
  TempDir dir;
  auto manifest =
      dir.write("m.json", fmt::format(R"({{"libraries": [{{"file": "{}", "modules": [{{"name":
      "org_tessera_test_good", "parameters": [{{"key": "greeting", "value": "hej"}}]}}]}}]}})",
                                      (kTestModules / "libtest_good.so").string()));
  auto process = runToEnd({"modules", "--json", "--modules=" + manifest.string()});
  ASSERT_EQ(process->exitCode(), 0) << process->err();
  Poco::JSON::Parser parser;
  auto list = parser.parse(process->out()).extract<Poco::JSON::Array::Ptr>();
  ASSERT_EQ(list->size(), 1u);
  auto module = list->getObject(0);
  EXPECT_EQ(module->getValue<std::string>("name"), "org_tessera_test_good");
  EXPECT_EQ(module->getValue<std::string>("kind"), "anonymous");
  EXPECT_EQ(module->getArray("parameters")->getObject(0)->getValue<std::string>("value"), "hej");
}

struct BrokenCase {
  std::string command;  // "modules" fails at load; "local" also runs factories
  std::string target;
  std::string name;
  std::string reason;
};

void PrintTo(const BrokenCase& c, std::ostream* out) { *out << c.command << " " << c.target; }

class CliBrokenModuleTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(CliBrokenModuleTest, ExitsWithOneLineNamingFileModuleAndReason) {
  const BrokenCase& c = GetParam();
  std::string library = (kTestModules / ("lib" + c.target + ".so")).string();
  std::vector<std::string> args = {c.command, "--modules=" + manifestFor(c.target, c.name)};
  if (c.command == "local") args.push_back("--port=0");
  auto process = runToEnd(args);
  EXPECT_EQ(process->exitCode(), 1);
  std::string err = process->err();
  std::string firstLine = err.substr(0, err.find('\n'));
  EXPECT_THAT(firstLine, StartsWith("tessera " + c.command + ": module library '" + library));
  EXPECT_THAT(firstLine, HasSubstr("'" + c.name + "'"));
  EXPECT_THAT(firstLine, HasSubstr(c.reason));
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, CliBrokenModuleTest,
    ::testing::Values(BrokenCase{"modules", "test_no_symbol", "org_tessera_test_no_symbol",
                                 "no 'tessera_module_descriptor' symbol"},
                      BrokenCase{"modules", "test_api_version", "org_tessera_test_api_version",
                                 "built for module API version"},
                      BrokenCase{"modules", "test_fingerprint", "org_tessera_test_fingerprint",
                                 "boost is 999999 in the module"},
                      BrokenCase{"modules", "test_kind", "org_tessera_test_kind",
                                 "unknown kind 'frobnicator'"},
                      BrokenCase{"modules", "does_not_exist", "org_x", "cannot load"},
                      BrokenCase{"local", "test_factory_error", "org_tessera_test_factory_error",
                                 "factory failed: parameter 'size' is required"},
                      BrokenCase{"local", "test_factory_throws", "org_tessera_test_factory_throws",
                                 "factory threw: out of widgets"}),
    [](const auto& info) { return info.param.command + "_" + info.param.target; });

TEST(CliTest, DuplicateModuleNamesAreRefused) {
  TempDir dir;
  auto manifest = dir.write("m.json", fmt::format(R"({{"libraries": [
        {{"file": "{0}/libtest_good.so", "modules": [{{"name": "org_tessera_test_good"}}]}},
        {{"file": "{0}/libtest_duplicate.so", "modules": [{{"name": "org_tessera_test_good"}}]}}]}})",
                                                  kTestModules.string()));
  auto process = runToEnd({"modules", "--modules=" + manifest.string()});
  EXPECT_EQ(process->exitCode(), 1);
  EXPECT_THAT(process->err(), HasSubstr("duplicate module name, already loaded from '" +
                                        (kTestModules / "libtest_good.so").string() + "'"));
}

TEST(CliTest, UnknownFlagIsNamed) {
  auto process = runToEnd({"local", "--bogus=1"});
  EXPECT_EQ(process->exitCode(), 1);
  EXPECT_THAT(process->err(), HasSubstr("unknown flag '--bogus'"));
}

TEST(CliTest, BadFlagValueIsNamed) {
  auto process = runToEnd({"local", "--port=99999"});
  EXPECT_EQ(process->exitCode(), 1);
  EXPECT_THAT(process->err(), HasSubstr("flag '--port'"));
}

TEST(CliTest, BadIpAndPingTimeoutsAreRefusedNamingTheFlag) {
  auto ip = runToEnd({"local", "--ip=999.1.1.1"});
  EXPECT_EQ(ip->exitCode(), 1);
  EXPECT_THAT(ip->err(), HasSubstr("flag '--ip': '999.1.1.1' is not an IP address"));
  auto timeouts = runToEnd({"local", "--max_agent_ping_timeouts=0"});
  EXPECT_EQ(timeouts->exitCode(), 1);
  EXPECT_THAT(timeouts->err(), HasSubstr("flag '--max_agent_ping_timeouts': 0 is less than"));
}

TEST(CliTest, ModulesPointingAtABinaryIsNotValidJsonAndEchoesNoBinary) {
  auto process = runToEnd({"modules", "--modules=" + tesseraBinary().string()});
  EXPECT_EQ(process->exitCode(), 1);
  std::string err = process->err();
  EXPECT_THAT(err, HasSubstr("modules manifest '" + tesseraBinary().string() + "'"));
  EXPECT_THAT(err, HasSubstr("is not valid JSON"));
  EXPECT_TRUE(std::all_of(err.begin(), err.end(), [](char c) {
    return c == '\n' || (c >= 0x20 && c < 0x7f);
  })) << err;
  EXPECT_LT(err.size(), 1000u);
}

TEST(CliTest, UnknownCommandShowsUsage) {
  auto process = runToEnd({"frobnicate"});
  EXPECT_EQ(process->exitCode(), 2);
  EXPECT_THAT(process->err(), HasSubstr("unknown command 'frobnicate'"));
}

TEST(CliTest, MesosAliasRunsTheCommand) {
  TempDir dir;
  fs::create_symlink(tesseraBinary(), dir.path() / "mesos-local");
  auto process = Subprocess::start({{(dir.path() / "mesos-local").string(), "--help"}, {}, {}, {}});
  ASSERT_TRUE(process);
  ASSERT_TRUE((*process)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*process)->exitCode(), 0);
  EXPECT_THAT((*process)->out(), HasSubstr("Usage: tessera local"));
  EXPECT_THAT((*process)->out(), HasSubstr("--work_dir"));
}

TEST(CliTest, LocalServesTheSharedEndpointsAndStopsOnSigterm) {
  LocalDaemon daemon;
  ASSERT_TRUE(daemon.ready()) << daemon.process().err();

  auto snapshot = httpRequest(daemon.port(), "GET", "/metrics/snapshot");
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->status, 200);
  auto metrics = parseObject(snapshot->body);
  EXPECT_GE(metrics->getValue<double>("system/cpus_total"), 1.0);
  EXPECT_GT(metrics->getValue<double>("system/mem_total_bytes"), 0.0);

  auto prometheus = httpRequest(daemon.port(), "GET", "/metrics");
  ASSERT_TRUE(prometheus);
  EXPECT_EQ(prometheus->status, 200);
  EXPECT_THAT(prometheus->body, HasSubstr("tessera_system_cpus_total"));

  auto version = httpRequest(daemon.port(), "GET", "/version");
  ASSERT_TRUE(version);
  auto versionJson = parseObject(version->body);
  EXPECT_EQ(versionJson->getValue<std::string>("version"), "0.1.0");
  EXPECT_GT(versionJson->getValue<double>("build_time"), 1.7e9);  // built after 2023
  EXPECT_FALSE(versionJson->getValue<std::string>("build_user").empty());

  auto flags = httpRequest(daemon.port(), "GET", "/flags");
  ASSERT_TRUE(flags);
  EXPECT_EQ(parseObject(flags->body)->getObject("flags")->getValue<std::string>("port"),
            std::to_string(daemon.port()));

  auto missing = httpRequest(daemon.port(), "GET", "/no/such/thing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(parseObject(missing->body)->has("message"));

  daemon.process().kill(SIGTERM);
  ASSERT_TRUE(daemon.process().wait(std::chrono::seconds(30)));
  EXPECT_EQ(daemon.process().exitCode(), 0) << daemon.process().err();
}

TEST(CliTest, EnvironmentAndConfigDirSetFlags) {
  TempDir config;
  uint16_t port = freePort();
  config.write("port", std::to_string(port) + "\n");
  config.write("logging_level", "WARNING");
  config.write("hostname", "from-config");
  // TESSERA_ wins over MESOS_, which wins over the config dir, which wins over the default.
  auto process = Subprocess::start(
      {{tesseraBinary().string(), "local", "--marathon_port=0", "--chronos_port=0"},
       {{"TESSERA_CONFIG_DIR", config.path().string()},
        {"MESOS_LOGGING_LEVEL", "ERROR"},
        {"TESSERA_LOGGING_LEVEL", "INFO"},
        {"MESOS_HOSTNAME", "from-mesos-env"}},
       {},
       std::nullopt});
  ASSERT_TRUE(process);
  ASSERT_TRUE(waitFor([&] {
    auto r = httpRequest(port, "GET", "/flags");
    return r && r->status == 200;
  })) << (*process)->err();
  auto flags = parseObject(httpRequest(port, "GET", "/flags")->body)->getObject("flags");
  EXPECT_EQ(flags->getValue<std::string>("port"), std::to_string(port));
  EXPECT_EQ(flags->getValue<std::string>("logging_level"), "INFO");
  EXPECT_EQ(flags->getValue<std::string>("hostname"), "from-mesos-env");
  (*process)->kill(SIGINT);
  ASSERT_TRUE((*process)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*process)->exitCode(), 0);
}

TEST(CliTest, LogDirReceivesTheLog) {
  TempDir logs;
  LocalDaemon daemon({"--log_dir=" + logs.path().string(), "--quiet"});
  ASSERT_TRUE(daemon.ready()) << daemon.process().err();
  daemon.process().kill(SIGTERM);
  ASSERT_TRUE(daemon.process().wait(std::chrono::seconds(30)));
  std::ifstream in(logs.path() / "tessera-local.log");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("tessera local listening on http://127.0.0.1:"));
  EXPECT_THAT(text.str(), HasSubstr("received signal 15, stopping"));
  EXPECT_THAT(daemon.process().err(), Not(HasSubstr("listening"))) << "--quiet: nothing on stderr";
}

// A module's state goes through Context::state(): with --work_dir it is the crash-safe file
// store, so what was acknowledged survives a SIGKILL of the daemon.
TEST(CliTest, ModuleStateSurvivesSigkillWithAWorkDir) {
  TempDir work;
  const std::string modules = "--modules=" + manifestFor("test_good", "org_tessera_test_good");
  const std::string workDir = "--work_dir=" + (work.path() / "w").string();
  for (int round = 0; round < 2; ++round) {
    LocalDaemon daemon({modules, workDir});
    ASSERT_TRUE(daemon.ready()) << daemon.process().err();
    for (int i = 1; i <= 2; ++i) {
      auto visits = httpRequest(daemon.port(), "GET", "/test/org_tessera_test_good/visits");
      ASSERT_TRUE(visits);
      EXPECT_EQ(visits->status, 200);
      EXPECT_EQ(visits->body, std::to_string(round * 2 + i));
    }
    daemon.process().kill(SIGKILL);
    ASSERT_TRUE(daemon.process().wait(std::chrono::seconds(30)));
  }
}

TEST(CliTest, TwoDaemonsCannotShareAWorkDir) {
  TempDir work;
  const std::string workDir = "--work_dir=" + work.path().string();
  LocalDaemon first({workDir});
  ASSERT_TRUE(first.ready()) << first.process().err();
  auto second = runToEnd({"local", "--port=0", "--marathon_port=0", "--chronos_port=0", workDir});
  EXPECT_EQ(second->exitCode(), 1);
  EXPECT_THAT(second->err(), HasSubstr("flag '--work_dir'"));
  EXPECT_TRUE(first.process().running());
}

TEST(CliTest, QuietWithoutLogDirLogsNothing) {
  LocalDaemon daemon({"--quiet"});
  ASSERT_TRUE(daemon.ready()) << daemon.process().err();
  daemon.process().kill(SIGTERM);
  ASSERT_TRUE(daemon.process().wait(std::chrono::seconds(30)));
  EXPECT_EQ(daemon.process().exitCode(), 0);
  EXPECT_EQ(daemon.process().err(), "");
}

TEST(CliTest, GarbageOnTheSocketDoesNotHurtTheDaemon) {
  LocalDaemon daemon;
  ASSERT_TRUE(daemon.ready()) << daemon.process().err();
  for (const std::string& garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        std::string("BLAH\r\n\r\n"), std::string(100000, 'A'),
        std::string("POST /flags HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc")}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(daemon.port());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    char buffer[512];
    recv(fd, buffer, sizeof(buffer), 0);  // whatever it answers, if anything
    close(fd);
    auto health = httpRequest(daemon.port(), "GET", "/health");
    ASSERT_TRUE(health) << "after garbage of " << garbage.size() << " bytes";
    EXPECT_EQ(health->status, 200);
  }
  EXPECT_TRUE(daemon.process().running());
}

// The vendor flow: install the SDK, build examples/vendor_module out of tree against it with
// find_package(Tessera), and load the result into the installed tessera.
// A task that finishes ends `tessera execute` quietly: tearing its framework down closes the
// event stream on purpose, which is neither a warning nor a reason to reconnect. Three runs, as
// the master's end of the stream and its answer to TEARDOWN race each other.
TEST(CliTest, ExecuteOfAFinishingTaskEndsWithoutWarnings) {
  TempDir work;
  LocalDaemon local({"--work_dir=" + work.path().string(), "--resources=cpus:2;mem:512"});
  ASSERT_TRUE(local.ready()) << local.process().err();
  for (int i = 0; i < 3; ++i) {
    auto run = runToEnd({"execute", fmt::format("--master=127.0.0.1:{}", local.port()),
                         fmt::format("--name=quiet-{}", i), "--command=true"});
    std::string all = run->out() + run->err();
    EXPECT_EQ(run->exitCode(), 0) << all;
    EXPECT_THAT(run->out(), HasSubstr("TASK_FINISHED")) << all;
    EXPECT_THAT(all, Not(HasSubstr("closed the event stream")));
    EXPECT_THAT(all, Not(HasSubstr("reconnecting")));
    EXPECT_THAT(all, Not(HasSubstr("Z W "))) << "a warning was logged";
  }
}

TEST(SdkTest, VendorModuleBuildsOutOfTreeAndLoads) {
  TempDir work;
  const fs::path prefix = work.path() / "prefix";
  const fs::path build = work.path() / "vendor-build";
  auto sh = [&](const std::string& command) {
    auto process = Subprocess::start({{"/bin/sh", "-c", command}, {}, {}, std::nullopt});
    EXPECT_TRUE(process);
    EXPECT_TRUE((*process)->wait(std::chrono::minutes(5)));
    EXPECT_EQ((*process)->exitCode(), 0) << command << "\n"
                                         << (*process)->out() << (*process)->err();
    return (*process)->exitCode() == 0;
  };
  ASSERT_TRUE(
      sh(fmt::format("cmake --install '{}' --prefix '{}'", TESSERA_BINARY_DIR, prefix.string())));
  ASSERT_TRUE(
      sh(fmt::format("cmake -S '{}/examples/vendor_module' -B '{}' -DCMAKE_CXX_COMPILER='{}' "
                     "-DCMAKE_PREFIX_PATH='{}' -DCMAKE_BUILD_TYPE=Release",
                     TESSERA_SOURCE_DIR, build.string(), TESSERA_CXX_COMPILER, prefix.string())));
  ASSERT_TRUE(sh(fmt::format("cmake --build '{}'", build.string())));
  auto manifest = work.write(
      "vendor.json",
      fmt::format(R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "com_acme_hello",
      "parameters": [{{"key": "greeting", "value": "hello from acme"}}]}}]}}]}})",
                  (build / "libacme_hello.so").string()));

  LocalDaemon daemon({"--modules=" + manifest.string()}, {}, prefix / "bin" / "tessera");
  ASSERT_TRUE(daemon.ready()) << daemon.process().err();
  auto hello = httpRequest(daemon.port(), "GET", "/acme/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(parseObject(hello->body)->getValue<std::string>("greeting"), "hello from acme");
  auto metrics = parseObject(httpRequest(daemon.port(), "GET", "/metrics/snapshot")->body);
  EXPECT_EQ(metrics->getValue<double>("acme/hello_requests"), 1.0);
}

}  // namespace
}  // namespace tessera::testing

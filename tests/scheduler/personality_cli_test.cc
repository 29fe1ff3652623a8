// The framework personalities (`marathon`, `chronos`): their flags in both forms, environment
// variables and config directories, refused values naming the flag; the command names as
// symlinks in build/bin; and real processes serving a framework module's routes, as `marathon`
// and from `tessera local` on a port of its own.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>

#include "kernel/cli/marathon.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::cli {
namespace {

namespace fs = std::filesystem;
using tessera::testing::freePort;
using tessera::testing::httpRequest;
using tessera::testing::Subprocess;
using tessera::testing::TempDir;
using tessera::testing::waitFor;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr const char* kTestModule = "org_tessera_test_sleep_framework";
const std::string kModuleRoute = fmt::format("/test/{}/framework", kTestModule);

// Sets (or, with nullopt, removes) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// What a loader decided, and what it printed on stderr.
struct Loaded {
  LoadOutcome outcome;
  PersonalityCommand command;
  std::string err;
};

// Runs `load` with an empty config directory unless the test set `variable`, so the packages'
// directory on the machine running the tests does not leak in.
Loaded loadWith(const char* variable,
                LoadOutcome (*load)(const std::vector<std::string>&, PersonalityCommand&),
                const std::vector<std::string>& args) {
  static TempDir empty;
  std::optional<ScopedEnv> dir;
  if (std::getenv(variable) == nullptr) dir.emplace(variable, empty.path().string());
  Loaded loaded;
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  loaded.outcome = load(args, loaded.command);
  ::testing::internal::GetCapturedStdout();
  loaded.err = ::testing::internal::GetCapturedStderr();
  return loaded;
}

Loaded loadMarathon(const std::vector<std::string>& args) {
  return loadWith("MARATHON_CONFIG_DIR", loadMarathonFlags, args);
}

Loaded loadChronos(const std::vector<std::string>& args) {
  return loadWith("CHRONOS_CONFIG_DIR", loadChronosFlags, args);
}

TEST(MarathonFlagsTest, DefaultsAreMarathons) {
  auto loaded = loadMarathon({"--master=127.0.0.1:5050"});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  const auto& options = loaded.command.options;
  EXPECT_EQ(options.module, "marathon");  // the manifest alias; resolved once loaded
  EXPECT_EQ(options.master, "127.0.0.1:5050");
  EXPECT_EQ(loaded.command.common.port, 8080);
  EXPECT_EQ(options.zk, "");
  EXPECT_EQ(options.failoverTimeout, std::chrono::seconds(604800));
  EXPECT_EQ(options.zkSessionTimeout, std::chrono::milliseconds(10000));
  EXPECT_THAT(options.parameters, Contains(Pair("framework_name", "marathon")));
  EXPECT_FALSE(options.principal);
  EXPECT_EQ(loaded.command.flagValues.at("http_port"), "8080");
}

TEST(MarathonFlagsTest, SpaceAndEqualsFormsBothWork) {
  TempDir dir;
  auto secret = dir.write("secret", "s3cret\n");
  auto loaded = loadMarathon({"--master",
                              "10.0.0.1:5050",
                              "--zk",
                              "zk://h1:2181,h2:2181/marathon",
                              "--hostname",
                              "m1.example",
                              "--http_port=9090",
                              "--framework_name",
                              "mara",
                              "--mesos_role=ops",
                              "--mesos_user",
                              "nobody",
                              "--mesos_authentication_principal",
                              "marathon-principal",
                              "--mesos_authentication_secret_file=" + secret.string(),
                              "--failover_timeout",
                              "60",
                              "--zk_session_timeout=2500",
                              "--framework_module",
                              kTestModule,
                              "--logging_level",
                              "warn",
                              "--quiet"});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  const auto& options = loaded.command.options;
  EXPECT_EQ(options.master, "10.0.0.1:5050");
  EXPECT_EQ(options.zk, "zk://h1:2181,h2:2181/marathon");
  EXPECT_EQ(loaded.command.common.port, 9090);
  EXPECT_EQ(options.advertisedAddress, "m1.example:9090");
  EXPECT_EQ(options.module, kTestModule);
  EXPECT_EQ(options.principal, "marathon-principal");
  EXPECT_EQ(options.secret, "s3cret");
  EXPECT_EQ(options.failoverTimeout, std::chrono::seconds(60));
  EXPECT_EQ(options.zkSessionTimeout, std::chrono::milliseconds(2500));
  EXPECT_THAT(options.parameters, Contains(Pair("framework_name", "mara")));
  EXPECT_THAT(options.parameters, Contains(Pair("mesos_role", "ops")));
  EXPECT_THAT(options.parameters, Contains(Pair("mesos_user", "nobody")));
  EXPECT_EQ(loaded.command.common.loggingLevel, "WARNING");
  EXPECT_TRUE(loaded.command.common.quiet);
}

TEST(MarathonFlagsTest, EnvironmentVariablesAndTheCommandLineOverThem) {
  ScopedEnv master("MARATHON_MASTER", "10.0.0.2:5050");
  ScopedEnv port("MARATHON_HTTP_PORT", "8181");
  ScopedEnv name("MARATHON_FRAMEWORK_NAME", "from-env");
  // Another program's prefixes are not Marathon's.
  ScopedEnv tessera("TESSERA_HTTP_PORT", "1");
  ScopedEnv mesos("MESOS_ZK", "zk://elsewhere:2181/mesos");
  auto loaded = loadMarathon({"--framework_name", "from-argv"});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  EXPECT_EQ(loaded.command.options.master, "10.0.0.2:5050");
  EXPECT_EQ(loaded.command.common.port, 8181);
  EXPECT_EQ(loaded.command.options.zk, "");
  EXPECT_THAT(loaded.command.options.parameters, Contains(Pair("framework_name", "from-argv")));
}

TEST(MarathonFlagsTest, ConfigDirectoryAsThePackagesLayItOut) {
  TempDir conf;
  conf.write("master", "zk://zk1:2181,zk2:2181/mesos\n");
  conf.write("http_port", "8282\n");
  conf.write("mesos_user", "deploy\n");
  conf.write("event_subscriber", "http_callback\n");  // Marathon's, not ours: a warning only
  {
    ScopedEnv dir("MARATHON_CONFIG_DIR", conf.path().string());
    ScopedEnv user("MARATHON_MESOS_USER", "env-user");  // the environment wins over a file
    auto loaded = loadMarathon({});
    ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
    EXPECT_EQ(loaded.command.options.master, "zk://zk1:2181,zk2:2181/mesos");
    EXPECT_EQ(loaded.command.common.port, 8282);
    EXPECT_THAT(loaded.command.options.parameters, Contains(Pair("mesos_user", "env-user")));
    EXPECT_THAT(loaded.err, HasSubstr("event_subscriber"));
  }
  // --config_dir names it too, over the variable.
  ScopedEnv dir("MARATHON_CONFIG_DIR", "/nonexistent");
  auto loaded = loadMarathon({"--config_dir", conf.path().string()});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  EXPECT_EQ(loaded.command.common.port, 8282);
}

TEST(MarathonFlagsTest, UnknownFlagsAndBadValuesAreRefusedNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // Marathon's flags that change what runs, or who reaches the API, are not ignored.
      {{"--master=127.0.0.1:5050", "--env_vars_prefix", "X_"}, "unknown flag '--env_vars_prefix'"},
      {{"--master=127.0.0.1:5050", "--disable_http"}, "unknown flag '--disable_http'"},
      {{"--master=127.0.0.1:5050", "--ha", "--disable_ha"},
       "flags '--ha' and '--disable_ha' contradict each other"},
      {{"--master=127.0.0.1:5050", "--mesos_authentication"},
       "flag '--mesos_authentication' needs '--mesos_authentication_principal'"},
      {{"--master=127.0.0.1:5050", "--disable_checkpoint=maybe"}, "flag '--disable_checkpoint'"},
      {{}, "flag '--master' is required"},
      {{"--master=127.0.0.1:x"}, "flag '--master'"},
      {{"--master", "zk://"}, "flag '--master'"},
      {{"--master=127.0.0.1:5050", "--http_port", "99999"}, "flag '--http_port'"},
      {{"--master=127.0.0.1:5050", "--zk", "http://h:2181/marathon"}, "flag '--zk'"},
      {{"--master=127.0.0.1:5050", "--zk", "zk://h:2181"}, "flag '--zk'"},
      {{"--master=127.0.0.1:5050", "--failover_timeout=-1"}, "flag '--failover_timeout'"},
      {{"--master=127.0.0.1:5050", "--zk_session_timeout=soon"}, "flag '--zk_session_timeout'"},
      {{"--master=127.0.0.1:5050", "--logging_level=chatty"}, "flag '--logging_level'"},
      {{"--master=127.0.0.1:5050", "--http_address=localhost"}, "flag '--http_address'"},
      {{"--master=127.0.0.1:5050", "--mesos_authentication_principal=p",
        "--mesos_authentication_secret_file=/nonexistent/secret"},
       "flag '--mesos_authentication_secret_file'"},
      {{"--master=127.0.0.1:5050", "--mesos_authentication_secret_file=/etc/hostname"},
       "needs '--mesos_authentication_principal'"},
      {{"--master=127.0.0.1:5050", "stray"}, "unexpected argument 'stray'"},
  };
  for (const auto& c : cases) {
    auto loaded = loadMarathon(c.args);
    EXPECT_EQ(loaded.outcome, LoadOutcome::kExitError) << c.expected;
    EXPECT_THAT(loaded.err, HasSubstr(c.expected));
    EXPECT_THAT(loaded.err, HasSubstr("tessera marathon: "));
  }
}

TEST(MarathonFlagsTest, BooleanFlagsTakeMarathonsDisableForm) {
  // Marathon's defaults: checkpointing on, authentication whenever a secret is given.
  TempDir dir;
  auto secret = dir.write("secret", "s3cret\n");
  const std::vector<std::string> credentials = {
      "--master=127.0.0.1:5050", "--mesos_authentication_principal=p",
      "--mesos_authentication_secret_file", secret.string()};
  auto defaults = loadMarathon(credentials);
  ASSERT_EQ(defaults.outcome, LoadOutcome::kRun) << defaults.err;
  EXPECT_THAT(defaults.command.options.parameters, Contains(Pair("checkpoint", "true")));
  EXPECT_EQ(defaults.command.options.secret, "s3cret");

  // --disable_<flag> on the command line.
  auto args = credentials;
  args.insert(args.end(), {"--disable_checkpoint", "--disable_mesos_authentication", "--disable_ha",
                           "--zk", "zk://h:2181/marathon"});
  auto disabled = loadMarathon(args);
  ASSERT_EQ(disabled.outcome, LoadOutcome::kRun) << disabled.err;
  EXPECT_THAT(disabled.command.options.parameters, Contains(Pair("checkpoint", "false")));
  EXPECT_EQ(disabled.command.options.principal, "p");  // named, without a credential
  EXPECT_FALSE(disabled.command.options.secret);
  EXPECT_EQ(disabled.command.options.zk, "zk://h:2181/marathon");  // still elected
  EXPECT_EQ(disabled.command.flagValues.at("disable_checkpoint"), "true");

  // The positive form, and the stout forms every Tessera bool takes.
  auto positive = loadMarathon({"--master=127.0.0.1:5050", "--checkpoint", "--ha"});
  ASSERT_EQ(positive.outcome, LoadOutcome::kRun) << positive.err;
  EXPECT_THAT(positive.command.options.parameters, Contains(Pair("checkpoint", "true")));
  auto negated = loadMarathon({"--master=127.0.0.1:5050", "--no-checkpoint"});
  ASSERT_EQ(negated.outcome, LoadOutcome::kRun) << negated.err;
  EXPECT_THAT(negated.command.options.parameters, Contains(Pair("checkpoint", "false")));

  // MARATHON_DISABLE_<FLAG>= (empty, as Marathon's docs write it) and a config file.
  {
    ScopedEnv off("MARATHON_DISABLE_CHECKPOINT", "");
    auto fromEnv = loadMarathon({"--master=127.0.0.1:5050"});
    ASSERT_EQ(fromEnv.outcome, LoadOutcome::kRun) << fromEnv.err;
    EXPECT_THAT(fromEnv.command.options.parameters, Contains(Pair("checkpoint", "false")));
  }
  for (const std::string file : {"disable_checkpoint", "?disable_checkpoint"}) {
    TempDir conf;
    conf.write(file, "");
    ScopedEnv confDir("MARATHON_CONFIG_DIR", conf.path().string());
    auto fromFile = loadMarathon({"--master=127.0.0.1:5050"});
    ASSERT_EQ(fromFile.outcome, LoadOutcome::kRun) << file << ": " << fromFile.err;
    EXPECT_THAT(fromFile.command.options.parameters, Contains(Pair("checkpoint", "false"))) << file;
  }
}

TEST(MarathonFlagsTest, MarathonsTuningFlagsAreAcceptedAndIgnoredWithAWarning) {
  TempDir conf;
  conf.write("task_launch_timeout", "600000\n");
  ScopedEnv confDir("MARATHON_CONFIG_DIR", conf.path().string());
  ScopedEnv compression("MARATHON_DISABLE_ZK_COMPRESSION", "");
  auto loaded = loadMarathon({"--master=127.0.0.1:5050", "--event_subscriber", "http_callback",
                              "--reconciliation_interval=300000", "--disable_metrics"});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  for (const char* flag : {"--event_subscriber", "--reconciliation_interval", "--disable_metrics",
                           "--disable_zk_compression", "--task_launch_timeout"}) {
    EXPECT_THAT(loaded.err, HasSubstr(fmt::format("warning: ignoring flag '{}'", flag)));
  }
  // What is not given is not warned about.
  EXPECT_THAT(loaded.err, ::testing::Not(HasSubstr("--scale_apps_interval")));
  // Nothing they say reaches the module.
  for (const auto& [name, value] : loaded.command.options.parameters) {
    EXPECT_NE(name, "event_subscriber");
    EXPECT_NE(name, "task_launch_timeout");
  }
}

TEST(ChronosFlagsTest, ZkHostsAndPathMakeTheUrl) {
  auto loaded =
      loadChronos({"--master", "127.0.0.1:5050", "--zk_hosts", "h1:2181,h2:2181",
                   "--mesos_framework_name=cron", "--mesos_role", "batch", "--zk_timeout=3000"});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  const auto& options = loaded.command.options;
  EXPECT_EQ(options.module, "chronos");  // the manifest alias; resolved once loaded
  EXPECT_EQ(options.zk, "zk://h1:2181,h2:2181/chronos/state");
  EXPECT_EQ(options.zkSessionTimeout, std::chrono::milliseconds(3000));
  EXPECT_EQ(loaded.command.common.port, 4400);
  EXPECT_THAT(options.parameters, Contains(Pair("framework_name", "cron")));
  EXPECT_THAT(options.parameters, Contains(Pair("mesos_role", "batch")));

  auto path = loadChronos({"--master=127.0.0.1:5050", "--zk_hosts=h1:2181", "--zk_path=/jobs"});
  ASSERT_EQ(path.outcome, LoadOutcome::kRun) << path.err;
  EXPECT_EQ(path.command.options.zk, "zk://h1:2181/jobs");
  auto none = loadChronos({"--master=127.0.0.1:5050"});
  ASSERT_EQ(none.outcome, LoadOutcome::kRun) << none.err;
  EXPECT_EQ(none.command.options.zk, "");
  EXPECT_THAT(none.command.options.parameters, Contains(Pair("framework_name", "chronos")));
}

TEST(ChronosFlagsTest, EnvironmentAndConfigDirectory) {
  TempDir conf;
  conf.write("master", "127.0.0.1:5050");
  conf.write("zk_hosts", "zk1:2181");
  ScopedEnv dir("CHRONOS_CONFIG_DIR", conf.path().string());
  ScopedEnv port("CHRONOS_HTTP_PORT", "4401");
  auto loaded = loadChronos({});
  ASSERT_EQ(loaded.outcome, LoadOutcome::kRun) << loaded.err;
  EXPECT_EQ(loaded.command.options.master, "127.0.0.1:5050");
  EXPECT_EQ(loaded.command.options.zk, "zk://zk1:2181/chronos/state");
  EXPECT_EQ(loaded.command.common.port, 4401);
}

TEST(ChronosFlagsTest, BadValuesAreRefusedNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--master=127.0.0.1:5050", "--zk_hosts=zk://h:2181/chronos"}, "flag '--zk_hosts'"},
      {{"--master=127.0.0.1:5050", "--zk_hosts=h:port"}, "flag '--zk_hosts'"},
      {{"--master=127.0.0.1:5050", "--zk_path=chronos"}, "flag '--zk_path'"},
      {{"--master=127.0.0.1:5050", "--http_port=-1"}, "flag '--http_port'"},
      {{"--master=127.0.0.1:5050", "--zk"}, "unknown flag '--zk'"},  // Marathon's, not Chronos's
  };
  for (const auto& [args, expected] : cases) {
    auto loaded = loadChronos(args);
    EXPECT_EQ(loaded.outcome, LoadOutcome::kExitError) << expected;
    EXPECT_THAT(loaded.err, HasSubstr(expected));
  }
}

// ---- real processes ----

fs::path binDir() { return fs::path(TESSERA_BINARY_DIR) / "bin"; }

std::string testManifest(const TempDir& dir) {
  return dir
      .write("modules.json",
             fmt::format(
                 R"({{"libraries":[{{"file":"{}/tests/modules/libtest_sleep_framework.so",)"
                 R"("modules":[{{"name":"{}","parameters":[{{"key":"tasks","value":"0"}}]}}]}}]}})",
                 TESSERA_BINARY_DIR, kTestModule))
      .string();
}

// testManifest() with `alias` on the test module's entry, as default_modules.json gives the
// Marathon and Chronos modules theirs.
std::string aliasManifest(const TempDir& dir, std::string_view alias) {
  return dir
      .write("aliased.json",
             fmt::format(R"({{"libraries":[{{"file":"{}/tests/modules/libtest_sleep_framework.so",)"
                         R"("modules":[{{"name":"{}","aliases":["{}"],)"
                         R"("parameters":[{{"key":"tasks","value":"0"}}]}}]}}]}})",
                         TESSERA_BINARY_DIR, kTestModule, alias))
      .string();
}

std::unique_ptr<Subprocess> start(std::vector<std::string> argv,
                                  std::map<std::string, std::string> env = {}) {
  auto process =
      Subprocess::start({std::move(argv),
                         std::move(env),
                         {"TESSERA_CONFIG_DIR", "MARATHON_CONFIG_DIR", "CHRONOS_CONFIG_DIR"},
                         std::nullopt});
  EXPECT_TRUE(process) << process.status().toString();
  return process ? std::move(process).value() : nullptr;
}

std::unique_ptr<Subprocess> runToEnd(std::vector<std::string> argv) {
  auto process = start(std::move(argv));
  if (process) {
    EXPECT_TRUE(process->wait(std::chrono::seconds(60))) << "did not exit";
  }
  return process;
}

bool answers(uint16_t port, const std::string& target, int status, const std::string& body = "") {
  auto response = httpRequest(port, "GET", target, "", std::chrono::seconds(2));
  return response && response->status == status && response->body.find(body) != std::string::npos;
}

// A free port other than `taken`.
uint16_t freePortBut(uint16_t taken) {
  uint16_t port = freePort();
  while (port == taken) port = freePort();
  return port;
}

// Whether the test module on `port` says it is subscribed.
bool subscribed(uint16_t port) { return answers(port, kModuleRoute, 200, R"("subscribed":true)"); }

// A `mesos-master` with an in-memory registry on `port`, once it answers /health; null (and a
// test failure) when it does not start.
std::unique_ptr<Subprocess> startMaster(uint16_t port) {
  auto master = start({(binDir() / "mesos-master").string(), "--registry=in_memory",
                       "--port=" + std::to_string(port), "--quiet"});
  if (!master) return nullptr;
  if (!waitFor([&] { return answers(port, "/health", 200); })) {
    ADD_FAILURE() << "the master did not answer /health: " << master->err();
    return nullptr;
  }
  return master;
}

// Runs `argv` to its end, expects it to fail (exit 1) and returns its stderr ("" when it did not
// start, a failure already).
std::string refusal(std::vector<std::string> argv) {
  auto process = runToEnd(std::move(argv));
  if (!process) return "";
  EXPECT_EQ(process->exitCode(), 1) << process->err();
  return process->err();
}

// SIGTERM, then the clean exit (0) an operator's stop expects.
void stopCleanly(Subprocess& process) {
  process.kill(SIGTERM);
  ASSERT_TRUE(process.wait(std::chrono::seconds(30))) << "did not exit";
  EXPECT_EQ(process.exitCode(), 0) << process.err();
}

TEST(PersonalityProcessTest, EachNameInBinRunsItsCommand) {
  const std::vector<std::pair<std::string, std::string>> names = {
      {"mesos-master", "Usage: tessera master"},
      {"mesos-agent", "Usage: tessera agent"},
      {"mesos-slave", "Usage: tessera agent"},
      {"mesos-execute", "Usage: tessera execute"},
      {"mesos-resolve", "Usage: tessera resolve"},
      {"mesos-local", "Usage: tessera local"},
      {"marathon", "Usage: marathon"},
      {"chronos", "Usage: chronos"},
  };
  for (const auto& [name, usage] : names) {
    const fs::path link = binDir() / name;
    ASSERT_TRUE(fs::is_symlink(link)) << link;
    EXPECT_EQ(fs::read_symlink(link), "tessera") << link;
    auto process = runToEnd({link.string(), "--help"});
    ASSERT_TRUE(process);
    EXPECT_EQ(process->exitCode(), 0) << name << ": " << process->err();
    EXPECT_THAT(process->out(), ::testing::StartsWith(usage)) << name;
  }
  // The subcommands are the same personalities.
  auto process = runToEnd({(binDir() / "tessera").string(), "chronos", "--help"});
  EXPECT_THAT(process->out(), HasSubstr("--zk_hosts"));
}

TEST(PersonalityProcessTest, MarathonRefusesABadMasterNamingTheFlag) {
  EXPECT_THAT(refusal({(binDir() / "marathon").string(), "--master=127.0.0.1:x"}),
              HasSubstr("flag '--master'"));
}

TEST(PersonalityProcessTest, MarathonHostsTheModuleAgainstARealMaster) {
  TempDir dir;
  const uint16_t masterPort = freePort();
  auto master = startMaster(masterPort);
  ASSERT_TRUE(master);

  const uint16_t httpPort = freePortBut(masterPort);
  // Flags in both forms and from the environment, as an operator's unit file would mix them.
  auto marathon =
      start({(binDir() / "marathon").string(), "--master", fmt::format("127.0.0.1:{}", masterPort),
             "--framework_module=" + std::string(kTestModule), "--modules", testManifest(dir),
             "--config_dir", dir.path().string()},
            {{"MARATHON_HTTP_PORT", std::to_string(httpPort)}});
  ASSERT_TRUE(marathon);
  EXPECT_TRUE(waitFor([&] { return subscribed(httpPort); })) << marathon->err();
  // The master has the framework.
  EXPECT_TRUE(waitFor([&] { return answers(masterPort, "/frameworks", 200, "sleep-framework"); }));
  stopCleanly(*marathon);
}

TEST(PersonalityProcessTest, LocalHostsAFrameworkOnItsOwnPort) {
  TempDir dir;
  const uint16_t port = freePort();
  const uint16_t ownPort = freePortBut(port);
  auto local = start(
      {(binDir() / "mesos-local").string(), "--port=" + std::to_string(port), "--num_agents=0",
       "--modules=" + testManifest(dir), "--marathon_module=" + std::string(kTestModule),
       "--marathon_port=" + std::to_string(ownPort), "--chronos_port=0", "--quiet"},
      {{"TESSERA_CONFIG_DIR", dir.path().string()}});
  ASSERT_TRUE(local);
  ASSERT_TRUE(waitFor([&] { return subscribed(ownPort); })) << local->err();
  // Its own port has the module's routes only; the master's port has the kernel's only.
  EXPECT_TRUE(answers(ownPort, "/health", 404));
  EXPECT_TRUE(answers(ownPort, "/metrics/snapshot", 404));
  EXPECT_TRUE(answers(port, "/health", 200));
  EXPECT_TRUE(answers(port, kModuleRoute, 404));
  stopCleanly(*local);
}

TEST(PersonalityProcessTest, LocalWithoutTheModulesStartsAsBefore) {
  TempDir dir;
  const uint16_t port = freePort();
  // The default Marathon and Chronos modules are not loaded: nothing opens on their ports.
  auto local = start({(binDir() / "tessera").string(), "local", "--port=" + std::to_string(port),
                      "--num_agents=0", "--modules=" + testManifest(dir), "--quiet"},
                     {{"TESSERA_CONFIG_DIR", dir.path().string()}});
  ASSERT_TRUE(local);
  ASSERT_TRUE(waitFor([&] { return answers(port, "/health", 200); })) << local->err();
  // A module named explicitly must be there.
  EXPECT_THAT(refusal({(binDir() / "tessera").string(), "local", "--port=0", "--num_agents=0",
                       "--modules=" + testManifest(dir), "--chronos_module=org_nope",
                       "--chronos_port=" + std::to_string(freePort()), "--quiet"}),
              HasSubstr("flag '--chronos_module': no module 'org_nope'"));
  local->kill(SIGTERM);
  ASSERT_TRUE(local->wait(std::chrono::seconds(30)));
}

TEST(PersonalityProcessTest, MarathonResolvesTheDefaultAliasAndKeysStateByTheFullName) {
  TempDir dir;
  const uint16_t masterPort = freePort();
  auto master = startMaster(masterPort);
  ASSERT_TRUE(master);
  const uint16_t httpPort = freePortBut(masterPort);
  const fs::path workDir = dir.path() / "work";
  // No --framework_module: the default is the alias `marathon`, which the manifest gives.
  auto marathon =
      start({(binDir() / "marathon").string(), fmt::format("--master=127.0.0.1:{}", masterPort),
             fmt::format("--http_port={}", httpPort), "--modules=" + aliasManifest(dir, "marathon"),
             "--work_dir=" + workDir.string(), "--config_dir=" + dir.path().string(), "--quiet"});
  ASSERT_TRUE(marathon);
  ASSERT_TRUE(waitFor([&] { return subscribed(httpPort); })) << marathon->err();
  // The FrameworkID is kept under the full name, where state from before the alias lies.
  const fs::path state = workDir / "state";
  EXPECT_TRUE(waitFor([&] {
    return fs::exists(state / fmt::format("%2Fframework_hosts%2F{}%2Fframework_id", kTestModule));
  }));
  EXPECT_FALSE(fs::exists(state / "%2Fframework_hosts%2Fmarathon%2Fframework_id"));
  stopCleanly(*marathon);
}

TEST(PersonalityProcessTest, AnUnknownModuleOrAliasIsAnErrorNamingTheFlag) {
  TempDir dir;
  const std::string manifest = aliasManifest(dir, "marathon");
  // Chronos's default alias is not in this manifest.
  const std::string chronos =
      refusal({(binDir() / "chronos").string(), "--master=127.0.0.1:5050", "--http_port=0",
               "--modules=" + manifest, "--config_dir=" + dir.path().string(), "--quiet"});
  EXPECT_THAT(chronos, HasSubstr("flag '--framework_module': no module 'chronos'"));
  EXPECT_THAT(chronos, HasSubstr(kTestModule));  // the loaded ones are listed
  EXPECT_THAT(refusal({(binDir() / "tessera").string(), "framework", "--module=nope",
                       "--master=127.0.0.1:5050", "--port=0", "--modules=" + manifest, "--quiet"}),
              HasSubstr("flag '--module': no module 'nope'"));
  EXPECT_THAT(refusal({(binDir() / "tessera").string(), "local", "--port=0", "--num_agents=0",
                       "--modules=" + manifest, "--frameworks=nope", "--marathon_port=0",
                       "--chronos_port=0", "--quiet"}),
              HasSubstr("flag '--frameworks': no module 'nope'"));
}

TEST(PersonalityProcessTest, FrameworkAndLocalTakeAnAlias) {
  TempDir dir;
  const uint16_t masterPort = freePort();
  auto master = startMaster(masterPort);
  ASSERT_TRUE(master);
  const uint16_t frameworkPort = freePortBut(masterPort);
  auto framework = start(
      {(binDir() / "tessera").string(), "framework", "--module=sleepy",
       fmt::format("--master=127.0.0.1:{}", masterPort), fmt::format("--port={}", frameworkPort),
       "--modules=" + aliasManifest(dir, "sleepy"), "--quiet"},
      {{"TESSERA_CONFIG_DIR", dir.path().string()}});
  ASSERT_TRUE(framework);
  EXPECT_TRUE(waitFor([&] { return subscribed(frameworkPort); })) << framework->err();
  ASSERT_NO_FATAL_FAILURE(stopCleanly(*framework));

  // In --frameworks and as --marathon_module's default at once: one instance, on the master's
  // port, as when both named the full name.
  const uint16_t port = freePortBut(masterPort);
  auto local = start(
      {(binDir() / "tessera").string(), "local", "--port=" + std::to_string(port), "--num_agents=0",
       "--modules=" + aliasManifest(dir, "marathon"), "--frameworks=marathon",
       "--marathon_port=" + std::to_string(freePort()), "--chronos_port=0", "--quiet"},
      {{"TESSERA_CONFIG_DIR", dir.path().string()}});
  ASSERT_TRUE(local);
  EXPECT_TRUE(waitFor([&] { return subscribed(port); })) << local->err();
  stopCleanly(*local);
}

}  // namespace
}  // namespace tessera::kernel::cli

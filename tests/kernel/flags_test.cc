#include "kernel/runtime/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernel/cli/common.h"
#include "kernel/cli/roles.h"

namespace tessera::kernel::runtime {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

// A fresh directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tessera-flags-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name) << content;
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// A role's flags, as a role would declare them.
struct TestFlags {
  std::string workDir = "/var/lib/tessera";
  bool verbose = false;
  int64_t quorum = 1;
  uint16_t port = 5050;
  double weight = 1.5;
  Duration pingTimeout = 15s;
  Bytes headroom{512 * kMegabyte};
  std::optional<std::string> zk;
  std::string credentials;
  std::string name;
};

class FlagsTest : public ::testing::Test {
 protected:
  FlagsTest() {
    flags_.add("work_dir", &f_.workDir, "Where state lives");
    flags_.add("verbose", &f_.verbose, "Log more");
    flags_.add("quorum", &f_.quorum, "Masters needed for a quorum");
    flags_.add("port", &f_.port, "Port to listen on");
    flags_.add("weight", &f_.weight, "A weight");
    flags_.add("agent_ping_timeout", &f_.pingTimeout, "Ping timeout").alias("slave_ping_timeout");
    flags_.add("gc_disk_headroom", &f_.headroom, "Disk headroom");
    flags_.add("zk", &f_.zk, "ZooKeeper URL").allowFile();
    flags_.add("credentials", &f_.credentials, "Credentials").allowFile().secret();
    flags_.add("cluster", &f_.name, "Cluster name");
  }

  // Loads with the default prefixes and no config directory.
  api::Result<FlagLoadResult> load(std::vector<std::string> args, FlagLoadOptions options = {}) {
    return flags_.load(args, options);
  }
  std::string error(std::vector<std::string> args, FlagLoadOptions options = {}) {
    api::Result<FlagLoadResult> result = load(std::move(args), std::move(options));
    EXPECT_FALSE(result.isOk());
    if (result.isOk()) return "";
    EXPECT_EQ(result.status().code(), api::StatusCode::kInvalidArgument);
    return result.status().message();
  }

  TestFlags f_;
  FlagSet flags_;
};

TEST_F(FlagsTest, DefaultsWhenNothingIsGiven) {
  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(f_.workDir, "/var/lib/tessera");
  EXPECT_EQ(f_.port, 5050);
  EXPECT_EQ(f_.pingTimeout, 15s);
  EXPECT_FALSE(f_.zk.has_value());
  for (const Flag* flag : flags_.flags()) {
    EXPECT_EQ(flag->source(), FlagSource::kDefault) << flag->name();
    EXPECT_EQ(flag->origin(), "");
  }
}

TEST_F(FlagsTest, EqualsFormForEveryType) {
  auto loaded = load({"--work_dir=/tmp/w", "--verbose=true", "--quorum=-3", "--port=6060",
                      "--weight=0.25", "--agent_ping_timeout=500ms", "--gc_disk_headroom=1GB",
                      "--zk=zk://h1:2181/tessera", "--cluster=a=b"});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(f_.workDir, "/tmp/w");
  EXPECT_TRUE(f_.verbose);
  EXPECT_EQ(f_.quorum, -3);
  EXPECT_EQ(f_.port, 6060);
  EXPECT_DOUBLE_EQ(f_.weight, 0.25);
  EXPECT_EQ(f_.pingTimeout, 500ms);
  EXPECT_EQ(f_.headroom, Bytes{kGigabyte});
  EXPECT_EQ(f_.zk, "zk://h1:2181/tessera");
  EXPECT_EQ(f_.name, "a=b");  // only the first '=' separates
  EXPECT_THAT(loaded->positional, IsEmpty());
  EXPECT_FALSE(loaded->help);
}

TEST_F(FlagsTest, SpaceFormForNonBoolFlags) {
  auto loaded = load({"--zk", "zk://h1:2181/tessera", "--port", "6060", "--cluster", "", "pos"});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(f_.zk, "zk://h1:2181/tessera");
  EXPECT_EQ(f_.port, 6060);
  EXPECT_EQ(f_.name, "");
  EXPECT_THAT(loaded->positional, ElementsAre("pos"));
  EXPECT_EQ(flags_.find("port")->origin(), "--port");
}

TEST_F(FlagsTest, BoolNeverTakesTheNextArgument) {
  auto loaded = load({"--verbose", "false"});
  ASSERT_TRUE(loaded.isOk());
  EXPECT_TRUE(f_.verbose);
  EXPECT_THAT(loaded->positional, ElementsAre("false"));
}

TEST_F(FlagsTest, BoolForms) {
  const auto verboseAfter = [this](std::vector<std::string> args) {
    f_.verbose = !f_.verbose;  // load() must set it either way
    auto loaded = load(std::move(args));
    EXPECT_TRUE(loaded.isOk()) << loaded.status().toString();
    return f_.verbose;
  };
  EXPECT_TRUE(verboseAfter({"--verbose"}));
  EXPECT_FALSE(verboseAfter({"--no-verbose"}));
  EXPECT_TRUE(verboseAfter({"--verbose=true"}));
  EXPECT_FALSE(verboseAfter({"--verbose=false"}));
  EXPECT_TRUE(verboseAfter({"--verbose=1"}));
  EXPECT_FALSE(verboseAfter({"--verbose=0"}));
  EXPECT_TRUE(verboseAfter({"--verbose="}));
  EXPECT_FALSE(verboseAfter({}));
  EXPECT_EQ(error({"--verbose=yes"}),
            "flag '--verbose': 'yes' is not a valid bool (use true or "
            "false)");
  EXPECT_EQ(error({"--no-verbose=true"}), "flag '--no-verbose' takes no value");
}

TEST_F(FlagsTest, OnlyBoolsCanBeNegated) {
  EXPECT_EQ(error({"--no-port"}), "flag '--port' is not a bool, '--no-port' is not allowed");
}

TEST_F(FlagsTest, NonBoolNeedsAValue) {
  EXPECT_EQ(error({"--port"}), "flag '--port' needs a value");
  EXPECT_EQ(error({"--zk", "--verbose"}), "flag '--zk' needs a value");
}

TEST_F(FlagsTest, UnknownFlagIsAnError) {
  EXPECT_EQ(error({"--foo"}), "unknown flag '--foo'");
  EXPECT_EQ(error({"--foo=1"}), "unknown flag '--foo'");
  EXPECT_EQ(error({"--no-foo"}), "unknown flag '--no-foo'");
  EXPECT_EQ(error({"--Port=1"}), "unknown flag '--Port'");
}

TEST_F(FlagsTest, BadValuesNameTheFlagAndTheValue) {
  EXPECT_EQ(error({"--port=99999"}), "flag '--port': '99999' is not a valid port");
  EXPECT_EQ(error({"--port=-1"}), "flag '--port': '-1' is not a valid port");
  EXPECT_EQ(error({"--port", "http"}), "flag '--port': 'http' is not a valid port");
  EXPECT_EQ(error({"--quorum=2x"}), "flag '--quorum': '2x' is not a valid integer");
  EXPECT_EQ(error({"--quorum=99999999999999999999"}),
            "flag '--quorum': '99999999999999999999' is not a valid integer");
  EXPECT_EQ(error({"--weight=much"}), "flag '--weight': 'much' is not a valid number");
  EXPECT_EQ(error({"--weight=inf"}), "flag '--weight': 'inf' is not a valid number");
  EXPECT_EQ(error({"--agent_ping_timeout=5s"}),
            "flag '--agent_ping_timeout': '5s' is not a valid duration: unknown unit 's' (use ns, "
            "us, ms, secs, mins, hrs, days or weeks)");
  EXPECT_EQ(error({"--slave_ping_timeout=soon"}),
            "flag '--slave_ping_timeout': 'soon' is not a valid duration: expected a number and a "
            "unit, e.g. '5secs' or '500ms'");
  EXPECT_EQ(error({"--gc_disk_headroom=1.5GB"}),
            "flag '--gc_disk_headroom': '1.5GB' is not a valid size: fractions are not allowed");
  EXPECT_EQ(error({"--port="}), "flag '--port': '' is not a valid port");
}

TEST_F(FlagsTest, AnErrorChangesNothing) {
  ASSERT_TRUE(load({"--port=6000", "--cluster=before"}).isOk());
  EXPECT_FALSE(load({"--port=7000", "--cluster=after", "--quorum=x"}).isOk());
  EXPECT_EQ(f_.port, 6000);
  EXPECT_EQ(f_.name, "before");
  EXPECT_EQ(flags_.find("port")->source(), FlagSource::kCommandLine);
}

TEST_F(FlagsTest, AFlagGivenTwiceIsAnError) {
  EXPECT_EQ(error({"--port=1", "--port=2"}), "flag '--port' is given more than once");
  EXPECT_EQ(error({"--agent_ping_timeout=1secs", "--slave_ping_timeout=2secs"}),
            "flag '--agent_ping_timeout' is given more than once");
  EXPECT_EQ(error({"--verbose", "--no-verbose"}), "flag '--verbose' is given more than once");
}

TEST_F(FlagsTest, PositionalArgumentsAndDoubleDash) {
  auto loaded = load({"resolve", "--port=1", "zk://h:2181/t", "-v", "-", "--", "--port=2", "x"});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_THAT(loaded->positional,
              ElementsAre("resolve", "zk://h:2181/t", "-v", "-", "--port=2", "x"));
  EXPECT_EQ(f_.port, 1);
}

TEST_F(FlagsTest, HelpIsRecognised) {
  auto loaded = load({"--help", "--port=1"});
  ASSERT_TRUE(loaded.isOk());
  EXPECT_TRUE(loaded->help);
  EXPECT_FALSE(load({"--port=1"})->help);
}

TEST_F(FlagsTest, AliasWorksEverywhere) {
  ASSERT_TRUE(load({"--slave_ping_timeout=5secs"}).isOk());
  EXPECT_EQ(f_.pingTimeout, 5s);
  EXPECT_EQ(flags_.find("slave_ping_timeout"), flags_.find("agent_ping_timeout"));
  EXPECT_EQ(flags_.find("agent_ping_timeout")->origin(), "--slave_ping_timeout");

  ScopedEnv env("MESOS_SLAVE_PING_TIMEOUT", "2mins");
  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(f_.pingTimeout, 2min);
}

TEST_F(FlagsTest, ArgcArgvSkipsTheProgramName) {
  const char* argv[] = {"tessera-master", "--port=5151", "extra"};
  auto loaded = flags_.load(3, argv);
  ASSERT_TRUE(loaded.isOk());
  EXPECT_EQ(f_.port, 5151);
  EXPECT_THAT(loaded->positional, ElementsAre("extra"));
}

TEST_F(FlagsTest, Precedence) {
  TempDir dir;
  dir.write("port", "1111\n");
  dir.write("quorum", "2");
  dir.write("cluster", "from-config");
  dir.write("work_dir", "/config");
  FlagLoadOptions options{.configDir = dir.path()};

  ScopedEnv mesosPort("MESOS_PORT", "2222");
  ScopedEnv mesosCluster("MESOS_CLUSTER", "from-mesos");
  ScopedEnv mesosWorkDir("MESOS_WORK_DIR", "/mesos");
  ScopedEnv tesseraPort("TESSERA_PORT", "3333");
  ScopedEnv tesseraWorkDir("TESSERA_WORK_DIR", "/tessera");

  ASSERT_TRUE(load({"--port=4444"}, options).isOk());
  EXPECT_EQ(f_.port, 4444);           // command line > everything
  EXPECT_EQ(f_.workDir, "/tessera");  // TESSERA_ > MESOS_ > config
  EXPECT_EQ(f_.name, "from-mesos");   // MESOS_ > config
  EXPECT_EQ(f_.quorum, 2);            // config > default
  EXPECT_EQ(f_.pingTimeout, 15s);     // default

  EXPECT_EQ(flags_.find("port")->source(), FlagSource::kCommandLine);
  EXPECT_EQ(flags_.find("port")->origin(), "--port");
  EXPECT_EQ(flags_.find("work_dir")->source(), FlagSource::kEnvironment);
  EXPECT_EQ(flags_.find("work_dir")->origin(), "TESSERA_WORK_DIR");
  EXPECT_EQ(flags_.find("cluster")->origin(), "MESOS_CLUSTER");
  EXPECT_EQ(flags_.find("quorum")->source(), FlagSource::kConfigDir);
  EXPECT_EQ(flags_.find("quorum")->origin(), (dir.path() / "quorum").string());
  EXPECT_EQ(flags_.find("agent_ping_timeout")->source(), FlagSource::kDefault);

  // Without the command line, TESSERA_ wins.
  ASSERT_TRUE(load({}, options).isOk());
  EXPECT_EQ(f_.port, 3333);
}

TEST_F(FlagsTest, BadValueInAnOverriddenSourceIsNoError) {
  ScopedEnv env("MESOS_PORT", "not-a-port");
  EXPECT_EQ(error({}), "flag '--port' (from 'MESOS_PORT'): 'not-a-port' is not a valid port");
  ASSERT_TRUE(load({"--port=1"}).isOk());
  EXPECT_EQ(f_.port, 1);
}

TEST_F(FlagsTest, EnvironmentNamesAndBools) {
  ScopedEnv lowerCase("TESSERA_cluster", "lower");
  ScopedEnv emptyBool("TESSERA_VERBOSE", "");
  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(f_.name, "lower");
  EXPECT_TRUE(f_.verbose);  // an empty value sets a bool, as in stout
  {
    ScopedEnv falseBool("MESOS_VERBOSE", "false");
    ASSERT_TRUE(load({}).isOk());
    EXPECT_TRUE(f_.verbose);  // TESSERA_ still wins
  }
}

TEST_F(FlagsTest, UnknownEnvironmentVariablesAreWarnings) {
  ScopedEnv unknown("TESSERA_NO_SUCH_FLAG", "1");
  ScopedEnv unknownMesos("MESOS_SANDBOX", "/sandbox");
  auto loaded = load({});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_THAT(loaded->warnings,
              Contains("ignoring environment variable 'TESSERA_NO_SUCH_FLAG': no flag "
                       "'--no_such_flag'"));
  EXPECT_THAT(loaded->warnings,
              Contains("ignoring environment variable 'MESOS_SANDBOX': no flag '--sandbox'"));
}

TEST_F(FlagsTest, EnvironmentPrefixesAreConfigurable) {
  ScopedEnv env("MARATHON_PORT", "8080");
  ScopedEnv ignored("TESSERA_PORT", "1");
  ASSERT_TRUE(load({}, FlagLoadOptions{.envPrefixes = {"MARATHON_"}}).isOk());
  EXPECT_EQ(f_.port, 8080);
}

TEST_F(FlagsTest, ConfigDirectory) {
  TempDir dir;
  dir.write("quorum", "  2\n");
  dir.write("zk", "zk://h1:2181,h2:2181/tessera\n");
  dir.write("?verbose", "");
  dir.write("no_such_flag", "1");
  dir.write(".hidden", "whatever");
  std::filesystem::create_directory(dir.path() / "subdir");
  auto loaded = load({}, FlagLoadOptions{.configDir = dir.path()});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(f_.quorum, 2);
  EXPECT_EQ(f_.zk, "zk://h1:2181,h2:2181/tessera");
  EXPECT_TRUE(f_.verbose);
  EXPECT_THAT(loaded->warnings,
              ElementsAre(fmt::format("ignoring '{}' in the config directory: no flag "
                                      "'--no_such_flag'",
                                      (dir.path() / "no_such_flag").string())));
}

TEST_F(FlagsTest, ConfigDirectoryBoolFiles) {
  TempDir dir;
  dir.write("?no-verbose", "");
  f_.verbose = true;
  FlagSet flags;
  bool verbose = true;
  flags.add("verbose", &verbose, "Log more");
  ASSERT_TRUE(flags.load(std::vector<std::string>{}, {.configDir = dir.path()}).isOk());
  EXPECT_FALSE(verbose);

  TempDir bad;
  bad.write("?port", "");
  EXPECT_EQ(error({}, {.configDir = bad.path()}),
            fmt::format("flag '--port' (from '{}'): '?' files are only for bool flags",
                        (bad.path() / "?port").string()));

  TempDir badValue;
  const std::string path = badValue.write("port", "http\n");
  EXPECT_EQ(error({}, {.configDir = badValue.path()}),
            fmt::format("flag '--port' (from '{}'): 'http' is not a valid port", path));
}

TEST_F(FlagsTest, MissingConfigDirectoryIsFine) {
  auto loaded = load({}, {.configDir = "/nonexistent/tessera/master"});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_THAT(loaded->warnings, IsEmpty());
}

TEST_F(FlagsTest, FileValues) {
  TempDir dir;
  const std::string zk = dir.write("zk", "\n zk://h1:2181/tessera \n");
  ASSERT_TRUE(load({"--zk=file://" + zk, "--cluster=file://" + zk}).isOk());
  EXPECT_EQ(f_.zk, "zk://h1:2181/tessera");
  EXPECT_EQ(f_.name, "file://" + zk);  // --cluster does not allow files: taken literally
  EXPECT_EQ(flags_.find("zk")->filePath(), zk);
  // Not secret: /flags shows the content.
  EXPECT_EQ(flags_.values().at("zk"), "zk://h1:2181/tessera");

  // From the environment too.
  ScopedEnv env("TESSERA_ZK", "file://" + zk);
  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(f_.zk, "zk://h1:2181/tessera");
}

TEST_F(FlagsTest, UnreadableFileIsAnError) {
  EXPECT_EQ(error({"--zk=file:///nonexistent/zk"}),
            "flag '--zk': cannot read '/nonexistent/zk': no such file or directory");
}

TEST_F(FlagsTest, SecretsAreRedacted) {
  TempDir dir;
  const std::string path = dir.write("credentials", "principal secret\n");
  ASSERT_TRUE(load({"--credentials=file://" + path}).isOk());
  EXPECT_EQ(f_.credentials, "principal secret");
  // Read from a file: the path is shown, as Mesos shows a SecurePathOrValue flag.
  EXPECT_EQ(flags_.values().at("credentials"), "file://" + path);
  EXPECT_EQ(flags_.find("credentials")->valueText(), "principal secret");

  ASSERT_TRUE(load({"--credentials=principal secret"}).isOk());
  EXPECT_EQ(flags_.values().at("credentials"), "*****");
  EXPECT_EQ(flags_.find("credentials")->displayText(), std::string(kRedacted));

  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(flags_.values().at("credentials"), "");  // nothing to hide
}

TEST_F(FlagsTest, ValuesForTheFlagsEndpoint) {
  ScopedEnv env("TESSERA_QUORUM", "3");
  ASSERT_TRUE(load({"--agent_ping_timeout=90secs", "--credentials=pw"}).isOk());
  std::map<std::string, std::string> values = flags_.values();
  EXPECT_EQ(values.count("zk"), 0u);  // unset optional: left out, as Mesos does
  EXPECT_EQ(values.at("agent_ping_timeout"), "90secs");
  EXPECT_EQ(values.at("gc_disk_headroom"), "512MB");
  EXPECT_EQ(values.at("port"), "5050");
  EXPECT_EQ(values.at("verbose"), "false");
  EXPECT_EQ(values.at("weight"), "1.5");
  EXPECT_EQ(values.at("quorum"), "3");
  EXPECT_EQ(values.at("credentials"), "*****");
  EXPECT_EQ(values.size(), 9u);

  std::vector<FlagValue> effective = flags_.effectiveValues();
  ASSERT_EQ(effective.size(), 10u);
  EXPECT_EQ(effective.front().name, "agent_ping_timeout");  // sorted
  EXPECT_EQ(effective.front().source, FlagSource::kCommandLine);
  EXPECT_EQ(effective.back().name, "zk");
  EXPECT_EQ(effective.back().value, std::nullopt);
  EXPECT_EQ(effective.back().source, FlagSource::kDefault);
  for (const FlagValue& value : effective) {
    if (value.name == "quorum") {
      EXPECT_EQ(value.source, FlagSource::kEnvironment);
      EXPECT_EQ(value.origin, "TESSERA_QUORUM");
      EXPECT_EQ(flagSourceName(value.source), "environment");
    }
    if (value.name == "credentials") {
      EXPECT_EQ(value.value, "*****");
    }
  }
}

TEST_F(FlagsTest, ReloadingRestoresDefaults) {
  ASSERT_TRUE(load({"--port=1", "--zk=zk://a/b"}).isOk());
  ASSERT_TRUE(load({}).isOk());
  EXPECT_EQ(f_.port, 5050);
  EXPECT_FALSE(f_.zk.has_value());
  EXPECT_EQ(flags_.find("port")->source(), FlagSource::kDefault);
}

TEST(FlagSetTest, RequiredFlag) {
  std::string master;
  FlagSet flags;
  flags.add("master", &master, "Master to register with").required();
  auto missing = flags.load(std::vector<std::string>{});
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().message(), "flag '--master' is required");
  // --help works without the required flags.
  EXPECT_TRUE(flags.load(std::vector<std::string>{"--help"}).isOk());
  EXPECT_TRUE(flags.load(std::vector<std::string>{"--master", "zk://h/t"}).isOk());
  EXPECT_EQ(master, "zk://h/t");
}

TEST_F(FlagsTest, UsageListsEveryFlagSortedAndWrapped) {
  std::string longHelp;
  for (int i = 0; i < 40; ++i) longHelp += "word" + std::to_string(i) + " ";
  std::string isolation = "posix/cpu";
  flags_.add("isolation", &isolation, longHelp);
  std::string password = "hunter2";
  flags_.add("password", &password, "").secret();

  const std::string usage = flags_.usage("Usage: tessera master [options]");
  EXPECT_TRUE(usage.starts_with("Usage: tessera master [options]\n\n"));
  EXPECT_THAT(usage, HasSubstr("  --port=PORT\n        Port to listen on (default: 5050)\n"));
  EXPECT_THAT(usage, HasSubstr("  --[no-]verbose\n        Log more (default: false)\n"));
  EXPECT_THAT(usage, HasSubstr("  --agent_ping_timeout=DURATION, --slave_ping_timeout=DURATION\n"
                               "        Ping timeout (default: 15secs)\n"));
  EXPECT_THAT(usage,
              HasSubstr("  --gc_disk_headroom=BYTES\n        Disk headroom (default: 512MB)"));
  EXPECT_THAT(usage, HasSubstr("  --zk=VALUE\n        ZooKeeper URL\n"));
  EXPECT_THAT(usage, HasSubstr("(default: \"\")"));
  EXPECT_THAT(usage, HasSubstr("  --password=VALUE\n        (default: *****)\n"));
  EXPECT_THAT(usage, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(usage, HasSubstr("word38 word39\n        (default: posix/cpu)\n"));

  // Sorted by name, and no line over 100 columns.
  std::vector<std::string> names;
  std::istringstream lines(usage);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 100u) << line;
    if (!line.starts_with("  --")) continue;
    if (line.starts_with("  --[no-]")) line.erase(4, 5);
    names.push_back(line);
  }
  EXPECT_EQ(names.size(), 12u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << usage;
}

TEST(FlagSetDeathTest, DeclarationBugsAbort) {
  EXPECT_DEATH(
      {
        FlagSet flags;
        std::string a;
        std::string b;
        flags.add("name", &a, "");
        flags.add("name", &b, "");
      },
      "flag '--name' is declared twice");
  EXPECT_DEATH(
      {
        FlagSet flags;
        std::string a;
        std::string b;
        flags.add("agent_x", &a, "");
        flags.add("other", &b, "").alias("agent_x");
      },
      "declared twice");
  EXPECT_DEATH(
      {
        FlagSet flags;
        bool a = false;
        flags.add("no-thing", &a, "");
      },
      "not a valid flag name");
  EXPECT_DEATH(
      {
        FlagSet flags;
        bool a = false;
        flags.add("help", &a, "");
      },
      "reserved");
}

TEST_F(FlagsTest, AtLeastAndCheckRefuseValuesNamingTheFlagAndChangeNothing) {
  FlagSet flags;
  int64_t count = 5;
  std::string colour = "red";
  flags.add("count", &count, "A count").atLeast(1);
  flags.add("colour", &colour, "A colour").check([](const Flag::Value& value) {
    const auto& text = std::get<std::string>(value);
    if (text == "red" || text == "blue") return api::Status::ok();
    return api::invalidArgument("'{}' is not red or blue", text);
  });
  ASSERT_TRUE(flags.load({"--count=1", "--colour=blue"}).isOk());
  EXPECT_EQ(count, 1);
  auto refused = flags.load({"--count=0", "--colour=red"});
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().message(), "flag '--count': 0 is less than the minimum 1");
  refused = flags.load({"--colour=green"});
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().message(), "flag '--colour': 'green' is not red or blue");
  EXPECT_EQ(count, 1);  // all or nothing
  EXPECT_EQ(colour, "blue");
  EXPECT_DEATH(
      {
        FlagSet bad;
        std::string text;
        bad.add("text", &text, "").atLeast(1);
      },
      "needs an int flag");
}

// The flags of the real roles: a bad --ip or --max_agent_ping_timeouts is refused by name when
// the flags are loaded, not later by whatever uses the value.
TEST(RoleFlagsTest, BadIpAndPingTimeoutsAreRefusedNamingTheFlag) {
  cli::CommonFlags common;
  cli::MasterFlags master;
  FlagSet flags;
  cli::addCommonFlags(flags, common);
  cli::addMasterFlags(flags, master);
  for (const char* ip : {"999.1.1.1", "localhost", "1.2.3", ""}) {
    SCOPED_TRACE(ip);
    auto loaded = flags.load({std::string("--ip=") + ip}, {.envPrefixes = {}});
    ASSERT_FALSE(loaded.isOk());
    EXPECT_THAT(loaded.status().message(), HasSubstr("flag '--ip'"));
  }
  for (const char* timeouts : {"--max_agent_ping_timeouts=0", "--max_slave_ping_timeouts=-3"}) {
    SCOPED_TRACE(timeouts);
    auto loaded = flags.load({timeouts}, {.envPrefixes = {}});
    ASSERT_FALSE(loaded.isOk());
    EXPECT_THAT(loaded.status().message(), HasSubstr("ping_timeouts'"));
    EXPECT_THAT(loaded.status().message(), HasSubstr("less than the minimum 1"));
  }
  auto loaded = flags.load({"--ip=0.0.0.0", "--max_agent_ping_timeouts=1"}, {.envPrefixes = {}});
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(common.ip, "0.0.0.0");
  EXPECT_EQ(master.maxAgentPingTimeouts, 1);
  EXPECT_TRUE(flags.load({"--ip=::1"}, {.envPrefixes = {}}).isOk());
}

}  // namespace
}  // namespace tessera::kernel::runtime

// The vendor's path end to end, with real processes: install the SDK, build
// examples/vendor_isolator (acme/nofile) out of tree against it, run its unit tests, check the
// library with `tessera modules --check`, and load it into a real `tessera agent` beside the
// cgroups isolator. The agent part needs root and cgroups (skipped elsewhere, a failure under
// CI=true); the rest runs anywhere.
#include <Poco/JSON/Object.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tessera/api/module.h"
#include "tests/support/ci.h"
#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const fs::path kHierarchy = "/sys/fs/cgroup";
const std::string kModule = "com_acme_isolator_nofile";
// __cplusplus of the example's C++23 build, which this file's compiler also builds: g++ 12 says
// 202100L, clang 14 (the ASan build) 202101L.
#if defined(__clang__)
const std::string kCxx23 = "202101L";
#else
const std::string kCxx23 = "202100L";
#endif

// Where the SDK and the example's build live: under the build tree, not a temp dir, so that
// every test process of the suite (ctest runs each TEST in its own) reuses one build and only
// the first pays for it.
const fs::path kWork = fs::path(TESSERA_BINARY_DIR) / "tests" / "vendor_isolator";

struct Outcome {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// An empty config dir, so that no /etc/tessera/<command> of the machine changes a flag; made
// and removed by the fixture's suite set-up and tear-down.
std::unique_ptr<TempDir> configDir;

std::map<std::string, std::string> env() {
  return {{"TESSERA_CONFIG_DIR", configDir->path().string()}};
}

Outcome run(std::vector<std::string> argv, std::chrono::minutes timeout = 10min) {
  auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
  if (!process) return {-1, "", process.status().toString()};
  if (!(*process)->wait(timeout)) return {-1, (*process)->out(), "timed out"};
  return {(*process)->exitCode().value_or(-1), (*process)->out(), (*process)->err()};
}

Outcome sh(const std::string& command) { return run({"/bin/sh", "-c", command}); }

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class VendorIsolatorTest : public ::testing::Test {
 protected:
  static fs::path prefix() { return kWork / "prefix"; }
  static fs::path build() { return kWork / "build"; }
  static fs::path library() { return build() / "libacme_nofile.so"; }
  static fs::path mismatched() { return build() / "libacme_nofile_cxx23.so"; }
  static fs::path tessera() { return prefix() / "bin" / "tessera"; }

  // Installs the SDK and builds the example once per test process; a lock keeps concurrent
  // test processes from building the same tree at once (the later ones find it up to date).
  static void SetUpTestSuite() {
    configDir = std::make_unique<TempDir>();
    fs::create_directories(kWork);
    int lock = ::open((kWork / "lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
      setupError_ = "cannot lock " + (kWork / "lock").string();
      return;
    }
    std::string flags;
#if defined(TESSERA_ASAN)
    // The SDK's libtessera_api.so is instrumented: so must the example's executables be, by the
    // same compiler (one sanitizer runtime per process).
    flags = fmt::format(
        " -DCMAKE_CXX_COMPILER='{}' -DCMAKE_CXX_FLAGS='-fsanitize=address,undefined'"
        " -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
        " -DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined",
        TESSERA_CXX_COMPILER);
#endif
    for (const std::string& command : {
             fmt::format("cmake --install '{}' --prefix '{}'", TESSERA_BINARY_DIR,
                         prefix().string()),
             fmt::format("cmake -S '{}/examples/vendor_isolator' -B '{}' -G Ninja "
                         "-DCMAKE_PREFIX_PATH='{}' -DCMAKE_BUILD_TYPE=Release "
                         "-DACME_NOFILE_MISMATCH_DEMO=ON{}",
                         TESSERA_SOURCE_DIR, build().string(), prefix().string(), flags),
             fmt::format("cmake --build '{}' -j2", build().string()),
         }) {
      Outcome result = sh(command);
      if (result.exitCode != 0) {
        setupError_ = command + "\n" + result.out + result.err;
        break;
      }
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
  }

  static void TearDownTestSuite() { configDir.reset(); }

  void SetUp() override { ASSERT_EQ(setupError_, "") << "building the vendor example failed"; }

  // The agent's manifest: the native containerizer, acme/nofile (before the cgroups isolator, so
  // that its factory's errors come first) and the cgroups isolator.
  std::string manifest(const fs::path& acme, const std::string& limit) const {
    return dir_
        .write("modules.json", fmt::format(R"({{"libraries": [
  {{"name": "tessera_containerizer_native",
    "modules": [{{"name": "org_tessera_containerizer_native"}}]}},
  {{"file": "{}", "modules": [{{"name": "{}", "parameters": [
    {{"key": "limit", "value": "{}"}}, {{"key": "sample_interval", "value": "100ms"}}]}}]}},
  {{"name": "tessera_isolator_cgroups",
    "modules": [{{"name": "org_tessera_isolator_cgroups"}}]}}]}})",
                                           acme.string(), kModule, limit))
        .string();
  }

  std::vector<std::string> agentArgv(const std::string& modules) const {
    return {tessera().string(),
            "agent",
            fmt::format("--port={}", agentPort_),
            fmt::format("--master=127.0.0.1:{}", masterPort_),
            fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
            "--resources=cpus:2;mem:1024;disk:1024",
            "--isolation=cgroups/mem,acme/nofile",
            fmt::format("--cgroups_root={}", cgroupsRoot_),
            "--modules=" + modules,
            "--quiet"};
  }

  TempDir dir_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
  std::string cgroupsRoot_ = "tessera_vendor_" + std::to_string(::getpid());
  static inline std::string setupError_;
};

TEST_F(VendorIsolatorTest, TheExamplesUnitTestsPass) {
  Outcome result = sh(fmt::format("ctest --test-dir '{}' --output-on-failure", build().string()));
  EXPECT_EQ(result.exitCode, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("100% tests passed"));
}

TEST_F(VendorIsolatorTest, CheckPrintsTheDescriptorAndAcceptsTheModule) {
  Outcome result = run({tessera().string(), "modules", "--check", library().string()});
  EXPECT_EQ(result.exitCode, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("kind:        isolator\n"));
  EXPECT_THAT(result.out, HasSubstr("name:        " + kModule + "\n"));
  EXPECT_THAT(result.out, HasSubstr(fmt::format("api_version: {} (this tessera takes {})",
                                                api::kApiVersion, api::kApiVersion)));
  EXPECT_THAT(result.out, HasSubstr("author:      ACME Corp."));
  for (const char* field : {"compiler", "cxx", "cxx11abi", "boost", "protobuf"}) {
    EXPECT_THAT(result.out, HasSubstr(fmt::format("\n  {} ", field)));
  }
  EXPECT_THAT(result.out, Not(HasSubstr("DIFFERS")));
  EXPECT_THAT(result.out,
              HasSubstr("verdict:     loads: module '" + kModule + "' of kind 'isolator'"));
}

TEST_F(VendorIsolatorTest, CheckRefusesAMismatchedFingerprintNamingTheFieldAndTheFix) {
  Outcome result = run({tessera().string(), "modules", "--check", mismatched().string()});
  EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("name:        " + kModule));
  EXPECT_THAT(result.out, HasSubstr("DIFFERS"));
  EXPECT_THAT(
      result.out,
      HasSubstr("verdict:     refused: fingerprint field 'cxx' is " + kCxx23 +
                " in the module, 202002L here: rebuild with C++20 (CMAKE_CXX_STANDARD 20)"));
}

TEST_F(VendorIsolatorTest, CheckRefusesAnotherApiVersionWithoutReadingFurther) {
  // The loader's broken-module matrix has one built for another API version.
  const fs::path other =
      fs::path(TESSERA_BINARY_DIR) / "tests" / "modules" / "libtest_api_version.so";
  Outcome result = run({tessera().string(), "modules", "--check", other.string()});
  EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr(fmt::format("verdict:     refused: api_version {}, this "
                                                "tessera takes {}: rebuild the module against "
                                                "this tessera's SDK",
                                                api::kApiVersion + 98, api::kApiVersion)));
  EXPECT_THAT(result.out, Not(HasSubstr("name:")));  // the rest may be laid out differently
}

TEST_F(VendorIsolatorTest, CheckRefusesWhatIsNotAModuleLibrary) {
  Outcome missing = run({tessera().string(), "modules", "--check", (build() / "nope.so").string()});
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_THAT(missing.out, HasSubstr("verdict:     refused: cannot load:"));
  Outcome notModule = run({tessera().string(), "modules", "--check",
                           (prefix() / "lib").string() + "/" + "libtessera_api.so"});
  EXPECT_EQ(notModule.exitCode, 1);
  EXPECT_THAT(notModule.out, HasSubstr("no 'tessera_module_descriptor' symbol"));
}

TEST_F(VendorIsolatorTest, AgentRefusesTheMismatchedBuildAtStartNamingTheFieldAndTheFix) {
  Outcome result = run(agentArgv(manifest(mismatched(), "1024")), 2min);
  EXPECT_EQ(result.exitCode, 1) << result.err;
  EXPECT_THAT(result.err, HasSubstr(fmt::format("module library '{}' (module '{}')",
                                                mismatched().string(), kModule)));
  EXPECT_THAT(result.err, HasSubstr("cxx is " + kCxx23 + " in the module, 202002L here"));
  EXPECT_THAT(result.err, HasSubstr("rebuild the module against this tessera's SDK"));
}

TEST_F(VendorIsolatorTest, AgentShowsTheFactoryErrorNamingTheModuleAndTheParameter) {
  Outcome result = run(agentArgv(manifest(library(), "abc")), 2min);
  EXPECT_EQ(result.exitCode, 1) << result.err;
  EXPECT_THAT(result.err, HasSubstr(fmt::format("(module '{}'): factory failed: parameter "
                                                "'limit': 'abc' is not a valid integer",
                                                kModule)));
}

// The cgroups directories of the agent's root (v1: one per controller it uses).
std::vector<fs::path> rootDirectories(const std::string& root) {
  if (fs::exists(kHierarchy / "cgroup.controllers")) return {kHierarchy / root};
  return {kHierarchy / "memory" / root, kHierarchy / "freezer" / root};
}

// Removes the agent's cgroups root when the test ends, however it ends: whatever still runs in
// a leftover container cgroup (a test that failed half-way) is killed first.
struct CgroupsRootRemover {
  std::string root;
  ~CgroupsRootRemover() {
    for (const auto& dir : rootDirectories(root)) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_directory()) continue;
        waitFor(
            [&] {
              std::ifstream procs(entry.path() / "cgroup.procs");
              bool any = false;
              for (pid_t pid = 0; procs >> pid; any = true) ::kill(pid, SIGKILL);
              return !any && ::rmdir(entry.path().c_str()) == 0;
            },
            10s);
      }
      ::rmdir(dir.c_str());
    }
  }
};

TEST_F(VendorIsolatorTest, AgentAppliesTheLimitAndReportsTheTasksOpenFiles) {
  if (::geteuid() != 0) {
    TESSERA_SKIP_UNLESS_CI("needs root for the host's cgroups (--isolation=cgroups/mem)");
  }
  if (!fs::exists(kHierarchy / "cgroup.controllers") &&
      ::access((kHierarchy / "memory" / "cgroup.procs").c_str(), W_OK) != 0) {
    TESSERA_SKIP_UNLESS_CI("no writable cgroup hierarchy at /sys/fs/cgroup");
  }
  // Declared first, so it runs after the agent and the master are killed.
  CgroupsRootRemover remover{cgroupsRoot_};
  auto start = [](std::vector<std::string> argv) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().toString();
    return process ? std::move(process).value() : nullptr;
  };
  auto master = start({tessera().string(), "master", fmt::format("--port={}", masterPort_),
                       "--registry=in_memory", "--quiet"});
  ASSERT_TRUE(master);
  ASSERT_TRUE(waitFor([&] { return getJson(masterPort_, "/state") != nullptr; }, 60s))
      << master->err();
  auto agent = start(agentArgv(manifest(library(), "321")));
  ASSERT_TRUE(agent);
  ASSERT_TRUE(waitFor([&] { return !agent->running() || activatedAgents(masterPort_) == 1; }, 60s));
  ASSERT_TRUE(agent->running()) << agent->err();

  // Seven files more than stdin/stdout/stderr, kept open while it sleeps.
  auto task =
      start({tessera().string(), "execute", fmt::format("--master=127.0.0.1:{}", masterPort_),
             "--name=nofile", "--resources=cpus:0.5;mem:64",
             "--command=ulimit -n; exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null "
             "7</dev/null 8</dev/null 9</dev/null; exec sleep 1000"});
  ASSERT_TRUE(task);
  // The task's stdout, in its sandbox under the agent's work dir.
  fs::path stdoutFile;
  ASSERT_TRUE(waitFor(
      [&] {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir_.path() / "agent", ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          if (it->path().filename() == "stdout" && !readText(it->path()).empty()) {
            stdoutFile = it->path();
            return true;
          }
        }
        return false;
      },
      90s))
      << task->out() << task->err() << agent->err();
  EXPECT_EQ(readText(stdoutFile), "321\n");

  // The gauges, read while it runs: one container, and at least the sleeping process's ten fds.
  double openFiles = 0;
  ASSERT_TRUE(waitFor(
      [&] {
        auto metrics = getJson(agentPort_, "/metrics/snapshot");
        if (!metrics || !metrics->has("acme_nofile/open_files")) return false;
        openFiles = metrics->getValue<double>("acme_nofile/open_files");
        return metrics->getValue<double>("acme_nofile/containers") == 1 && openFiles >= 10;
      },
      30s))
      << "acme_nofile/open_files is " << openFiles;
  EXPECT_LT(openFiles, 321);  // the task's own, not the agent's or the host's

  // `tessera execute` kills its task on SIGTERM; cleanup forgets the container.
  task->kill(SIGTERM);
  ASSERT_TRUE(task->wait(60s)) << task->out() << task->err();
  EXPECT_TRUE(waitFor(
      [&] {
        auto metrics = getJson(agentPort_, "/metrics/snapshot");
        return metrics && metrics->getValue<double>("acme_nofile/containers") == 0 &&
               metrics->getValue<double>("acme_nofile/open_files") == 0;
      },
      30s));
}

}  // namespace
}  // namespace tessera::testing

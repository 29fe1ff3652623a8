// A whole cluster over TLS (docs/security.md): `tessera master`, `tessera agent`, `tessera
// execute` and the `marathon` and `chronos` framework hosts with LIBPROCESS_SSL_* (or --ssl_*)
// and a CA the fixture makes with the openssl CLI.
#include "tests/support/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

class TlsClusterTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env(bool downgrade = false, bool requireCert = false) const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()},
            {"LIBPROCESS_SSL_REQUIRE_CERT", requireCert ? "true" : "false"},
            {"LIBPROCESS_SSL_ENABLED", "true"},
            {"LIBPROCESS_SSL_CERT_FILE", pki_.certFile()},
            {"LIBPROCESS_SSL_KEY_FILE", pki_.keyFile()},
            {"LIBPROCESS_SSL_CA_FILE", pki_.caFile()},
            {"LIBPROCESS_SSL_VERIFY_CERT", "true"},
            {"LIBPROCESS_SSL_SUPPORT_DOWNGRADE", downgrade ? "true" : "false"}};
  }

  // curl's exit code and output for `url` (extra arguments before it).
  std::pair<int, std::string> curl(std::vector<std::string> args) const {
    // Subprocess execs a path, not a name looked up in PATH.
    std::vector<std::string> argv = {curlPath(), "-sS", "--max-time", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = Subprocess::start({argv, {}, {}, std::nullopt});
    if (!process) return {-1, process.status().message()};
    if (!(*process)->wait(std::chrono::seconds(20))) return {-1, "curl hung"};
    return {(*process)->exitCode().value_or(-1), (*process)->out() + (*process)->err()};
  }

  static std::string curlPath() {
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
      auto path = std::filesystem::path(dir) / "curl";
      if (std::filesystem::exists(path)) return path.string();
    }
    return "curl";
  }

  bool healthy(uint16_t port) const {
    return curl({"-f", "--cacert", pki_.caFile(), fmt::format("https://127.0.0.1:{}/health", port)})
               .first == 0;
  }

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv, uint16_t port,
                                     bool downgrade = false) {
    return launchWith(std::move(argv), port, env(downgrade));
  }

  std::unique_ptr<Subprocess> launchWith(std::vector<std::string> argv, uint16_t port,
                                         std::map<std::string, std::string> environment) {
    auto process = Subprocess::start({std::move(argv), std::move(environment), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    if (!waitFor([&] {
          return curl({"-f", "-o", "/dev/null", "--cacert", pki_.caFile(), "--cert",
                       pki_.certFile(), "--key", pki_.keyFile(),
                       fmt::format("https://127.0.0.1:{}/health", port)})
                     .first == 0;
        })) {
      ADD_FAILURE() << "not serving https on " << port << ": " << (*process)->err();
      return nullptr;
    }
    return std::move(process).value();
  }

  std::unique_ptr<Subprocess> startMaster(bool downgrade = false) {
    return launch({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                   fmt::format("--work_dir={}", (dir_.path() / "master").string())},
                  masterPort_, downgrade);
  }

  TestPki pki_;
  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
};

TEST_F(TlsClusterTest, MasterAgentAndExecuteRunATaskOverTls) {
  auto master = startMaster();
  ASSERT_TRUE(master);
  auto agent = launch({tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort_),
                       fmt::format("--master=127.0.0.1:{}", masterPort_),
                       fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                       "--resources=cpus:2;mem:1024;disk:1024"},
                      agentPort_);
  ASSERT_TRUE(agent);
  // The agent registered over the TLS transport.
  ASSERT_TRUE(waitFor([&] {
    auto [code, out] =
        curl({"--cacert", pki_.caFile(), fmt::format("https://127.0.0.1:{}/state", masterPort_)});
    auto at = out.find("\"activated_slaves\"");
    return code == 0 && at != std::string::npos &&
           out.find_first_of("123456789", at) == out.find_first_not_of("\": ", at + 18);
  })) << master->err()
      << agent->err();

  auto run = Subprocess::start(
      {{tesseraBinary().string(), "execute", fmt::format("--master=127.0.0.1:{}", masterPort_),
        "--name=tls-task", "--command=echo over-tls"},
       env(),
       {},
       std::nullopt});
  ASSERT_TRUE(run) << run.status().message();
  ASSERT_TRUE((*run)->wait(std::chrono::seconds(60))) << (*run)->out() << (*run)->err();
  EXPECT_EQ((*run)->exitCode(), 0) << (*run)->out() << (*run)->err();
  EXPECT_THAT((*run)->out(), HasSubstr("TASK_FINISHED"));

  // Plain HTTP is refused without downgrade; curl without the CA refuses the server.
  EXPECT_NE(curl({fmt::format("http://127.0.0.1:{}/health", masterPort_)}).first, 0);
  EXPECT_NE(curl({fmt::format("https://127.0.0.1:{}/health", masterPort_)}).first, 0);
}

TEST_F(TlsClusterTest, DowngradeServesPlainAndTls) {
  auto master = startMaster(/*downgrade=*/true);
  ASSERT_TRUE(master);
  EXPECT_EQ(curl({"-f", fmt::format("http://127.0.0.1:{}/health", masterPort_)}).first, 0);
  EXPECT_TRUE(healthy(masterPort_));
}

TEST_F(TlsClusterTest, RequireCertRefusesClientsWithoutATrustedCertificate) {
  auto master =
      launchWith({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                  fmt::format("--work_dir={}", (dir_.path() / "master").string())},
                 masterPort_, env(/*downgrade=*/false, /*requireCert=*/true));
  ASSERT_TRUE(master);
  const std::string url = fmt::format("https://127.0.0.1:{}/health", masterPort_);
  std::vector<std::string> trusted = {"-f", "--cacert", pki_.caFile()};
  trusted.insert(trusted.end(), {"--cert", pki_.certFile(), "--key", pki_.keyFile(), url});
  EXPECT_EQ(curl(trusted).first, 0);
  // A certificate from a CA the master does not trust, and none at all: the handshake fails.
  EXPECT_NE(curl({"-f", "--cacert", pki_.caFile(), "--cert", pki_.rogueCertFile(), "--key",
                  pki_.rogueKeyFile(), url})
                .first,
            0);
  EXPECT_NE(curl({"-f", "--cacert", pki_.caFile(), url}).first, 0);
  // The master still serves the trusted client after refusing the others.
  EXPECT_EQ(curl(trusted).first, 0) << master->err();
}

// Marathon's own TLS is a JVM keystore (--ssl_keystore_path, --https_port); Tessera's framework
// hosts take LIBPROCESS_SSL_* and --ssl_* like the other roles, and then serve their API over
// TLS and reach the master over TLS.
TEST_F(TlsClusterTest, MarathonAndChronosServeTheirApiOverTls) {
  auto master = startMaster();
  ASSERT_TRUE(master);
  const uint16_t marathonPort = freePort();
  auto marathon = launch(
      {tesseraBinary().string(), "marathon", fmt::format("--master=127.0.0.1:{}", masterPort_),
       fmt::format("--http_port={}", marathonPort), "--http_address=127.0.0.1",
       "--hostname=127.0.0.1", fmt::format("--work_dir={}", (dir_.path() / "marathon").string())},
      marathonPort);
  ASSERT_TRUE(marathon);
  // Chronos is given the same settings as flags instead of the environment.
  const uint16_t chronosPort = freePort();
  auto chronos = launchWith(
      {tesseraBinary().string(), "chronos", fmt::format("--master=127.0.0.1:{}", masterPort_),
       fmt::format("--http_port={}", chronosPort), "--http_address=127.0.0.1",
       "--hostname=127.0.0.1", fmt::format("--work_dir={}", (dir_.path() / "chronos").string()),
       "--ssl_enabled", "--ssl_cert_file=" + pki_.certFile(), "--ssl_key_file=" + pki_.keyFile(),
       "--ssl_ca_file=" + pki_.caFile(), "--ssl_verify_cert=true"},
      chronosPort, {{"TESSERA_CONFIG_DIR", config_.path().string()}});
  ASSERT_TRUE(chronos);

  auto [infoCode, info] = curl(
      {"-f", "--cacert", pki_.caFile(), fmt::format("https://127.0.0.1:{}/v2/info", marathonPort)});
  EXPECT_EQ(infoCode, 0) << info;
  EXPECT_THAT(info, HasSubstr("\"marathon\""));
  auto [jobsCode, jobs] = curl({"-f", "--cacert", pki_.caFile(),
                                fmt::format("https://127.0.0.1:{}/scheduler/jobs", chronosPort)});
  EXPECT_EQ(jobsCode, 0) << jobs;
  // Plain HTTP is refused on both.
  EXPECT_NE(curl({"-f", fmt::format("http://127.0.0.1:{}/v2/info", marathonPort)}).first, 0);
  EXPECT_NE(curl({"-f", fmt::format("http://127.0.0.1:{}/scheduler/jobs", chronosPort)}).first, 0);
  // Both subscribed to the TLS master (their scheduler connections are TLS too).
  EXPECT_TRUE(waitFor([&] {
    auto [code, out] = curl(
        {"--cacert", pki_.caFile(), fmt::format("https://127.0.0.1:{}/frameworks", masterPort_)});
    return code == 0 && out.find("\"name\":\"marathon\"") != std::string::npos &&
           out.find("\"name\":\"chronos\"") != std::string::npos;
  })) << master->err()
      << marathon->err() << chronos->err();
}

TEST_F(TlsClusterTest, ABadKeyFileStopsTheMasterNamingTheFile) {
  auto environment = env();
  environment["LIBPROCESS_SSL_KEY_FILE"] = pki_.path("missing.key");
  auto process = Subprocess::start(
      {{tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_)},
       environment,
       {},
       std::nullopt});
  ASSERT_TRUE(process);
  ASSERT_TRUE((*process)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*process)->exitCode(), 1);
  EXPECT_THAT((*process)->err(), HasSubstr(pki_.path("missing.key")));
}

}  // namespace
}  // namespace tessera::testing

// Authentication with real processes (issue 17, authn part): HTTP Basic on the master's and the
// agent's endpoints (--authenticate_http_readonly / _readwrite, --credentials), scheduler calls
// (--authenticate_frameworks with `tessera execute --principal --secret`), credentials reloaded
// without a restart, a broken reload keeping the old ones, a burst of wrong secrets not
// starving the others, and no secret in any log or output.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOpsSecret = "Ops-S3cret-7f1e";
constexpr const char* kFrameworkSecret = "Fw-S3cret-93ab";
constexpr const char* kRotatedSecret = "Rotated-S3cret-55cd";
constexpr const char* kAgentSecret = "Agent-S3cret-2b7d";
constexpr const char* kWrongAgentSecret = "Wrong-Agent-S3cret-c0de";

std::string base64(std::string_view text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(text[i])) << 16) | (uint32_t(uint8_t(text[i + 1])) << 8) |
                 uint8_t(text[i + 2]);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63],
            kAlphabet[n & 63]};
  }
  if (i + 1 == text.size()) {
    uint32_t n = uint32_t(uint8_t(text[i])) << 16;
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == text.size()) {
    uint32_t n = (uint32_t(uint8_t(text[i])) << 16) | (uint32_t(uint8_t(text[i + 1])) << 8);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

std::string basic(const std::string& principal, const std::string& secret) {
  return "Basic " + base64(principal + ":" + secret);
}

// A keep-alive HTTP/1.1 client on one loopback connection, with headers (the support client
// has none). Enough for JSON answers with Content-Length.
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    timeval timeout{10, 0};
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  struct Response {
    int status = 0;
    std::string head;
    std::string body;
  };
  // nullopt when the connection failed or closed.
  std::optional<Response> request(const std::string& method, const std::string& target,
                                  const std::optional<std::string>& authorization,
                                  const std::string& body = "",
                                  const std::vector<std::string>& extraHeaders = {}) {
    if (fd_ < 0) return std::nullopt;
    std::string text = fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, target);
    if (authorization) text += fmt::format("Authorization: {}\r\n", *authorization);
    for (const auto& header : extraHeaders) text += header + "\r\n";
    if (!body.empty() || method != "GET") {
      text += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
    }
    text += "\r\n" + body;
    for (size_t sent = 0; sent < text.size();) {
      ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return std::nullopt;
      sent += static_cast<size_t>(n);
    }
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Response response;
    response.head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    response.status = std::atoi(response.head.substr(9, 3).c_str());
    std::string lower = response.head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    size_t length = 0;
    if (auto at = lower.find("content-length:"); at != std::string::npos) {
      length = static_cast<size_t>(std::atoll(lower.c_str() + at + 15));
    }
    while (buffer_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

 private:
  bool fill() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buffer_;
};

std::optional<Connection::Response> once(uint16_t port, const std::string& method,
                                         const std::string& target,
                                         const std::optional<std::string>& authorization,
                                         const std::string& body = "",
                                         const std::vector<std::string>& extraHeaders = {}) {
  Connection connection(port);
  return connection.request(method, target, authorization, body, extraHeaders);
}

int statusOf(uint16_t port, const std::string& method, const std::string& target,
             const std::optional<std::string>& authorization, const std::string& body = "") {
  auto response = once(port, method, target, authorization, body);
  return response ? response->status : 0;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_ = dir_.path() / "credentials.json";
    writeCredentials(fmt::format(
        R"({{"credentials":[{{"principal":"ops","secret":"{}"}},{{"principal":"fw","secret":"{}"}},{{"principal":"agent","secret":"{}"}}]}})",
        kOpsSecret, kFrameworkSecret, kAgentSecret));
  }

  void TearDown() override {
    for (auto& process : processes_) {
      if (process->running()) {
        process->kill(SIGTERM);
        process->wait(std::chrono::seconds(20));
      }
    }
    // No secret anywhere: every log file, every process's output.
    std::vector<std::string> texts;
    for (const auto& process : processes_) {
      texts.push_back(process->out());
      texts.push_back(process->err());
    }
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_.path() / "logs", ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::ifstream in(it->path());
      std::stringstream text;
      text << in.rdbuf();
      texts.push_back(text.str());
    }
    for (const auto& text : texts) {
      for (const char* secret :
           {kOpsSecret, kFrameworkSecret, kRotatedSecret, kAgentSecret, kWrongAgentSecret}) {
        EXPECT_EQ(text.find(secret), std::string::npos) << "a secret leaked into:\n" << text;
      }
    }
  }

  void writeCredentials(const std::string& text) {
    const fs::path next = credentials_.string() + ".next";
    std::ofstream(next) << text;
    fs::rename(next, credentials_);
  }

  std::map<std::string, std::string> env() const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  Subprocess* launch(std::vector<std::string> argv, const std::function<bool()>& ready) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    processes_.push_back(std::move(process).value());
    if (!waitFor(ready)) {
      ADD_FAILURE() << "the process did not become ready: " << processes_.back()->err();
      return nullptr;
    }
    return processes_.back().get();
  }

  Subprocess* startMaster(std::vector<std::string> extra) {
    std::vector<std::string> argv = {tesseraBinary().string(), "master",
                                     fmt::format("--port={}", masterPort_), "--registry=in_memory",
                                     fmt::format("--log_dir={}", (dir_.path() / "logs").string())};
    if (std::none_of(extra.begin(), extra.end(),
                     [](const std::string& flag) { return flag.starts_with("--credentials="); })) {
      argv.push_back(fmt::format("--credentials=file://{}", credentials_.string()));
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(std::move(argv),
                  [this] { return statusOf(masterPort_, "GET", "/health", std::nullopt) == 200; });
  }

  Subprocess* startAgent(std::vector<std::string> extra = {}) {
    return launch(agentArgv(agentPort_, "agent", std::move(extra)),
                  [this] { return statusOf(agentPort_, "GET", "/health", std::nullopt) == 200; });
  }

  std::vector<std::string> agentArgv(uint16_t port, const std::string& name,
                                     std::vector<std::string> extra) {
    std::vector<std::string> argv = {
        tesseraBinary().string(),
        "agent",
        fmt::format("--port={}", port),
        fmt::format("--master=127.0.0.1:{}", masterPort_),
        fmt::format("--work_dir={}", (dir_.path() / name).string()),
        fmt::format("--log_dir={}", (dir_.path() / "logs" / name).string()),
        "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // An agent expected to be refused: started without waiting for it to serve.
  Subprocess* startRefusedAgent(const std::string& name, std::vector<std::string> extra) {
    auto process =
        Subprocess::start({agentArgv(freePort(), name, std::move(extra)), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    processes_.push_back(std::move(process).value());
    return processes_.back().get();
  }

  std::string masterMetrics() {
    auto metrics = once(masterPort_, "GET", "/metrics/snapshot", std::nullopt);
    return metrics ? metrics->body : std::string();
  }

  Subprocess* execute(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv = {tesseraBinary().string(), "execute",
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--name={}", name), "--command=true"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    processes_.push_back(std::move(process).value());
    return processes_.back().get();
  }

  TempDir dir_;
  TempDir config_;
  fs::path credentials_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
  std::vector<std::unique_ptr<Subprocess>> processes_;
};

TEST_F(AuthTest, MasterEndpointsNeedCredentialsWhenAsked) {
  ASSERT_TRUE(startMaster({"--authenticate_http_readonly", "--authenticate_http_readwrite"}));
  auto none = once(masterPort_, "GET", "/state", std::nullopt);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->head, HasSubstr("WWW-Authenticate: Basic realm=\"tessera-master\""));
  EXPECT_THAT(none->body, HasSubstr("\"message\""));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", "wrong")), 401);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("nobody", kOpsSecret)), 401);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/tasks", std::nullopt), 401);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/metrics/snapshot", std::nullopt), 401);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/flags", std::nullopt), 401);
  // Read-write: changes need credentials too.
  EXPECT_EQ(statusOf(masterPort_, "PUT", "/weights", std::nullopt, R"([{"role":"a","weight":2}])"),
            401);
  EXPECT_EQ(statusOf(masterPort_, "POST", "/quota", std::nullopt, R"({"role":"a"})"), 401);
  EXPECT_EQ(statusOf(masterPort_, "POST", "/api/v1", std::nullopt, R"({"type":"GET_HEALTH"})"),
            401);
  EXPECT_NE(statusOf(masterPort_, "PUT", "/weights", basic("ops", kOpsSecret),
                     R"([{"role":"a","weight":2}])"),
            401);
  // Health stays open (load balancers ask it).
  EXPECT_EQ(statusOf(masterPort_, "GET", "/health", std::nullopt), 200);
  // /flags shows the credentials' path, never their content.
  auto flags = once(masterPort_, "GET", "/flags", basic("ops", kOpsSecret));
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->status, 200);
  EXPECT_THAT(flags->body, HasSubstr("authenticate_http_readonly"));
}

TEST_F(AuthTest, ReadWriteOnlyLeavesReadsOpen) {
  ASSERT_TRUE(startMaster({"--authenticate_http_readwrite"}));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", std::nullopt), 200);
  EXPECT_EQ(statusOf(masterPort_, "POST", "/api/v1", std::nullopt, R"({"type":"GET_HEALTH"})"),
            200);
  EXPECT_EQ(statusOf(masterPort_, "PUT", "/weights", std::nullopt, R"([{"role":"a","weight":2}])"),
            401);
  EXPECT_EQ(statusOf(masterPort_, "POST", "/api/v1", std::nullopt,
                     R"({"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[]}})"),
            401);
}

TEST_F(AuthTest, WithoutFlagsNothingIsAsked) {
  ASSERT_TRUE(startMaster({}));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", std::nullopt), 200);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", "wrong")), 200);
}

TEST_F(AuthTest, AgentEndpointsNeedCredentialsWhenAsked) {
  ASSERT_TRUE(startMaster({}));
  ASSERT_TRUE(startAgent({"--authenticate_http_readonly",
                          fmt::format("--http_credentials={}", credentials_.string())}));
  auto none = once(agentPort_, "GET", "/state", std::nullopt);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->head, HasSubstr("WWW-Authenticate: Basic realm=\"tessera-agent\""));
  EXPECT_EQ(statusOf(agentPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);
  EXPECT_EQ(statusOf(agentPort_, "GET", "/files/browse?path=/", std::nullopt), 401);
  // The agent still registers: the master is not gated here.
  EXPECT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));
}

// The master's web UI reads an agent on another host:port from the master's origin (CORS):
// the preflight is answered without credentials, the GETs carry Access-Control-Allow-Origin,
// and credentials are still asked for each of them. The master's own routes share nothing.
TEST_F(AuthTest, AgentSharesItsReadsCrossOriginAndStillAsksCredentials) {
  ASSERT_TRUE(startMaster({}));
  ASSERT_TRUE(startAgent({"--authenticate_http_readonly",
                          fmt::format("--http_credentials={}", credentials_.string())}));
  const std::string origin = fmt::format("Origin: http://127.0.0.1:{}", masterPort_);
  auto preflight = once(agentPort_, "OPTIONS", "/files/browse?path=/", std::nullopt, "",
                        {origin, "Access-Control-Request-Method: GET",
                         "Access-Control-Request-Headers: authorization"});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_THAT(preflight->head, HasSubstr("Access-Control-Allow-Origin: *"));
  EXPECT_THAT(preflight->head, HasSubstr("Access-Control-Allow-Headers: Authorization"));
  EXPECT_THAT(preflight->head, Not(HasSubstr("Access-Control-Allow-Credentials")));
  for (const char* target : {"/state", "/slave(1)/state", "/files/browse?path=/"}) {
    auto refused = once(agentPort_, "GET", target, std::nullopt, "", {origin});
    ASSERT_TRUE(refused) << target;
    EXPECT_EQ(refused->status, 401) << target;
    EXPECT_THAT(refused->head, HasSubstr("Access-Control-Allow-Origin: *")) << target;
  }
  auto state = once(agentPort_, "GET", "/state", basic("ops", kOpsSecret), "", {origin});
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
  EXPECT_THAT(state->head, HasSubstr("Access-Control-Allow-Origin: *"));
  // A download streams: its head carries the header too (here an error's, a missing file).
  auto download = once(agentPort_, "GET", "/files/download?path=/no/such/file",
                       basic("ops", kOpsSecret), "", {origin});
  ASSERT_TRUE(download);
  EXPECT_GE(download->status, 400);
  EXPECT_NE(download->status, 401);
  EXPECT_THAT(download->head, HasSubstr("Access-Control-Allow-Origin: *"));
  // Without an Origin (curl) nothing changes.
  auto plain = once(agentPort_, "GET", "/state", basic("ops", kOpsSecret));
  ASSERT_TRUE(plain);
  EXPECT_THAT(plain->head, Not(HasSubstr("Access-Control-Allow-Origin")));
  // Not shared: the master's state, and the agent's flags.
  auto master = once(masterPort_, "GET", "/state", std::nullopt, "", {origin});
  ASSERT_TRUE(master);
  EXPECT_EQ(master->status, 200);
  EXPECT_THAT(master->head, Not(HasSubstr("Access-Control-Allow-Origin")));
  auto flags = once(agentPort_, "OPTIONS", "/flags", std::nullopt, "",
                    {origin, "Access-Control-Request-Method: GET"});
  ASSERT_TRUE(flags);
  EXPECT_NE(flags->status, 204);
  EXPECT_THAT(flags->head, Not(HasSubstr("Access-Control-Allow-Origin")));
}

TEST_F(AuthTest, AFlagWithoutCredentialsRefusesToStart) {
  auto process =
      Subprocess::start({{tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                          "--registry=in_memory", "--authenticate_http_readonly"},
                         env(),
                         {},
                         std::nullopt});
  ASSERT_TRUE(process);
  ASSERT_TRUE((*process)->wait(std::chrono::seconds(30)));
  EXPECT_NE((*process)->exitCode(), 0);
  EXPECT_THAT((*process)->err(), HasSubstr("--credentials"));
  processes_.push_back(std::move(process).value());
}

TEST_F(AuthTest, CredentialsReloadWithoutRestartAndABrokenFileKeepsTheOld) {
  ASSERT_TRUE(startMaster({"--authenticate_http_readonly"}));
  ASSERT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);

  writeCredentials(fmt::format("ops {}\n", kRotatedSecret));
  EXPECT_TRUE(waitFor(
      [&] { return statusOf(masterPort_, "GET", "/state", basic("ops", kRotatedSecret)) == 200; }));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 401);

  writeCredentials(
      fmt::format("{{\"credentials\":[{{\"principal\":\"ops\",\"secret\":\"{}\"", kOpsSecret));
  // The master notices (and logs why) and keeps the rotated credentials.
  EXPECT_TRUE(waitFor([&] {
    statusOf(masterPort_, "GET", "/state", basic("ops", kRotatedSecret));
    auto metrics = once(masterPort_, "GET", "/metrics/snapshot", basic("ops", kRotatedSecret));
    return metrics && metrics->body.find("reload_failures\":1") != std::string::npos;
  }));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kRotatedSecret)), 200);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 401);
}

TEST_F(AuthTest, FrameworksWithRightWrongAndNoCredentials) {
  ASSERT_TRUE(startMaster({"--authenticate_frameworks", "--http_framework_authenticators=basic"}));
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));

  auto* right = execute("right", {"--principal=fw", fmt::format("--secret={}", kFrameworkSecret)});
  auto* wrong = execute("wrong", {"--principal=fw", "--secret=not-the-secret"});
  auto* none = execute("none", {});
  ASSERT_TRUE(right && wrong && none);
  ASSERT_TRUE(right->wait(std::chrono::seconds(60))) << right->err();
  EXPECT_EQ(right->exitCode(), 0) << right->out() << right->err();
  EXPECT_THAT(right->out(), HasSubstr("TASK_FINISHED"));
  for (auto* refused : {wrong, none}) {
    ASSERT_TRUE(refused->wait(std::chrono::seconds(60))) << refused->err();
    EXPECT_NE(refused->exitCode(), 0) << refused->out() << refused->err();
    EXPECT_THAT(refused->out() + refused->err(), HasSubstr("401"));
  }
}

// The scheduler API authenticates its callers itself (--http_framework_authenticators); the
// HTTP gate in front of every route leaves its calls alone, so each is authenticated once.
TEST_F(AuthTest, SchedulerCallsAreAuthenticatedOnceByTheSchedulerApi) {
  ASSERT_TRUE(startMaster({"--authenticate_http_readonly", "--authenticate_http_readwrite",
                           "--authenticate_frameworks", "--http_framework_authenticators=basic"}));
  const std::string call = R"({"framework_id":{"value":"no-such-framework"},"type":"SUPPRESS"})";
  EXPECT_EQ(statusOf(masterPort_, "POST", "/api/v1/scheduler", basic("fw", "not-the-secret"), call),
            401);
  // Authenticated; then refused for the framework it names.
  const int right =
      statusOf(masterPort_, "POST", "/api/v1/scheduler", basic("fw", kFrameworkSecret), call);
  EXPECT_GE(right, 400);
  EXPECT_NE(right, 401);
  auto metrics = once(masterPort_, "GET", "/metrics/snapshot", basic("ops", kOpsSecret));
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("\"master/scheduler_calls_unauthenticated\":1"));
  // The gate did not look at the wrong call (it would have counted it).
  EXPECT_THAT(metrics->body, HasSubstr("\"http/authentication_failures\":0"));
}

// A framework's repeat calls with the same Basic credentials are not asked about again (the
// master remembers the answer, docs/design.md); a SIGHUP that removes the principal makes its
// calls 401.
TEST_F(AuthTest, RepeatSchedulerCallsAreRememberedUntilAReloadRemovesThePrincipal) {
  auto* master =
      startMaster({"--authenticate_frameworks", "--http_framework_authenticators=basic"});
  ASSERT_TRUE(master);
  auto asked = [&] {
    const std::string metrics = masterMetrics();
    const std::string key = "basic/successes\":";
    const size_t at = metrics.find(key);
    return at == std::string::npos ? -1 : std::atoi(metrics.c_str() + at + key.size());
  };
  const std::string call = R"({"framework_id":{"value":"no-such-framework"},"type":"SUPPRESS"})";
  Connection connection(masterPort_);
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    // Authenticated, then refused for the framework it names (403, not 401).
    auto response =
        connection.request("POST", "/api/v1/scheduler", basic("fw", kFrameworkSecret), call);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 403) << response->body;
  }
  EXPECT_GE(asked(), 1);
  EXPECT_LT(asked(), kCalls) << "every call went to the authenticator";

  writeCredentials(fmt::format("ops {}\n", kOpsSecret));
  master->kill(SIGHUP);
  EXPECT_TRUE(waitFor([&] {
    auto response =
        connection.request("POST", "/api/v1/scheduler", basic("fw", kFrameworkSecret), call);
    return response && response->status == 401;
  }));
  auto again = connection.request("POST", "/api/v1/scheduler", basic("fw", kFrameworkSecret), call);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_TRUE(master->running());
}

TEST_F(AuthTest, AgentsWithRightWrongAndNoCredentials) {
  ASSERT_TRUE(startMaster({"--authenticate_agents"}));
  // Mesos's JSON credential form for the right one, the line form for the wrong one.
  const fs::path right = dir_.path() / "agent-credential.json";
  std::ofstream(right) << fmt::format(R"({{"principal":"agent","secret":"{}"}})", kAgentSecret);
  const fs::path wrong = dir_.path() / "wrong-credential";
  std::ofstream(wrong) << fmt::format("agent {}\n", kWrongAgentSecret);

  ASSERT_TRUE(startAgent({fmt::format("--credential=file://{}", right.string())}));
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));

  auto* refusedWrong =
      startRefusedAgent("wrong", {fmt::format("--credential=file://{}", wrong.string())});
  auto* refusedNone = startRefusedAgent("none", {});
  ASSERT_TRUE(refusedWrong && refusedNone);
  for (auto* agent : {refusedWrong, refusedNone}) {
    ASSERT_TRUE(agent->wait(std::chrono::seconds(60))) << agent->err();
    EXPECT_NE(agent->exitCode(), 0) << agent->err();
  }
  // Each is told why.
  EXPECT_THAT(refusedWrong->err(), HasSubstr("authentication of principal 'agent' failed"));
  EXPECT_THAT(refusedNone->err(), HasSubstr("--credential"));
  // Counted on the master, and only the right agent got in.
  const std::string metrics = masterMetrics();
  EXPECT_THAT(metrics, HasSubstr("\"master/agent_authentication_failures\":2"));
  EXPECT_THAT(metrics, HasSubstr("\"master/agent_authentication_successes\":1"));
  EXPECT_EQ(activatedAgents(masterPort_), 1u);
}

TEST_F(AuthTest, WithoutAuthenticateAgentsAgentsRegisterAsBefore) {
  ASSERT_TRUE(startMaster({}));
  ASSERT_TRUE(startAgent());
  EXPECT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));
}

TEST_F(AuthTest, SighupReloadsCredentialsAndABrokenFileKeepsTheOld) {
  // SIGHUP re-reads at once (the file watch may get there too); before, SIGHUP killed the master.
  auto* master = startMaster({"--authenticate_http_readonly"});
  ASSERT_TRUE(master);
  ASSERT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);

  writeCredentials("{\"credentials\":[");  // broken
  master->kill(SIGHUP);
  EXPECT_TRUE(waitFor([&] {
    auto metrics = once(masterPort_, "GET", "/metrics/snapshot", basic("ops", kOpsSecret));
    return metrics && metrics->body.find("basic/reload_failures\":1") != std::string::npos;
  }));
  EXPECT_TRUE(master->running()) << "SIGHUP stopped the master";
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);

  writeCredentials(fmt::format("ops {}\n", kRotatedSecret));
  master->kill(SIGHUP);
  EXPECT_TRUE(waitFor(
      [&] { return statusOf(masterPort_, "GET", "/state", basic("ops", kRotatedSecret)) == 200; }));
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 401);
  EXPECT_TRUE(master->running());
}

TEST_F(AuthTest, InlineCredentialsAreAcceptedAndNeverShown) {
  auto* master = startMaster(
      {"--authenticate_http_readonly",
       fmt::format(R"(--credentials={{"credentials":[{{"principal":"ops","secret":"{}"}}]}})",
                   kOpsSecret)});
  ASSERT_TRUE(master);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", "nope")), 401);
  auto flags = once(masterPort_, "GET", "/flags", basic("ops", kOpsSecret));
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->body.find(kOpsSecret), std::string::npos) << flags->body;
}

TEST_F(AuthTest, ABurstOfWrongSecretsDoesNotStopTheMasterServingOthers) {
  ASSERT_TRUE(startMaster({"--authenticate_http_readonly", "--authenticate_http_readwrite"}));
  constexpr int kAttempts = 10000;
  constexpr int kAttackers = 4;
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::atomic<bool> done{false};
  std::atomic<int> served{0};
  std::thread client([&] {
    Connection connection(masterPort_);
    while (!done.load()) {
      auto response = connection.request("GET", "/state", basic("ops", kOpsSecret));
      if (!response) break;
      if (response->status == 200) ++served;
    }
  });
  std::vector<std::thread> attackers;
  for (int a = 0; a < kAttackers; ++a) {
    attackers.emplace_back([&, a] {
      Connection connection(masterPort_);
      for (int i = a; i < kAttempts; i += kAttackers) {
        auto response =
            connection.request("GET", "/state", basic("ops", fmt::format("guess-{}", i)));
        if (response && response->status == 401) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& thread : attackers) thread.join();
  const int servedDuringBurst = served.load();
  done = true;
  client.join();
  EXPECT_EQ(refused.load(), kAttempts);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(servedDuringBurst, 0) << "no authorized request was served during the burst";
  RecordProperty("served_during_burst", servedDuringBurst);
  // And right after it, at once.
  EXPECT_EQ(statusOf(masterPort_, "GET", "/state", basic("ops", kOpsSecret)), 200);
}

}  // namespace
}  // namespace tessera::testing

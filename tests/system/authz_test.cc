// Authorization with real processes (issue 17, authz part): the master with --acls asks the
// local authorizer before registering frameworks, changing weights and quota, marking agents
// gone and showing flags, and filters /state, /frameworks and /tasks to what the principal
// may see; an agent with --acls guards its sandboxes (/files/*) and /flags. Principals come
// from HTTP Basic (--authenticate_http_readonly/_readwrite).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string base64(std::string_view text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : text) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += kAlphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += kAlphabet[(bits << (6 - count)) & 63];
  while (out.size() % 4 != 0) out += '=';
  return out;
}

struct Reply {
  int status = 0;
  std::string head;  // the status line and headers
  std::string body;
};

// One request on its own connection (Connection: close), read to the end; nullopt on failure.
std::optional<Reply> send(uint16_t port, const std::string& method, const std::string& target,
                          const std::optional<std::string>& principal, const std::string& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string text =
      fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target);
  if (principal) {
    text += "Authorization: Basic " + base64(*principal + ":" + *principal + "-secret") + "\r\n";
  }
  if (method != "GET") {
    text += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  text += "\r\n" + body;
  for (size_t sent = 0; sent < text.size();) {
    ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return std::nullopt;
    }
    sent += static_cast<size_t>(n);
  }
  std::string all;
  char chunk[16384];
  for (ssize_t n; (n = ::recv(fd, chunk, sizeof(chunk), 0)) > 0;) {
    all.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  if (all.size() < 12) return std::nullopt;
  Reply reply;
  reply.status = std::atoi(all.substr(9, 3).c_str());
  size_t end = all.find("\r\n\r\n");
  reply.head = all.substr(0, end);
  reply.body = end == std::string::npos ? std::string() : all.substr(end + 4);
  return reply;
}

// Principals: ops (may do anything), a and b (frameworks of users alice and bob).
constexpr const char* kAcls = R"({
  "permissive": false,
  "register_frameworks": [
    {"principals": {"values": ["a", "b"]}, "roles": {"values": ["*", "web"]}}
  ],
  "run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}],
  "update_weights": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}],
  "update_quotas": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}],
  "mark_agents_gone": [{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}}],
  "view_flags": [{"principals": {"values": ["ops"]}, "flags": {"type": "ANY"}}],
  "view_frameworks": [
    {"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
    {"principals": {"values": ["a"]}, "users": {"values": ["alice"]}},
    {"principals": {"values": ["b"]}, "users": {"values": ["bob"]}}
  ],
  "view_tasks": [{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}}]
})";

class AuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_ = dir_.path() / "credentials";
    std::ofstream(credentials_) << "ops ops-secret\na a-secret\nb b-secret\n";
    acls_ = dir_.path() / "acls.json";
    std::ofstream(acls_) << kAcls;
  }
  // The processes are killed as `processes_` goes (Subprocess's destructor).

  Subprocess* startMaster() {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "master", fmt::format("--port={}", port_),
          "--registry=in_memory", "--authenticate_http_readonly", "--authenticate_http_readwrite",
          fmt::format("--credentials={}", credentials_.string()),
          fmt::format("--acls=file://{}", acls_.string())},
         {{"TESSERA_CONFIG_DIR", config_.path().string()}},
         {},
         std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    processes_.push_back(std::move(process).value());
    if (!waitFor([&] { return status("GET", "/health", std::nullopt) == 200; })) {
      ADD_FAILURE() << "the master did not start: " << processes_.back()->err();
      return nullptr;
    }
    return processes_.back().get();
  }

  std::optional<Reply> call(const std::string& method, const std::string& target,
                            const std::optional<std::string>& principal,
                            const std::string& body = "") {
    return send(port_, method, target, principal, body);
  }
  int status(const std::string& method, const std::string& target,
             const std::optional<std::string>& principal, const std::string& body = "") {
    auto response = call(method, target, principal, body);
    return response ? response->status : 0;
  }

  Subprocess* execute(const std::string& principal, const std::string& user,
                      const std::string& role) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "execute", fmt::format("--master=127.0.0.1:{}", port_),
          fmt::format("--name=task-{}", principal), "--command=sleep 60",
          fmt::format("--framework_name=fw-{}", principal), fmt::format("--role={}", role),
          fmt::format("--principal={}", principal), fmt::format("--secret={}-secret", principal)},
         {{"TESSERA_CONFIG_DIR", config_.path().string()}, {"USER", user}},
         {},
         std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    processes_.push_back(std::move(process).value());
    return processes_.back().get();
  }

  TempDir dir_;
  TempDir config_;
  fs::path credentials_;
  fs::path acls_;
  uint16_t port_ = freePort();
  std::vector<std::unique_ptr<Subprocess>> processes_;
};

TEST_F(AuthzTest, OperatorActionsAreAllowedAndDenied) {
  ASSERT_TRUE(startMaster());
  // UPDATE_WEIGHT
  auto denied = call("PUT", "/weights", "a", R"([{"role":"web","weight":2}])");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_THAT(denied->body, HasSubstr("\"message\""));
  EXPECT_THAT(denied->body, HasSubstr("UPDATE_WEIGHT"));
  EXPECT_EQ(status("PUT", "/weights", "ops", R"([{"role":"web","weight":2}])"), 200);
  // UPDATE_QUOTA
  std::string quota = R"({"role":"web","guarantee":[{"name":"cpus","type":"SCALAR",)"
                      R"("scalar":{"value":1}}]})";
  auto quotaDenied = call("POST", "/quota", "b", quota);
  ASSERT_TRUE(quotaDenied);
  EXPECT_EQ(quotaDenied->status, 403);
  EXPECT_THAT(quotaDenied->body, HasSubstr("UPDATE_QUOTA"));
  EXPECT_EQ(status("POST", "/quota", "ops", quota), 200);
  EXPECT_EQ(status("DELETE", "/quota/web", "a"), 403);
  EXPECT_EQ(status("DELETE", "/quota/web", "ops"), 200);
  // MARK_AGENT_GONE: refused before the agent is even looked up; allowed: unknown agent (404).
  std::string gone = R"({"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":{"value":"x"}}})";
  auto goneDenied = call("POST", "/api/v1", "a", gone);
  ASSERT_TRUE(goneDenied);
  EXPECT_EQ(goneDenied->status, 403);
  EXPECT_THAT(goneDenied->body, HasSubstr("MARK_AGENT_GONE"));
  EXPECT_EQ(status("POST", "/api/v1", "ops", gone), 404);
  // VIEW_FLAGS: GET_FLAGS refused, /state without its flags.
  EXPECT_EQ(status("POST", "/api/v1", "a", R"({"type":"GET_FLAGS"})"), 403);
  EXPECT_EQ(status("POST", "/api/v1", "ops", R"({"type":"GET_FLAGS"})"), 200);
  auto state = call("GET", "/state", "a");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
  EXPECT_THAT(state->body, HasSubstr("\"flags\":{}"));
  auto opsState = call("GET", "/state", "ops");
  ASSERT_TRUE(opsState);
  EXPECT_THAT(opsState->body, HasSubstr("\"registry\""));
  // The denials are counted.
  auto metrics = call("GET", "/metrics/snapshot", "ops");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("master/authorization/denied"));
}

TEST_F(AuthzTest, FrameworksRegisterOnlyInAllowedRolesAndSeeOnlyTheirOwn) {
  ASSERT_TRUE(startMaster());
  // REGISTER_FRAMEWORK denied: role "prod" is not in the ACL.
  Subprocess* refused = execute("a", "alice", "prod");
  ASSERT_TRUE(refused);
  ASSERT_TRUE(refused->wait(std::chrono::seconds(60)));
  EXPECT_NE(refused->exitCode(), 0);
  EXPECT_THAT(refused->out() + refused->err(), HasSubstr("REGISTER_FRAMEWORK"));

  ASSERT_TRUE(execute("a", "alice", "web"));
  ASSERT_TRUE(execute("b", "bob", "web"));
  ASSERT_TRUE(waitFor([&] {
    auto state = call("GET", "/state", "ops");
    return state && state->body.find("fw-a") != std::string::npos &&
           state->body.find("fw-b") != std::string::npos;
  })) << "both frameworks subscribe";
  for (const std::string path : {"/state", "/frameworks", "/master/state"}) {
    auto ofA = call("GET", path, "a");
    ASSERT_TRUE(ofA);
    EXPECT_EQ(ofA->status, 200);
    EXPECT_THAT(ofA->body, HasSubstr("fw-a")) << path;
    EXPECT_THAT(ofA->body, Not(HasSubstr("fw-b"))) << path;
    auto ofB = call("GET", path, "b");
    ASSERT_TRUE(ofB);
    EXPECT_THAT(ofB->body, HasSubstr("fw-b")) << path;
    EXPECT_THAT(ofB->body, Not(HasSubstr("fw-a"))) << path;
  }
  auto frameworks = call("POST", "/api/v1", "a", R"({"type":"GET_FRAMEWORKS"})");
  ASSERT_TRUE(frameworks);
  EXPECT_THAT(frameworks->body, HasSubstr("fw-a"));
  EXPECT_THAT(frameworks->body, Not(HasSubstr("fw-b")));
}

TEST_F(AuthzTest, TasksLaunchOnlyAsAllowedUsers) {
  std::ofstream(acls_, std::ios::trunc) << R"({"run_tasks": [
      {"principals": {"values": ["a"]}, "users": {"type": "NONE"}}]})";
  ASSERT_TRUE(startMaster());
  uint16_t agentPort = freePort();
  auto agent =
      Subprocess::start({{tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort),
                          fmt::format("--master=127.0.0.1:{}", port_),
                          fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                          "--resources=cpus:2;mem:1024;disk:1024"},
                         {{"TESSERA_CONFIG_DIR", config_.path().string()}},
                         {},
                         std::nullopt});
  ASSERT_TRUE(agent) << agent.status().message();
  processes_.push_back(std::move(agent).value());
  const char* user = std::getenv("USER");
  std::string me = user != nullptr && *user != '\0' ? user : "root";
  // RUN_TASK refused for principal a: the task ends in TASK_ERROR naming the action.
  Subprocess* refused = execute("a", me, "web");
  ASSERT_TRUE(refused);
  ASSERT_TRUE(refused->wait(std::chrono::seconds(60))) << refused->err();
  EXPECT_NE(refused->exitCode(), 0);
  EXPECT_THAT(refused->out() + refused->err(), HasSubstr("RUN_TASK"));
  // Principal b matches no ACL: permissive (the default) lets its task run.
  Subprocess* allowed = execute("b", me, "web");
  ASSERT_TRUE(allowed);
  EXPECT_TRUE(waitFor(
      [&] {
        auto tasks = call("GET", "/tasks", "ops");
        return tasks && tasks->body.find("TASK_RUNNING") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << allowed->err();
}

TEST_F(AuthzTest, ReloadedAclsTakeEffectAndABrokenFileKeepsTheOld) {
  ASSERT_TRUE(startMaster());
  EXPECT_EQ(status("PUT", "/weights", "a", R"([{"role":"web","weight":2}])"), 403);
  {
    std::ofstream(acls_.string() + ".next")
        << R"({"permissive": false, "update_weights": [{"principals": {"values": ["a"]},
              "roles": {"type": "ANY"}}]})";
    fs::rename(acls_.string() + ".next", acls_);
  }
  EXPECT_TRUE(waitFor(
      [&] { return status("PUT", "/weights", "a", R"([{"role":"web","weight":3}])") == 200; }));
  {
    std::ofstream(acls_.string() + ".next") << R"({"permissive": true, "update_weights": [)";
    fs::rename(acls_.string() + ".next", acls_);
  }
  // Still the reloaded ACLs: ops is refused, a allowed.
  EXPECT_EQ(status("PUT", "/weights", "ops", R"([{"role":"web","weight":4}])"), 403);
  EXPECT_EQ(status("PUT", "/weights", "a", R"([{"role":"web","weight":4}])"), 200);
}

TEST_F(AuthzTest, AgentSandboxesAndFlagsAreAuthorized) {
  ASSERT_TRUE(startMaster());
  const char* user = std::getenv("USER");
  std::string me = user != nullptr && *user != '\0' ? user : "root";
  // ops may read every sandbox and the flags; a only the sandboxes of user "someone-else".
  fs::path agentAcls = dir_.path() / "agent-acls.json";
  std::ofstream(agentAcls) << R"({"permissive": false,
      "access_sandboxes": [
        {"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
        {"principals": {"values": ["a"]}, "users": {"values": ["someone-else"]}}],
      "view_flags": [{"principals": {"values": ["ops"]}, "flags": {"type": "ANY"}}]})";
  uint16_t agentPort = freePort();
  auto agent =
      Subprocess::start({{tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort),
                          fmt::format("--master=127.0.0.1:{}", port_),
                          fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                          "--resources=cpus:2;mem:1024;disk:1024", "--authenticate_http_readonly",
                          fmt::format("--http_credentials={}", credentials_.string()),
                          fmt::format("--acls=file://{}", agentAcls.string())},
                         {{"TESSERA_CONFIG_DIR", config_.path().string()}},
                         {},
                         std::nullopt});
  ASSERT_TRUE(agent) << agent.status().message();
  processes_.push_back(std::move(agent).value());
  ASSERT_TRUE(execute("a", me, "web"));
  // The running task's sandbox, from the agent's /state.
  std::string directory;
  ASSERT_TRUE(waitFor(
      [&] {
        auto state = send(agentPort, "GET", "/state", "ops", "");
        if (!state || state->body.find("TASK_RUNNING") == std::string::npos) return false;
        const std::string key = "\"directory\":\"";
        auto at = state->body.find(key);
        if (at == std::string::npos) return false;
        at += key.size();
        directory = state->body.substr(at, state->body.find('"', at) - at);
        return !directory.empty();
      },
      std::chrono::seconds(60)))
      << processes_[1]->err();

  for (const std::string& target :
       {"/files/browse?path=" + directory, "/files/read?path=" + directory + "/stdout&offset=0",
        "/files/download?path=" + directory + "/stdout",
        "/slave(1)/files/browse?path=" + directory}) {
    SCOPED_TRACE(target);
    auto anonymous = send(agentPort, "GET", target, std::nullopt, "");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    EXPECT_THAT(anonymous->head, HasSubstr("WWW-Authenticate"));
    auto refused = send(agentPort, "GET", target, "a", "");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403);
    EXPECT_THAT(refused->body, HasSubstr("\"message\""));
    EXPECT_THAT(refused->body, HasSubstr("ACCESS_SANDBOX"));
    EXPECT_EQ(send(agentPort, "GET", target, "ops", "")->status, 200);
  }
  // VIEW_FLAGS on the agent's /flags (and the master's).
  auto flags = send(agentPort, "GET", "/flags", "a", "");
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->status, 403);
  EXPECT_THAT(flags->body, HasSubstr("VIEW_FLAGS"));
  auto opsFlags = send(agentPort, "GET", "/flags", "ops", "");
  ASSERT_TRUE(opsFlags);
  EXPECT_EQ(opsFlags->status, 200);
  EXPECT_THAT(opsFlags->body, HasSubstr("\"work_dir\""));
  EXPECT_EQ(status("GET", "/flags", "a"), 403);
  EXPECT_EQ(status("GET", "/flags", "ops"), 200);
}

}  // namespace
}  // namespace tessera::testing

// What security costs a master (#17's Measure): requests/s of GET /state and of v1 scheduler
// calls on two real `tessera master` processes started side by side in one run,
//
//   plain:  no authentication, no ACLs, no TLS;
//   secure: HTTP Basic (--authenticate_http_readonly, --authenticate_http_readwrite,
//           --authenticate_http_frameworks, --credentials=file://), an ACL file with several
//           rules per action, the views filtered per framework user (--acls=file://), and TLS
//           on every listener (LIBPROCESS_SSL_* with a CA the bench makes, tests/support/tls.h,
//           certificates verified).
//
// Real processes rather than Google Benchmark in-process: the secure master must be set up as
// an operator sets one up (flags, the auth and authorizer modules loaded from their shared
// objects, TLS from the environment), and a master of its own per configuration lets perf or
// callgrind attach to exactly one of them (their pids are printed).
//
// Each master gets S simulated agents (bench/harness/simulated_agents.h; over TLS for the
// secure one) and one load framework (bench/harness/load_framework.h; Basic credentials and
// TLS for the secure one) that launches T tasks, so /state carries S agents, T tasks and one
// framework. Then, for R rounds, each of four phases runs C client threads for D seconds, each
// thread on one keep-alive net::HttpClient connection (the same client code for both; it
// reconnects if the server closes). Beside req/s it reports the master's own CPU per request
// (/proc/<pid>/stat), since the clients' work competes with the master's on a small machine:
//
//   state:  GET /state (secure: as principal `ops`, whose view_* rules name the framework's
//           user, so every framework and task is filtered through the authorizer and kept);
//   calls:  POST /api/v1/scheduler on the load framework's stream, alternating SUPPRESS and an
//           explicit RECONCILE of one of its tasks (each answered 202; each RECONCILE also puts
//           an UPDATE on the event stream, which must arrive).
//
// Within a round the two configurations run back to back, plain first in even rounds and
// secure first in odd ones, so machine noise (the machine is shared) hits both; the report is
// the median req/s of each and the median of the per-round secure/plain ratios.
//
// Usage: security_bench [--agents=20] [--tasks=200] [--clients=4] [--rounds=5] [--seconds=2]
//                       [--secure=auth,acls,tls] [--json=FILE] [--check]
// --secure: what the secure master turns on (default: all three), to tell their costs apart
// (--check's view checks assume all three).
// --check: exits non-zero unless every request was answered 200/202, both masters' /state
// show every agent and task (the secure one through the filtered view), a principal without
// view rules sees no framework or task, and every RECONCILE's UPDATE arrived.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness/bench_args.h"
#include "bench/harness/load_framework.h"
#include "bench/harness/simulated_agents.h"
#include "kernel/net/http_client.h"
#include "kernel/net/tls.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"
#include "tests/support/subprocess.h"
#include "tests/support/tls.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using tessera::testing::freePort;
using tessera::testing::Subprocess;
using tessera::testing::TempDir;
using tessera::testing::tesseraBinary;
using tessera::testing::waitFor;
namespace bench = tessera::bench;
using tessera::bench::flag;
namespace net = tessera::kernel::net;

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The CPU seconds (user + system) process `pid` has used so far, from /proc/<pid>/stat.
double cpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return fmt::format("{} {} {}", one, five, fifteen);
}

// Principals and secrets of the secure master. `ops` reads everything, `fw` is the load
// framework, `viewer` may read endpoints but is named in no view rule.
constexpr const char* kCredentials = R"({"credentials":[
  {"principal":"ops","secret":"ops-bench-secret"},
  {"principal":"fw","secret":"fw-bench-secret"},
  {"principal":"viewer","secret":"viewer-bench-secret"},
  {"principal":"other","secret":"other-bench-secret"}]})";

// Several rules per action, as an operator's file has; the view rules name users, so the
// filtered views ask about every framework, task and executor.
constexpr const char* kAcls = R"({
  "permissive": false,
  "register_frameworks": [
    {"principals": {"values": ["other"]}, "roles": {"values": ["web"]}},
    {"principals": {"values": ["fw"]}, "roles": {"values": ["*", "bench"]}}
  ],
  "run_tasks": [
    {"principals": {"values": ["other"]}, "users": {"values": ["nobody"]}},
    {"principals": {"values": ["fw"]}, "users": {"values": ["bench"]}}
  ],
  "teardown_frameworks": [
    {"principals": {"values": ["ops"]}, "framework_principals": {"type": "ANY"}}
  ],
  "update_weights": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}],
  "update_quotas": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}],
  "mark_agents_gone": [{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}}],
  "view_flags": [{"principals": {"values": ["ops"]}, "flags": {"type": "ANY"}}],
  "view_frameworks": [
    {"principals": {"values": ["other"]}, "users": {"values": ["nobody"]}},
    {"principals": {"values": ["ops", "fw"]}, "users": {"values": ["bench"]}}
  ],
  "view_tasks": [
    {"principals": {"values": ["other"]}, "users": {"values": ["nobody"]}},
    {"principals": {"values": ["ops", "fw"]}, "users": {"values": ["bench"]}}
  ],
  "view_executors": [
    {"principals": {"values": ["other"]}, "users": {"values": ["nobody"]}},
    {"principals": {"values": ["ops", "fw"]}, "users": {"values": ["bench"]}}
  ]
})";

std::string basic(const std::string& principal, const std::string& secret) {
  return "Basic " + net::base64Encode(principal + ":" + secret);
}

// One master with its agents and its framework.
struct Cluster {
  std::string name;  // "plain" or "secure"
  TempDir dir, config;
  uint16_t port = 0, transportPort = 0;
  std::shared_ptr<net::TlsContext> tls;  // null: plain
  bool auth = false;                     // Basic credentials on every request
  std::string authorization;             // ops's Basic credentials (secure only)
  std::unique_ptr<Subprocess> process;
  std::unique_ptr<bench::SimulatedAgents> agents;
  std::unique_ptr<bench::LoadFramework> framework;

  // One request on a fresh connection (set-up and checks; the phases keep theirs alive).
  tessera::api::Result<net::ClientResponse> get(const std::string& target,
                                                const std::string& auth) const {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!auth.empty()) headers.emplace_back("Authorization", auth);
    return net::httpRequest("GET", "127.0.0.1", port, target, std::move(headers), "", 30s, tls);
  }

  bool start(std::vector<std::string> extraFlags, std::map<std::string, std::string> env) {
    port = freePort();
    do transportPort = freePort();
    while (transportPort == port);
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "master",
                                     fmt::format("--port={}", port),
                                     fmt::format("--transport_port={}", transportPort),
                                     "--registry=in_memory",
                                     fmt::format("--work_dir={}", dir.path().string()),
                                     "--max_event_stream_queue_size=512MB",
                                     "--quiet"};
    argv.insert(argv.end(), extraFlags.begin(), extraFlags.end());
    env["TESSERA_CONFIG_DIR"] = config.path().string();
    auto started = Subprocess::start({argv, env, {}, std::nullopt});
    if (!started) return false;
    process = std::move(*started);
    return waitFor(
        [&] {
          auto response = get("/health", "");
          return response && response->status == 200;
        },
        60s);
  }
};

// `clients` threads, each on its own keep-alive connection, send `make(thread, i)` (i: the
// thread's request number) for `duration`; requests/s over all of them. `answered(thread, i)`
// follows each answer `want`; other answers count in `errors`.
double phase(const Cluster& cluster, int clients, std::chrono::milliseconds duration, int want,
             const std::function<net::ClientRequest(int thread, uint64_t i)>& make,
             const std::function<void(int thread, uint64_t i)>& answered,
             std::atomic<uint64_t>& errors) {
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto started = Clock::now();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      net::HttpClient client(cluster.tls);
      uint64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!client.connected() && !client.connect("127.0.0.1", cluster.port, 10s)) {
          ++errors;
          std::this_thread::sleep_for(10ms);
          continue;
        }
        const uint64_t number = i++;
        auto request = make(t, number);
        auto response = client.request(request, 30s);
        if (!response || response->status != want) {
          ++errors;
          if (response && errors < 5) {
            std::cerr << fmt::format("{} {}: {} {}\n", cluster.name, request.target,
                                     response->status, response->body.substr(0, 200));
          }
          continue;
        }
        if (answered) answered(t, number);
        ++done;
      }
    });
  }
  std::this_thread::sleep_until(started + duration);
  stop = true;
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return static_cast<double>(done.load()) / seconds;
}

// /state's counts: agents, frameworks, tasks (of every framework).
struct StateCounts {
  size_t agents = 0, frameworks = 0, tasks = 0;
  bool parsed = false;
};

StateCounts countState(const std::string& body) {
  StateCounts counts;
  try {
    Poco::JSON::Parser parser;
    auto state = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    auto slaves = state->getArray("slaves");
    auto frameworks = state->getArray("frameworks");
    counts.agents = slaves ? slaves->size() : 0;
    counts.frameworks = frameworks ? frameworks->size() : 0;
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      auto tasks = frameworks->getObject(static_cast<unsigned>(i))->getArray("tasks");
      counts.tasks += tasks ? tasks->size() : 0;
    }
    counts.parsed = true;
  } catch (const std::exception&) {
  }
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const int agents = std::stoi(flag(argc, argv, "agents", "20"));
  const int tasks = std::stoi(flag(argc, argv, "tasks", "200"));
  const int clients = std::stoi(flag(argc, argv, "clients", "4"));
  const int rounds = std::stoi(flag(argc, argv, "rounds", "5"));
  const auto duration = std::chrono::milliseconds(
      static_cast<int64_t>(std::stod(flag(argc, argv, "seconds", "2")) * 1000));
  const bool check = flag(argc, argv, "check", "false") == "true";
  // What the secure master turns on (all three unless told): to see which one costs what.
  const std::string secureParts = flag(argc, argv, "secure", "auth,acls,tls");
  const bool useAuth = secureParts.find("auth") != std::string::npos;
  const bool useAcls = secureParts.find("acls") != std::string::npos;
  const bool useTls = secureParts.find("tls") != std::string::npos;
  const std::string jsonPath = flag(argc, argv, "json", "");
  const auto timeout = std::chrono::seconds(60 + agents / 100 + tasks / 1000);

  (void)tessera::kernel::runtime::setupLogging({"security_bench", "ERROR", "", false});
  auto fail = [&](const std::string& why) {
    std::cerr << "security_bench: " << why << "\n";
    return 1;
  };
  const std::string loadBefore = loadAverage();

  tessera::testing::TestPki pki;
  net::TlsSettings settings;
  settings.enabled = true;
  settings.certFile = pki.certFile();
  settings.keyFile = pki.keyFile();
  settings.caFile = pki.caFile();
  settings.verifyCert = true;
  auto tls = net::TlsContext::create(settings);
  if (!tls) return fail(tls.status().toString());

  Cluster plain, secure;
  plain.name = "plain";
  secure.name = "secure";
  if (useTls) secure.tls = *tls;
  secure.auth = useAuth;
  if (useAuth) secure.authorization = basic("ops", "ops-bench-secret");
  const auto credentials = secure.dir.write("credentials.json", kCredentials);
  const auto acls = secure.dir.write("acls.json", kAcls);
  std::vector<std::string> secureFlags;
  if (useAuth) {
    secureFlags = {"--authenticate_http_readonly", "--authenticate_http_readwrite",
                   "--authenticate_http_frameworks", "--http_framework_authenticators=basic",
                   fmt::format("--credentials=file://{}", credentials.string())};
  }
  if (useAcls) secureFlags.push_back(fmt::format("--acls=file://{}", acls.string()));
  std::map<std::string, std::string> secureEnv;
  if (useTls) {
    secureEnv = {{"LIBPROCESS_SSL_ENABLED", "true"},
                 {"LIBPROCESS_SSL_CERT_FILE", pki.certFile()},
                 {"LIBPROCESS_SSL_KEY_FILE", pki.keyFile()},
                 {"LIBPROCESS_SSL_CA_FILE", pki.caFile()},
                 {"LIBPROCESS_SSL_VERIFY_CERT", "true"}};
  }
  if (!plain.start({}, {})) return fail("the plain master did not start");
  if (!secure.start(secureFlags, secureEnv)) {
    return fail("the secure master did not start: " +
                (secure.process ? secure.process->err().substr(0, 2000) : std::string()));
  }
  std::cerr << fmt::format("masters: plain pid {} port {}, secure pid {} port {}\n",
                           plain.process->pid(), plain.port, secure.process->pid(), secure.port);

  tessera::kernel::runtime::Runtime runtime({2, 4, static_cast<size_t>(2 * agents) + 1024});
  runtime.start();
  for (Cluster* cluster : {&plain, &secure}) {
    bench::SimulatedAgentsOptions agentOptions;
    agentOptions.master = fmt::format("127.0.0.1:{}", cluster->port);
    agentOptions.transportPort = cluster->transportPort;
    agentOptions.agents = agents;
    agentOptions.tls = cluster->tls;
    agentOptions.describe = [](int index) {
      return bench::simulatedAgent(index, "cpus:32;mem:65536;disk:65536;ports:[31000-32000]",
                                   fmt::format("rack:r{};zone:z{}", index % 5, index % 3));
    };
    auto fleet = bench::SimulatedAgents::start(runtime, agentOptions);
    if (!fleet) return fail(fleet.status().toString());
    cluster->agents = std::move(fleet).value();
    bench::LoadFrameworkOptions frameworkOptions;
    frameworkOptions.port = cluster->port;
    frameworkOptions.tasks = tasks;
    frameworkOptions.taskCpus = 0.5;
    frameworkOptions.taskMem = 32;
    frameworkOptions.connections = 2;
    frameworkOptions.tls = cluster->tls;
    if (cluster->auth) {
      frameworkOptions.principal = "fw";
      frameworkOptions.secret = "fw-bench-secret";
    }
    if (!waitFor([&] { return cluster->agents->registered() == static_cast<size_t>(agents); },
                 timeout)) {
      return fail(fmt::format("{}: only {} of {} agents registered", cluster->name,
                              cluster->agents->registered(), agents));
    }
    auto framework = bench::LoadFramework::start(runtime, frameworkOptions);
    if (!framework) return fail(framework.status().toString());
    cluster->framework = std::move(framework).value();
    if (!waitFor(
            [&] {
              auto s = cluster->framework->stats();
              return s.running == static_cast<size_t>(tasks) && !s.streamId.empty();
            },
            timeout) ||
        !waitFor(
            [&] { return cluster->agents->stats().acknowledged >= static_cast<size_t>(tasks); },
            timeout)) {
      auto s = cluster->framework->stats();
      return fail(fmt::format("{}: only {} of {} tasks running ({})", cluster->name, s.running,
                              tasks, s.lastError));
    }
  }

  // The checks after set-up: every agent and task in both views; nothing for `viewer`.
  bool ok = true;
  auto expectCounts = [&](const Cluster& cluster, const std::string& auth, size_t frameworks,
                          size_t taskCount, const std::string& who) {
    auto response = cluster.get("/state", auth);
    StateCounts counts =
        response && response->status == 200 ? countState(response->body) : StateCounts{};
    if (!counts.parsed || counts.agents != static_cast<size_t>(agents) ||
        counts.frameworks != frameworks || counts.tasks != taskCount) {
      std::cerr << fmt::format(
          "{} /state as {}: {} agents, {} frameworks, {} tasks (want {}, {}, {}){}\n", cluster.name,
          who, counts.agents, counts.frameworks, counts.tasks, agents, frameworks, taskCount,
          response ? "" : ": " + response.status().toString());
      ok = false;
    }
    return response ? response->body.size() : 0;
  };
  const size_t plainBytes = expectCounts(plain, "", 1, tasks, "anyone");
  const size_t secureBytes = expectCounts(secure, secure.authorization, 1, tasks, "ops");
  if (useAuth && useAcls)
    expectCounts(secure, basic("viewer", "viewer-bench-secret"), 0, 0, "viewer");
  if (auto anonymous = secure.get("/state", "");
      useAuth && (!anonymous || anonymous->status != 401)) {
    std::cerr << "secure /state without credentials was not answered 401\n";
    ok = false;
  }

  // The phases.
  std::map<std::string, std::vector<double>> rates;          // "state/plain" -> req/s per round
  std::map<std::string, std::vector<double>> cpuPerRequest;  // -> master CPU µs per request
  std::atomic<uint64_t> errors{0};
  std::map<std::string, std::atomic<uint64_t>> reconciles;
  reconciles["plain"] = 0;
  reconciles["secure"] = 0;
  std::map<std::string, size_t> updatesBefore;
  for (Cluster* cluster : {&plain, &secure}) {
    updatesBefore[cluster->name] = cluster->framework->stats().updates;
  }
  for (int round = 0; round < rounds; ++round) {
    std::vector<Cluster*> order = {&plain, &secure};
    if (round % 2) std::swap(order[0], order[1]);
    for (const std::string kind : {"state", "calls"}) {
      for (Cluster* cluster : order) {
        const auto frameworkStats = cluster->framework->stats();
        const std::string frameworkId = frameworkStats.frameworkId;
        const std::string streamId = frameworkStats.streamId;
        const std::string callAuth = cluster->auth ? basic("fw", "fw-bench-secret") : std::string();
        auto& reconciled = reconciles[cluster->name];
        const double cpuBefore = cpuSeconds(cluster->process->pid());
        const auto phaseStart = Clock::now();
        double rate;
        if (kind == "state") {
          rate = phase(
              *cluster, clients, duration, 200,
              [&](int, uint64_t) {
                net::ClientRequest request{"GET", "/state", {}, ""};
                if (!cluster->authorization.empty()) {
                  request.headers.emplace_back("Authorization", cluster->authorization);
                }
                return request;
              },
              nullptr, errors);
        } else {
          rate = phase(
              *cluster, clients, duration, 202,
              [&](int thread, uint64_t i) {
                std::string body;
                if (i % 2 == 0) {
                  body = fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"SUPPRESS"}})",
                                     frameworkId);
                } else {
                  body = fmt::format(
                      R"({{"framework_id":{{"value":"{}"}},"type":"RECONCILE","reconcile":{{"tasks":[{{"task_id":{{"value":"t-{}"}}}}]}}}})",
                      frameworkId,
                      (static_cast<uint64_t>(thread) * 7919 + i) % static_cast<uint64_t>(tasks));
                }
                net::ClientRequest request{"POST",
                                           "/api/v1/scheduler",
                                           {{"Content-Type", "application/json"},
                                            {"Accept", "application/json"},
                                            {"Mesos-Stream-Id", streamId}},
                                           std::move(body)};
                if (!callAuth.empty()) request.headers.emplace_back("Authorization", callAuth);
                return request;
              },
              [&](int, uint64_t i) {
                if (i % 2 == 1) ++reconciled;
              },
              errors);
        }
        rates[kind + "/" + cluster->name].push_back(rate);
        // The master's own CPU per request: on this shared 2-core machine the clients' work
        // (TLS included) competes with the master's, so req/s alone mixes the two costs.
        const double served =
            rate * std::chrono::duration<double>(Clock::now() - phaseStart).count();
        if (served > 0) {
          cpuPerRequest[kind + "/" + cluster->name].push_back(
              (cpuSeconds(cluster->process->pid()) - cpuBefore) / served * 1e6);
        }
        std::cerr << fmt::format("round {} {:<5} {:<6} {:>10.1f} req/s\n", round + 1, kind,
                                 cluster->name, rate);
      }
    }
  }

  // Every RECONCILE answered 202 put its UPDATE on the event stream.
  for (Cluster* cluster : {&plain, &secure}) {
    const size_t want = updatesBefore[cluster->name] + reconciles[cluster->name].load();
    if (!waitFor([&] { return cluster->framework->stats().updates >= want; }, 60s)) {
      std::cerr << fmt::format(
          "{}: {} UPDATE events after {} RECONCILEs (want {})\n", cluster->name,
          cluster->framework->stats().updates - updatesBefore[cluster->name],
          reconciles[cluster->name].load(), want - updatesBefore[cluster->name]);
      ok = false;
    }
  }
  // The filtered view is still right after the load.
  expectCounts(secure, secure.authorization, 1, tasks, "ops (after)");
  if (useAuth && useAcls) {
    expectCounts(secure, basic("viewer", "viewer-bench-secret"), 0, 0, "viewer (after)");
  }
  const std::string loadAfter = loadAverage();

  std::map<std::string, double> out;
  for (const std::string kind : {"state", "calls"}) {
    std::vector<double> ratios;
    const auto& p = rates[kind + "/plain"];
    const auto& s = rates[kind + "/secure"];
    for (size_t i = 0; i < p.size() && i < s.size(); ++i) {
      if (p[i] > 0) ratios.push_back(s[i] / p[i]);
    }
    out[kind + "_plain_rps"] = median(p);
    out[kind + "_secure_rps"] = median(s);
    out[kind + "_secure_over_plain"] = median(ratios);
    const double plainCpu = median(cpuPerRequest[kind + "/plain"]);
    const double secureCpu = median(cpuPerRequest[kind + "/secure"]);
    out[kind + "_plain_master_cpu_us"] = plainCpu;
    out[kind + "_secure_master_cpu_us"] = secureCpu;
    out[kind + "_master_cpu_secure_over_plain"] = plainCpu > 0 ? secureCpu / plainCpu : 0;
  }
  out["state_plain_bytes"] = static_cast<double>(plainBytes);
  out["state_secure_bytes"] = static_cast<double>(secureBytes);
  out["errors"] = static_cast<double>(errors.load());
  out["agents"] = agents;
  out["tasks"] = tasks;
  out["clients"] = clients;
  out["rounds"] = rounds;

  for (Cluster* cluster : {&plain, &secure}) {
    cluster->framework->stop();
    cluster->agents->stop();
  }
  runtime.stop();
  for (Cluster* cluster : {&plain, &secure}) {
    cluster->process->kill(SIGTERM);
    cluster->process->wait(10s);
  }

  std::string json = "{";
  for (const auto& [key, value] : out) {
    if (json.size() > 1) json += ",";
    json += fmt::format("\"{}\":{}", key, value);
  }
  json += "}";
  if (!jsonPath.empty()) std::ofstream(jsonPath) << json << "\n";
  std::cout << json << "\n\n";
  fmt::print("{:<26} {:>12}\n", "measure", "value");
  for (const auto& [key, value] : out) fmt::print("{:<26} {:>12.3f}\n", key, value);
  fmt::print("load average before: {}; after: {}\n", loadBefore, loadAfter);

  if (check) {
    if (errors.load() != 0) return fail(fmt::format("{} requests failed", errors.load()));
    if (!ok) return fail("a check failed (above)");
    std::cout << "check: ok\n";
  }
  return 0;
}

// The master end to end at cluster scale (#19): a real `tessera master` process (its own work
// dir, replicated_log registry, a free port), S simulated agents in this process speaking the
// real agent protocol (bench/harness/simulated_agents.h) and one load framework on the v1
// scheduler HTTP API (bench/harness/load_framework.h). Phases, in order:
//
//   1. register S agents;                         -> master RSS per agent
//   2. launch N tasks, as fast as offers come;    -> tasks/s to TASK_RUNNING, ACCEPT→RUNNING
//                                                    p50/p99, master RSS per task
//   3. GET /state and /state-summary, with a GET /master/transport (served on the master's
//      strand) every 5 ms beside them;            -> time, bytes, worst ping (the strand stall)
//   4. /metrics/snapshot                          -> allocation-run metrics
//   5. SIGKILL the master, restart it on the same work dir and ports;
//                                                 -> time until every agent is re-registered
//   6. every task ends (TASK_FINISHED);           -> acknowledged status updates/s
//
// Usage: cluster [--agents=1000] [--tasks=10000] [--agent_resources=cpus:32;mem:65536;...]
//                [--task_cpus=1] [--task_mem=32] [--connections=8] [--io_threads=2]
//                [--state_requests=3] [--failover=true] [--json=FILE] [--check]
//                [--update_retry_ms=10000] [--max_event_stream_queue_size=512MB]
//                [--master_flags="--flag=value ..."]
// --check (the ctest smoke run): exits non-zero unless every task reached TASK_RUNNING, every
// status update was acknowledged exactly once, nothing is left running, and the JSON has every
// field.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness/bench_args.h"
#include "bench/harness/load_framework.h"
#include "bench/harness/simulated_agents.h"
#include "kernel/runtime/logging.h"
#include "tests/support/subprocess.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using tessera::testing::freePort;
using tessera::testing::httpRequest;
using tessera::testing::Subprocess;
using tessera::testing::TempDir;
using tessera::testing::tesseraBinary;
using tessera::testing::waitFor;
namespace bench = tessera::bench;
using tessera::bench::flag;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

size_t residentBytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The master process, restartable on the same work dir and ports.
struct Master {
  TempDir dir, config;
  uint16_t port = 0, transportPort = 0;
  std::unique_ptr<Subprocess> process;
  std::vector<std::string> flags;  // added to the command line

  bool start() {
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "master",
                                     fmt::format("--port={}", port),
                                     fmt::format("--transport_port={}", transportPort),
                                     "--registry=replicated_log",
                                     fmt::format("--work_dir={}", dir.path().string()),
                                     "--quiet"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto started = Subprocess::start(
        {argv, {{"TESSERA_CONFIG_DIR", config.path().string()}}, {}, std::nullopt});
    if (!started) return false;
    process = std::move(*started);
    return waitFor(
        [&] {
          auto response = httpRequest(port, "GET", "/master/transport", "", 1s);
          return response && response->status == 200;
        },
        60s);
  }
};

// A GET of `path` while another thread GETs /master/transport every 5 ms.
struct Probe {
  double seconds = 0;
  size_t bytes = 0;
  double worstPing = 0;  // the slowest ping that overlapped the request
};

double pingOnce(uint16_t port) {
  auto start = Clock::now();
  auto response = httpRequest(port, "GET", "/master/transport", "", 30s);
  return response ? seconds(Clock::now() - start) : 30.0;
}

Probe probe(uint16_t port, const std::string& path) {
  std::atomic<bool> done{false};
  std::atomic<double> worst{0};
  std::thread pinger([&] {
    while (!done) {
      double took = pingOnce(port);
      if (took > worst) worst = took;
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(10ms);
  auto start = Clock::now();
  auto response = httpRequest(port, "GET", path, "", 120s);
  Probe result;
  result.seconds = seconds(Clock::now() - start);
  result.bytes = response ? response->body.size() : 0;
  done = true;
  pinger.join();
  result.worstPing = worst;
  return result;
}

double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const int agents = std::stoi(flag(argc, argv, "agents", "1000"));
  const int tasks = std::stoi(flag(argc, argv, "tasks", "10000"));
  const std::string agentResources =
      flag(argc, argv, "agent_resources", "cpus:32;mem:65536;disk:65536;ports:[31000-32000]");
  const double taskCpus = std::stod(flag(argc, argv, "task_cpus", "1"));
  const double taskMem = std::stod(flag(argc, argv, "task_mem", "32"));
  const int connections = std::stoi(flag(argc, argv, "connections", "8"));
  const size_t ioThreads = std::stoul(flag(argc, argv, "io_threads", "2"));
  const int stateRequests = std::stoi(flag(argc, argv, "state_requests", "3"));
  const bool failover = flag(argc, argv, "failover", "true") == "true";
  const bool check = flag(argc, argv, "check", "false") == "true";
  const std::string jsonPath = flag(argc, argv, "json", "");
  const auto timeout = std::chrono::seconds(60 + agents / 100 + tasks / 1000);

  (void)tessera::kernel::runtime::setupLogging({"cluster", "ERROR", "", false});
  std::map<std::string, double> out;  // every number of the report, by JSON key
  auto fail = [&](const std::string& why) {
    std::cerr << "cluster: " << why << "\n";
    return 1;
  };

  Master master;
  // A framework that is sent offers for every agent at once gets megabytes of events in a
  // burst: the default 1 MiB bound on unread events would disconnect it on a busy machine.
  master.flags.push_back("--max_event_stream_queue_size=" +
                         flag(argc, argv, "max_event_stream_queue_size", "512MB"));
  for (std::string extra = flag(argc, argv, "master_flags", ""); !extra.empty();) {
    auto space = extra.find(' ');
    if (space != 0) master.flags.push_back(extra.substr(0, space));
    extra = space == std::string::npos ? "" : extra.substr(space + 1);
  }
  master.port = freePort();
  do master.transportPort = freePort();
  while (master.transportPort == master.port);
  if (!master.start()) return fail("the master did not start");
  std::this_thread::sleep_for(500ms);
  const size_t idleRss = residentBytes(master.process->pid());

  tessera::kernel::runtime::Runtime runtime({ioThreads, 4, static_cast<size_t>(agents) + 1024});
  runtime.start();
  bench::SimulatedAgentsOptions agentOptions;
  agentOptions.master = fmt::format("127.0.0.1:{}", master.port);
  agentOptions.transportPort = master.transportPort;
  agentOptions.agents = agents;
  agentOptions.updateRetry =
      std::chrono::milliseconds(std::stoi(flag(argc, argv, "update_retry_ms", "10000")));
  agentOptions.describe = [&](int index) {
    return bench::simulatedAgent(index, agentResources,
                                 fmt::format("rack:r{};zone:z{}", index % 50, index % 3));
  };
  auto fleetStart = Clock::now();
  auto started = bench::SimulatedAgents::start(runtime, agentOptions);
  if (!started) return fail(started.status().toString());
  auto fleet = std::move(started).value();
  if (!waitFor([&] { return fleet->registered() == static_cast<size_t>(agents); }, timeout)) {
    return fail(fmt::format("only {} of {} agents registered", fleet->registered(), agents));
  }
  out["agents_registered_s"] = seconds(Clock::now() - fleetStart);
  std::this_thread::sleep_for(500ms);
  const size_t agentsRss = residentBytes(master.process->pid());

  // 2. Launch.
  bench::LoadFrameworkOptions frameworkOptions;
  frameworkOptions.port = master.port;
  frameworkOptions.tasks = tasks;
  frameworkOptions.taskCpus = taskCpus;
  frameworkOptions.taskMem = taskMem;
  frameworkOptions.connections = connections;
  auto framework = bench::LoadFramework::start(runtime, frameworkOptions);
  if (!framework) return fail(framework.status().toString());
  auto& load = **framework;
  if (!waitFor(
          [&] {
            auto s = load.stats();
            return s.running == static_cast<size_t>(tasks) && s.allRunningAfter > 0;
          },
          timeout)) {
    auto s = load.stats();
    return fail(fmt::format("only {} of {} tasks running ({} launched, {} resubscriptions; {})",
                            s.running, tasks, s.launched, s.resubscriptions, s.lastError));
  }
  // Every TASK_RUNNING acknowledged before anything else is measured.
  if (!waitFor([&] { return fleet->stats().acknowledged >= static_cast<size_t>(tasks); },
               timeout)) {
    return fail("the TASK_RUNNING updates were not all acknowledged");
  }
  {
    auto s = load.stats();
    out["launch_tasks_per_s"] = tasks / s.allRunningAfter;
    out["launch_all_running_s"] = s.allRunningAfter;
    out["accept_to_running_p50_ms"] = percentile(s.acceptToRunning, 0.5) * 1000;
    out["accept_to_running_p99_ms"] = percentile(s.acceptToRunning, 0.99) * 1000;
    out["offers"] = static_cast<double>(s.offers);
    out["accepts"] = static_cast<double>(s.accepts);
  }
  std::this_thread::sleep_for(500ms);
  const size_t tasksRss = residentBytes(master.process->pid());
  out["master_rss_idle_mib"] = idleRss / 1048576.0;
  out["master_rss_mib"] = tasksRss / 1048576.0;
  out["master_rss_per_agent_kib"] =
      agents > 0 ? (static_cast<double>(agentsRss) - idleRss) / agents / 1024 : 0;
  out["master_rss_per_task_kib"] =
      tasks > 0 ? (static_cast<double>(tasksRss) - agentsRss) / tasks / 1024 : 0;

  // 3. /state and /state-summary beside a ping on the master's strand.
  std::vector<double> pings;
  for (int i = 0; i < 40; ++i) {
    pings.push_back(pingOnce(master.port));
    std::this_thread::sleep_for(5ms);
  }
  out["ping_idle_ms"] = median(pings) * 1000;
  out["ping_idle_worst_ms"] = *std::max_element(pings.begin(), pings.end()) * 1000;
  for (const std::string path : {"/state", "/state-summary"}) {
    std::vector<double> took, worst;
    size_t bytes = 0;
    for (int i = 0; i < std::max(1, stateRequests); ++i) {
      Probe p = probe(master.port, path);
      took.push_back(p.seconds);
      worst.push_back(p.worstPing);
      bytes = p.bytes;
    }
    const std::string key = path == "/state" ? "state" : "state_summary";
    out[key + "_s"] = median(took);
    out[key + "_bytes"] = static_cast<double>(bytes);
    out[key + "_worst_ping_ms"] = median(worst) * 1000;
  }

  // 4. Allocation metrics.
  if (auto metrics = httpRequest(master.port, "GET", "/metrics/snapshot", "", 30s); metrics) {
    try {
      Poco::JSON::Parser parser;
      auto object = parser.parse(metrics->body).extract<Poco::JSON::Object::Ptr>();
      for (const auto& [name, value] : *object) {
        if (name.find("allocat") != std::string::npos && value.isNumeric()) {
          out["metric:" + name] = value.convert<double>();
        }
      }
    } catch (const std::exception&) {
    }
  }

  // 5. Failover: SIGKILL, restart on the same work dir, time until every agent is back.
  out["failover_reregistered_s"] = 0;
  out["failover_restart_s"] = 0;
  if (failover) {
    const size_t before = fleet->stats().registrations;
    auto killed = Clock::now();
    master.process->kill(SIGKILL);
    master.process->wait(10s);
    if (!master.start()) return fail("the master did not restart");
    auto restarted = Clock::now();
    if (!waitFor(
            [&] {
              auto s = fleet->stats();
              return s.registrations >= before + agents && s.registered == size_t(agents);
            },
            timeout)) {
      auto s = fleet->stats();
      std::cerr << master.process->err().substr(0, 4000) << "\n";
      return fail(fmt::format("only {} of {} agents re-registered ({} registrations, {} refused)",
                              s.registered, agents, s.registrations - before, s.refused));
    }
    out["failover_restart_s"] = seconds(restarted - killed);
    out["failover_reregistered_s"] = seconds(Clock::now() - restarted);
    if (!waitFor([&] { return load.stats().subscribed; }, timeout)) {
      return fail("the framework did not subscribe again");
    }
  }

  // 6. Every task ends; time until every update is acknowledged.
  const size_t ackedBefore = fleet->stats().acknowledged;
  auto finishing = Clock::now();
  fleet->finishTasks();
  if (!waitFor([&] { return fleet->stats().acknowledged >= ackedBefore + tasks; }, timeout)) {
    return fail(fmt::format("only {} of {} TASK_FINISHED updates acknowledged",
                            fleet->stats().acknowledged - ackedBefore, tasks));
  }
  out["acked_updates_per_s"] = tasks / seconds(Clock::now() - finishing);
  waitFor([&] { return fleet->stats().live == 0; }, 10s);
  auto agentStats = fleet->stats();
  auto frameworkStats = load.stats();
  out["agents"] = agents;
  out["tasks"] = tasks;
  out["updates_created"] = static_cast<double>(agentStats.updatesCreated);
  out["updates_acknowledged"] = static_cast<double>(agentStats.acknowledged);
  out["updates_resent"] = static_cast<double>(agentStats.updatesSent - agentStats.updatesCreated);
  out["stale_acks"] = static_cast<double>(agentStats.staleAcks);
  out["tasks_left_live"] = static_cast<double>(agentStats.live);
  out["call_errors"] = static_cast<double>(frameworkStats.callErrors);

  load.stop();
  fleet->stop();
  runtime.stop();
  master.process->kill(SIGTERM);
  master.process->wait(10s);

  std::string json = "{";
  for (const auto& [key, value] : out) {
    if (json.size() > 1) json += ",";
    json += fmt::format("\"{}\":{}", key, value);
  }
  json += "}";
  if (!jsonPath.empty()) std::ofstream(jsonPath) << json << "\n";
  std::cout << json << "\n\n";
  fmt::print("{:<34} {:>14}\n", "measure", "value");
  for (const auto& [key, value] : out) fmt::print("{:<34} {:>14.3f}\n", key, value);

  if (check) {
    const char* required[] = {"launch_tasks_per_s",
                              "accept_to_running_p50_ms",
                              "accept_to_running_p99_ms",
                              "acked_updates_per_s",
                              "master_rss_per_agent_kib",
                              "master_rss_per_task_kib",
                              "state_s",
                              "state_bytes",
                              "state_worst_ping_ms",
                              "state_summary_s",
                              "state_summary_bytes",
                              "state_summary_worst_ping_ms",
                              "failover_reregistered_s",
                              "agents_registered_s"};
    Poco::JSON::Parser parser;
    auto object = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
    for (const char* key : required) {
      if (!object->has(key)) return fail(fmt::format("the JSON has no '{}'", key));
    }
    bool allocationMetric = false;
    for (const auto& [name, value] : *object) {
      if (name.rfind("metric:", 0) == 0) allocationMetric = true;
    }
    if (!allocationMetric) return fail("the JSON has no allocation metric");
    if (frameworkStats.running != static_cast<size_t>(tasks)) return fail("not every task ran");
    if (frameworkStats.terminal != static_cast<size_t>(tasks)) return fail("not every task ended");
    if (agentStats.acknowledged != agentStats.updatesCreated ||
        agentStats.updatesCreated != 2 * static_cast<size_t>(tasks)) {
      return fail(fmt::format("{} updates created, {} acknowledged (want {} each)",
                              agentStats.updatesCreated, agentStats.acknowledged, 2 * tasks));
    }
    if (agentStats.live != 0 || agentStats.running != 0) return fail("tasks left running");
    if (agentStats.refused != 0) return fail("agents refused");
    std::cout << "check: ok\n";
  }
  return 0;
}

// Failover of a 3-master cluster on a real ZooKeeper, with N agent processes, S simulated agents
// (bench/harness/simulated_agents.h: the real agent protocol and leader detection, many agents in
// this process) and M running tasks (`tessera execute` frameworks following the leader through
// zk://; their tasks land on either kind of agent). Each round kills the leader and measures the
// time to a new leader and until every agent has re-registered with it, then checks that every
// task is still running; the killed master is restarted as a follower. Rounds alternate SIGKILL
// (the session must time out: the case that matters) with SIGTERM (the leader withdraws and its
// znode goes at once: the baseline, measured in the same run).
//
//   build/bin/failover_bench [--agents=20] [--simulated_agents=0] [--agents_per_session=1]
//                            [--tasks=5] [--rounds=3] [--session_timeout=2]
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness/simulated_agents.h"
#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

using namespace tessera::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Poco::JSON::Object::Ptr getJson(uint16_t port, const std::string& path) {
  auto response = httpRequest(port, "GET", path, "", 2s);
  if (!response || response->status != 200) return nullptr;
  try {
    return Poco::JSON::Parser().parse(response->body).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

bool leads(uint16_t port) {
  auto state = getJson(port, "/state");
  return state && state->has("leader") && state->has("elected_time") &&
         state->getValue<std::string>("leader") == state->getValue<std::string>("pid");
}

// From /metrics/snapshot: /state with a thousand agents is a megabyte to poll.
size_t activated(uint16_t port) {
  auto metrics = getJson(port, "/metrics/snapshot");
  return metrics && metrics->has("master/slaves_active")
             ? static_cast<size_t>(metrics->getValue<double>("master/slaves_active"))
             : 0;
}

size_t runningTasks(uint16_t port) {
  auto state = getJson(port, "/state");
  if (!state) return 0;
  size_t running = 0;
  auto frameworks = state->getArray("frameworks");
  for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
    auto tasks = frameworks->getObject(i)->getArray("tasks");
    for (size_t j = 0; tasks && j < tasks->size(); ++j) {
      running += tasks->getObject(j)->getValue<std::string>("state") == "TASK_RUNNING";
    }
  }
  return running;
}

int flag(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--" + name + "=", 0) == 0) return std::atoi(arg.c_str() + name.size() + 3);
  }
  return fallback;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int processAgents = flag(argc, argv, "agents", 20);
  const int simulatedAgents = flag(argc, argv, "simulated_agents", 0);
  const int agentsPerSession = flag(argc, argv, "agents_per_session", 1);
  const int agents = processAgents + simulatedAgents;
  const int taskCount = flag(argc, argv, "tasks", 5);
  const int rounds = flag(argc, argv, "rounds", 3);
  const int sessionTimeout = flag(argc, argv, "session_timeout", 2);
  if (!zooKeeperMissingReason().empty()) {
    std::cerr << zooKeeperMissingReason() << "\n";
    return 1;
  }
  auto zk = ZooKeeperEnsemble::start(3);
  if (!zk) {
    std::cerr << zk.status().toString() << "\n";
    return 1;
  }
  const std::string url = (*zk)->url("/tessera");
  TempDir dir, config;
  const std::map<std::string, std::string> env = {{"TESSERA_CONFIG_DIR", config.path().string()}};

  std::vector<uint16_t> masterPorts;
  std::vector<std::unique_ptr<Subprocess>> masters(3);
  for (int i = 0; i < 3; ++i) masterPorts.push_back(freePort());
  auto startMaster = [&](int i) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "master", "--zk=" + url, "--quorum=2",
          fmt::format("--zk_session_timeout={}secs", sessionTimeout),
          fmt::format("--port={}", masterPorts[i]),
          fmt::format("--work_dir={}", (dir.path() / fmt::format("m{}", i)).string()), "--quiet"},
         env,
         {},
         std::nullopt});
    if (!process) std::abort();
    masters[i] = std::move(*process);
  };
  auto leader = [&]() {
    for (int i = 0; i < 3; ++i) {
      if (masters[i] && leads(masterPorts[i])) return i;
    }
    return -1;
  };
  for (int i = 0; i < 3; ++i) startMaster(i);
  int current = -1;
  waitFor([&] { return (current = leader()) >= 0; }, 60s);
  if (current < 0) {
    std::cerr << "no master was elected\n";
    return 1;
  }

  std::vector<std::unique_ptr<Subprocess>> agentProcesses;
  for (int a = 0; a < processAgents; ++a) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "agent", fmt::format("--port={}", freePort()),
          "--master=" + url,
          fmt::format("--work_dir={}", (dir.path() / fmt::format("a{}", a)).string()),
          "--resources=cpus:1;mem:256;disk:256;ports:[31000-31010]", "--quiet"},
         env,
         {},
         std::nullopt});
    if (!process) std::abort();
    agentProcesses.push_back(std::move(*process));
  }
  // Many simulated agents need more than the default blocking pool (each asks for the leader's
  // transport port and stops its old connection there) and their connections' fds.
  tessera::kernel::runtime::Runtime runtime(tessera::kernel::runtime::Runtime::Options{
      2, 8, static_cast<size_t>(4 * simulatedAgents + 1024)});
  runtime.start();
  // The simulated agents' leader detectors log as an agent does: warnings only here.
  (void)tessera::kernel::runtime::setupLogging({"failover_bench", "WARNING", "", false});
  std::unique_ptr<tessera::bench::SimulatedAgents> simulated;
  if (simulatedAgents > 0) {
    tessera::bench::SimulatedAgentsOptions options;
    options.master = url;
    options.agents = simulatedAgents;
    options.agentsPerSession = agentsPerSession;
    options.sessionTimeout = std::chrono::seconds(sessionTimeout);
    auto started = tessera::bench::SimulatedAgents::start(runtime, options);
    if (!started) {
      std::cerr << started.status().toString() << "\n";
      return 1;
    }
    simulated = std::move(started).value();
  }
  const auto registering = Clock::now();
  if (!waitFor([&] { return activated(masterPorts[current]) == static_cast<size_t>(agents); },
               300s)) {
    std::cerr << "only " << activated(masterPorts[current]) << " of " << agents
              << " agents registered";
    if (simulated) std::cerr << " (" << simulated->registered() << " simulated ones think so)";
    std::cerr << "\n";
    return 1;
  }
  std::cout << fmt::format("{} agents registered in {:.3f} s", agents,
                           std::chrono::duration<double>(Clock::now() - registering).count())
            << std::endl;
  const auto stopFile = dir.path() / "stop";
  std::vector<std::unique_ptr<Subprocess>> tasks;
  for (int t = 0; t < taskCount; ++t) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "execute", "--master=" + url, fmt::format("--name=t{}", t),
          fmt::format("--command=while [ ! -e {} ]; do sleep 0.2; done", stopFile.string())},
         env,
         {},
         std::nullopt});
    if (!process) std::abort();
    tasks.push_back(std::move(*process));
  }
  if (!waitFor([&] { return runningTasks(masterPorts[current]) == static_cast<size_t>(taskCount); },
               120s)) {
    std::cerr << "tasks did not all start\n";
    return 1;
  }

  std::vector<double> killLeader, killAgents, termLeader, termAgents;
  int lost = 0;
  for (int round = 0; round < 2 * rounds; ++round) {
    const bool sigkill = round % 2 == 0;
    const auto start = Clock::now();
    masters[current]->kill(sigkill ? SIGKILL : SIGTERM);
    int next = -1;
    while (Clock::now() - start < 120s) {
      for (int i = 0; i < 3; ++i) {
        if (i != current && leads(masterPorts[i])) next = i;
      }
      if (next >= 0) break;
      std::this_thread::sleep_for(10ms);  // polling a remote process's HTTP endpoint
    }
    const double elected = std::chrono::duration<double>(Clock::now() - start).count();
    if (next < 0) {
      std::cerr << "no new leader within 120 s\n";
      return 1;
    }
    if (!waitFor([&] { return activated(masterPorts[next]) == static_cast<size_t>(agents); },
                 120s)) {
      std::cerr << "only " << activated(masterPorts[next]) << " of " << agents
                << " agents re-registered within 120 s\n";
      return 1;
    }
    const double back = std::chrono::duration<double>(Clock::now() - start).count();
    waitFor([&] { return runningTasks(masterPorts[next]) == static_cast<size_t>(taskCount); }, 30s);
    const int running = static_cast<int>(runningTasks(masterPorts[next]));
    lost += taskCount - running;
    (sigkill ? killLeader : termLeader).push_back(elected);
    (sigkill ? killAgents : termAgents).push_back(back - elected);
    std::cout << fmt::format(
                     "round {} ({}): new leader after {:.3f} s, all {} agents back {:.3f} s "
                     "later, {} of {} tasks running",
                     round + 1, sigkill ? "SIGKILL" : "SIGTERM", elected, agents, back - elected,
                     running, taskCount)
              << std::endl;
    masters[current]->wait(30s);
    startMaster(current);  // back as a follower
    current = next;
  }

  std::ofstream(stopFile) << "now";
  if (simulated) simulated->finishTasks();
  int finished = 0;
  for (auto& task : tasks) {
    if (task->wait(60s) && task->exitCode() == 0) {
      ++finished;
    } else {
      std::string err = task->err();
      std::cerr << "a task's framework did not finish normally; the end of its stderr:\n"
                << err.substr(err.size() > 2000 ? err.size() - 2000 : 0) << "\n";
    }
  }
  lost += taskCount - finished;
  const size_t refused = simulated ? simulated->refused() : 0;
  if (simulated) simulated->stop();
  for (auto& agent : agentProcesses) agent->kill(SIGTERM);
  for (auto& agent : agentProcesses) agent->wait(30s);
  for (auto& master : masters) {
    if (master) master->kill(SIGTERM);
  }
  for (auto& master : masters) {
    if (master) master->wait(30s);
  }
  std::cout << fmt::format(
      "\nagents={} ({} processes, {} simulated, {} per ZooKeeper session) tasks={} rounds={} "
      "zk_session_timeout={}s\n"
      "SIGKILL: new leader median {:.3f} s, agents back median {:.3f} s after\n"
      "SIGTERM (baseline): new leader median {:.3f} s, agents back median {:.3f} s after\n"
      "SIGKILL / SIGTERM time to new leader: {:.1f}x\n"
      "tasks lost: {} (finished normally at the end: {} of {}); agents refused: {}\n",
      agents, processAgents, simulatedAgents, agentsPerSession, taskCount, rounds, sessionTimeout,
      median(killLeader), median(killAgents), median(termLeader), median(termAgents),
      median(termLeader) > 0 ? median(killLeader) / median(termLeader) : 0.0, lost, finished,
      taskCount, refused);
  return lost == 0 && refused == 0 ? 0 : 2;
}

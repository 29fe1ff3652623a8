// #21's Measure: time from SIGKILL of a framework leader (`tessera framework --zk`) to the
// other host's re-subscription with the same FrameworkID, median of several rounds, on a real
// ZooKeeper with the session timeout the HA masters run with (failover_bench: 2 s). The killed
// host is started again as a follower before the next round.
//
//   build/bin/framework_failover_bench --rounds=7 --session_timeout=2
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <signal.h>

#include <algorithm>
#include <iostream>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

using namespace tessera::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

int flag(int argc, char** argv, const std::string& name, int fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return std::stoi(arg.substr(prefix.size()));
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = flag(argc, argv, "rounds", 5);
  const int sessionTimeout = flag(argc, argv, "session_timeout", 2);
  if (!zooKeeperMissingReason().empty()) {
    std::cerr << zooKeeperMissingReason() << "\n";
    return 1;
  }
  auto zk = ZooKeeperEnsemble::start(1);
  if (!zk) {
    std::cerr << zk.status().toString() << "\n";
    return 1;
  }
  const std::string url = (*zk)->url("/bench/framework");
  TempDir dir, config;
  const std::map<std::string, std::string> env = {{"TESSERA_CONFIG_DIR", config.path().string()}};
  const fs::path build = tesseraBinary().parent_path().parent_path();
  const fs::path lib = build / "lib" / "tessera";
  const std::string cluster = fmt::format(
      R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_allocator_drf"}}]}},
  {{"file": "{}", "modules": [{{"name": "org_tessera_containerizer_native"}}]}}]}})",
      (lib / "libtessera_allocator_drf.so").string(),
      (lib / "libtessera_containerizer_native.so").string());
  const std::string module = fmt::format(
      R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_test_ha_framework"}}]}}]}})",
      (build / "tests" / "modules" / "libtest_ha_framework.so").string());

  const uint16_t masterPort = freePort();
  auto local =
      Subprocess::start({{tesseraBinary().string(), "local", fmt::format("--port={}", masterPort),
                          "--modules=" + cluster, "--quiet"},
                         env,
                         {},
                         std::nullopt});
  if (!local || !waitFor([&] {
        auto r = httpRequest(masterPort, "GET", "/health", "", 2s);
        return r && r->status == 200;
      })) {
    std::cerr << "tessera local did not come up\n";
    return 1;
  }
  std::vector<uint16_t> ports = {freePort(), freePort()};
  std::vector<std::unique_ptr<Subprocess>> hosts(2);
  auto startHost = [&](int i) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "framework", "--module=org_tessera_test_ha_framework",
          fmt::format("--master=127.0.0.1:{}", masterPort), fmt::format("--port={}", ports[i]),
          "--zk=" + url, fmt::format("--zk_session_timeout={}secs", sessionTimeout),
          "--modules=" + module, "--quiet"},
         env,
         {},
         std::nullopt});
    if (process) hosts[i] = std::move(*process);
  };
  // Host i's own view: (leading and subscribed as itself, its FrameworkID).
  auto self = [&](int i) -> std::pair<bool, std::string> {
    auto me = getJson(ports[i], "/ha/whoami", 1s);
    if (!me) return {false, ""};
    bool leads = me->getValue<bool>("leading") && me->getValue<bool>("subscribed") &&
                 me->getValue<std::string>("address") == fmt::format("127.0.0.1:{}", ports[i]);
    return {leads, me->getValue<std::string>("framework_id")};
  };
  startHost(0);
  startHost(1);
  int leader = -1;
  std::string frameworkId;
  auto findLeader = [&] {
    return waitFor(
        [&] {
          for (int i = 0; i < 2; ++i) {
            auto [leads, id] = self(i);
            if (leads) {
              leader = i;
              frameworkId = id;
              return true;
            }
          }
          return false;
        },
        60s);
  };
  if (!findLeader()) {
    std::cerr << "no framework leader\n";
    return 1;
  }
  std::vector<double> takeovers;
  int sameId = 0;
  for (int round = 0; round < rounds; ++round) {
    const int other = 1 - leader;
    const auto killed = std::chrono::steady_clock::now();
    hosts[leader]->kill(SIGKILL);
    std::string newId;
    bool took = waitFor(
        [&] {
          auto [leads, id] = self(other);
          newId = id;
          return leads;
        },
        120s);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    if (!took) {
      std::cerr << "round " << round << ": no takeover\n";
      return 1;
    }
    takeovers.push_back(seconds);
    if (newId == frameworkId) ++sameId;
    std::cout << fmt::format("round {}: re-subscribed after {:.3f} s (same FrameworkID: {})\n",
                             round, seconds, newId == frameworkId);
    hosts[leader]->wait(10s);
    startHost(leader);  // back as a follower
    leader = other;
    waitFor([&] { return getJson(ports[1 - leader], "/ha/whoami", 1s) != nullptr; }, 60s);
  }
  std::sort(takeovers.begin(), takeovers.end());
  std::cout << fmt::format(
      "framework leader SIGKILL -> re-subscription: median {:.3f} s, min {:.3f} s, max {:.3f} s "
      "over {} rounds (session timeout {} s; goal <= {} s); same FrameworkID in {}/{}\n",
      takeovers[takeovers.size() / 2], takeovers.front(), takeovers.back(), rounds, sessionTimeout,
      sessionTimeout + 1, sameId, rounds);
  for (auto& host : hosts) {
    if (host) host->kill(SIGTERM);
  }
  local.value()->kill(SIGTERM);
  return 0;
}

#include "tests/support/zookeeper.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

namespace tessera::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kJar = "/usr/share/java/zookeeper.jar";
constexpr const char* kJava = "/usr/bin/java";

std::string tail(const std::string& text, size_t bytes = 2000) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

}  // namespace

std::string zooKeeperMissingReason() {
  // The jar's manifest names its dependencies (netty, jute, slf4j, ...) by absolute path.
  if (!fs::exists(kJar)) {
    return std::string("ZooKeeper is not installed (no ") + kJar +
           "; apt-get install zookeeper, or ./dev.sh deps)";
  }
  if (access(kJava, X_OK) != 0) {
    return std::string("java is not installed (no ") + kJava + "; apt-get install zookeeper)";
  }
  return "";
}

api::Result<std::unique_ptr<ZooKeeperEnsemble>> ZooKeeperEnsemble::start(
    int servers, std::chrono::milliseconds timeout) {
  if (auto missing = zooKeeperMissingReason(); !missing.empty()) {
    return api::unavailable("{}", missing);
  }
  auto ensemble = std::unique_ptr<ZooKeeperEnsemble>(new ZooKeeperEnsemble());
  ensemble->servers_.resize(static_cast<size_t>(servers));
  for (int i = 0; i < servers; ++i) {
    auto& server = ensemble->servers_[i];
    server.clientPort = freePort();
    do {
      server.peerPort = freePort();
    } while (server.peerPort == server.clientPort);
    do {
      server.electionPort = freePort();
    } while (server.electionPort == server.clientPort || server.electionPort == server.peerPort);
    server.dir = (ensemble->root_.path() / fmt::format("zk{}", i + 1)).string();
    fs::create_directories(fs::path(server.dir) / "data");
    std::string config = fmt::format(
        "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}/data\nclientPort={}\n"
        "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nadmin.enableServer=false\n"
        "maxSessionTimeout=60000\nminSessionTimeout=1000\n"
        // Every client is on loopback here: lift the 60-connections-per-address default so a
        // bench can hold one session per simulated agent, as hosts of their own would.
        "maxClientCnxns=0\n",
        server.dir, server.clientPort);
    std::ofstream(fs::path(server.dir) / "zoo.cfg") << config;
    std::ofstream(fs::path(server.dir) / "data" / "myid") << (i + 1) << "\n";
  }
  if (servers > 1) {
    std::string peers;
    for (int j = 0; j < servers; ++j) {
      peers += fmt::format("server.{}=127.0.0.1:{}:{}\n", j + 1, ensemble->servers_[j].peerPort,
                           ensemble->servers_[j].electionPort);
    }
    for (auto& server : ensemble->servers_) {
      std::ofstream(fs::path(server.dir) / "zoo.cfg", std::ios::app) << peers;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; i < servers; ++i) {
    if (auto launched = ensemble->launch(i); !launched) return launched;
  }
  for (int i = 0; i < servers; ++i) {
    if (auto ready = ensemble->awaitReady(i, deadline); !ready) return ready;
  }
  return ensemble;
}

api::Status ZooKeeperEnsemble::launch(int index) {
  auto& server = servers_[index];
  Subprocess::Options options;
  options.argv = {kJava,
                  "-Xmx256m",
                  "-XX:+UseSerialGC",
                  "-XX:TieredStopAtLevel=1",
                  "-Dzookeeper.jmx.log4j.disable=true",
                  "-cp",
                  kJar,
                  "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                  server.dir + "/zoo.cfg"};
  options.cwd = server.dir;
  auto started = Subprocess::start(std::move(options));
  if (!started) return started.status();
  server.process = std::move(*started);
  return api::Status::ok();
}

api::Status ZooKeeperEnsemble::awaitReady(int index,
                                          std::chrono::steady_clock::time_point deadline) {
  auto& server = servers_[index];
  while (std::chrono::steady_clock::now() < deadline) {
    if (!server.process->running()) {
      return api::unavailable("zookeeper server {} exited: {}", index + 1,
                              tail(server.process->out() + server.process->err()));
    }
    // A server of an ensemble answers ruok before it has a quorum; srvr says its mode.
    auto answer = fourLetterWord(index, "srvr");
    if (answer && answer->find("Mode: ") != std::string::npos) return api::Status::ok();
    std::this_thread::sleep_for(50ms);
  }
  return api::unavailable("zookeeper server {} on port {} not serving in time: {}", index + 1,
                          server.clientPort, tail(server.process->out() + server.process->err()));
}

ZooKeeperEnsemble::~ZooKeeperEnsemble() {
  for (size_t i = 0; i < servers_.size(); ++i) kill(static_cast<int>(i));
}

std::string ZooKeeperEnsemble::connectString() const {
  std::string hosts;
  for (const auto& server : servers_) {
    if (!hosts.empty()) hosts += ",";
    hosts += fmt::format("127.0.0.1:{}", server.clientPort);
  }
  return hosts;
}

void ZooKeeperEnsemble::kill(int index) {
  auto& server = servers_[index];
  if (!server.process) return;
  server.process->kill(SIGKILL);
  server.process->wait(10s);
  server.process.reset();
}

bool ZooKeeperEnsemble::running(int index) const {
  return servers_[index].process && servers_[index].process->running();
}

api::Status ZooKeeperEnsemble::restart(int index, std::chrono::milliseconds timeout) {
  kill(index);
  if (auto launched = launch(index); !launched) return launched;
  return awaitReady(index, std::chrono::steady_clock::now() + timeout);
}

api::Result<std::string> ZooKeeperEnsemble::fourLetterWord(int index,
                                                           const std::string& word) const {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return api::unavailable("socket: {}", errno);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(servers_[index].clientPort);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return api::unavailable("cannot connect to zookeeper server {}", index + 1);
  }
  if (write(fd, word.data(), word.size()) != static_cast<ssize_t>(word.size())) {
    close(fd);
    return api::unavailable("cannot write to zookeeper server {}", index + 1);
  }
  std::string answer;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) answer.append(buffer, static_cast<size_t>(n));
  close(fd);
  if (answer.empty()) return api::unavailable("zookeeper server {} said nothing", index + 1);
  return answer;
}

ZooKeeperEnsemble& sharedZooKeeper() {
  static auto ensemble = [] {
    auto started = ZooKeeperEnsemble::start(1);
    if (!started) std::cerr << "cannot start ZooKeeper: " << started.status().toString() << "\n";
    return started ? std::move(*started) : nullptr;
  }();
  if (!ensemble) std::abort();
  return *ensemble;
}

}  // namespace tessera::testing

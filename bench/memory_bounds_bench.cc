// RSS of a real `tessera master` under peers that try to make it hold memory (#20, Measure):
//
//   1. `connections` connections to the agent transport port, each announcing a frame of the
//      maximum size (16 MiB) and sending only its first 64 KiB, then stalling;
//   2. `subscribers` schedulers that SUBSCRIBE, stop reading their event stream, and ask for
//      RECONCILEs of `tasks` unknown tasks `calls` times each (every task is one UPDATE event).
//
// Each round starts a fresh master (in-memory registry, default flags), samples its VmRSS every
// 20 ms and reports the peak above its idle RSS; the summary gives the median of the rounds.
//
// Usage: memory_bounds_bench [rounds=5] [connections=1000] [subscribers=100] [tasks=20000]
//                            [calls=2] [master flags...]

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/subprocess.h"

namespace {

using namespace std::chrono_literals;
using tessera::testing::freePort;
using tessera::testing::httpRequest;
using tessera::testing::Subprocess;
using tessera::testing::TempDir;
using tessera::testing::tesseraBinary;
using tessera::testing::waitFor;

constexpr size_t kMaxFrame = 16 * 1024 * 1024;  // the transport's default maxMessageBytes

size_t residentBytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double mib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int connectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends as much of `bytes` as the socket takes without blocking for long (a closed or full
// peer ends it).
void sendSome(int fd, const std::string& bytes) {
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Samples a process's RSS every 20 ms until stopped; keeps the peak.
class Sampler {
 public:
  explicit Sampler(pid_t pid)
      : thread_([this, pid] {
          while (!stop_) {
            peak_ = std::max(peak_.load(), residentBytes(pid));
            std::this_thread::sleep_for(20ms);
          }
        }) {}
  size_t finish() {
    stop_ = true;
    thread_.join();
    return peak_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<size_t> peak_{0};
  std::thread thread_;
};

struct Master {
  TempDir dir, config;
  uint16_t port = 0;
  uint16_t transportPort = 0;
  std::unique_ptr<Subprocess> process;
};

std::unique_ptr<Master> startMaster(const std::vector<std::string>& flags) {
  auto master = std::make_unique<Master>();
  master->port = freePort();
  std::vector<std::string> argv = {tesseraBinary().string(),
                                   "master",
                                   fmt::format("--port={}", master->port),
                                   "--registry=in_memory",
                                   fmt::format("--work_dir={}", master->dir.path().string()),
                                   "--quiet"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto process = Subprocess::start(
      {argv, {{"TESSERA_CONFIG_DIR", master->config.path().string()}}, {}, std::nullopt});
  if (!process) return nullptr;
  master->process = std::move(*process);
  std::string body;
  if (!waitFor(
          [&] {
            auto response = httpRequest(master->port, "GET", "/master/transport");
            if (!response || response->status != 200) return false;
            body = response->body;
            return true;
          },
          30s)) {
    std::cerr << "the master did not start:\n" << master->process->err() << "\n";
    return nullptr;
  }
  auto colon = body.find(':');
  master->transportPort = static_cast<uint16_t>(std::stoi(body.substr(colon + 1)));
  return master;
}

// The master's RSS once it has settled: the median of a few samples.
size_t idleResident(pid_t pid) {
  std::this_thread::sleep_for(1s);
  std::vector<double> samples;
  for (int i = 0; i < 5; ++i) {
    samples.push_back(static_cast<double>(residentBytes(pid)));
    std::this_thread::sleep_for(100ms);
  }
  return static_cast<size_t>(median(samples));
}

// Scenario 1: the peak RSS above idle, in bytes.
size_t stalledFrames(Master& master, int connections) {
  const pid_t pid = master.process->pid();
  const size_t idle = idleResident(pid);
  Sampler sampler(pid);
  std::string announce(4, '\0');
  const uint32_t length = kMaxFrame + 1;
  announce[0] = static_cast<char>(length >> 24);
  announce[1] = static_cast<char>(length >> 16);
  announce[2] = static_cast<char>(length >> 8);
  announce[3] = static_cast<char>(length);
  announce += '\0';                             // kind: message
  announce += std::string(64 * 1024 - 5, 'x');  // the first 64 KiB of it, then nothing more
  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) {
    int fd = connectTo(master.transportPort);
    if (fd < 0) continue;
    sendSome(fd, announce);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(3s);  // what is taken is taken by now; sample a while longer
  size_t peak = sampler.finish();
  for (int fd : fds) ::close(fd);
  return peak > idle ? peak - idle : 0;
}

// Reads from `fd` until `marker` has been seen; returns what was read.
std::string readUntil(int fd, const std::string& marker) {
  std::string out;
  char buffer[4096];
  while (out.find(marker) == std::string::npos) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

std::string extract(const std::string& text, const std::string& before, char end) {
  auto start = text.find(before);
  if (start == std::string::npos) return {};
  start += before.size();
  return text.substr(start, text.find(end, start) - start);
}

// Scenario 2: the peak RSS above idle, in bytes.
size_t stalledSubscribers(Master& master, int subscribers, int tasks, int calls) {
  const pid_t pid = master.process->pid();
  const size_t idle = idleResident(pid);
  Sampler sampler(pid);
  struct Subscriber {
    int fd;
    std::string frameworkId;
    std::string streamId;
  };
  std::vector<Subscriber> stalled;
  for (int i = 0; i < subscribers; ++i) {
    int fd = connectTo(master.port);
    if (fd < 0) continue;
    std::string body = fmt::format(
        R"({{"type":"SUBSCRIBE","subscribe":{{"framework_info":{{"user":"bench","name":"stalled-{}"}}}}}})",
        i);
    sendSome(fd, fmt::format("POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             "application/json\r\nContent-Length: {}\r\n\r\n{}",
                             body.size(), body));
    // The head and the SUBSCRIBED event; from then on this subscriber reads nothing.
    std::string got = readUntil(fd, "\"heartbeat_interval_seconds\"");
    Subscriber subscriber{fd, extract(got, R"("framework_id":{"value":")", '"'),
                          extract(got, "Mesos-Stream-Id: ", '\r')};
    if (subscriber.frameworkId.empty() || subscriber.streamId.empty()) {
      std::cerr << "subscribing failed: " << got.substr(0, 300) << "\n";
      ::close(fd);
      continue;
    }
    stalled.push_back(std::move(subscriber));
  }
  for (int call = 0; call < calls; ++call) {
    for (const auto& subscriber : stalled) {
      std::string list;
      for (int t = 0; t < tasks; ++t) {
        if (t > 0) list += ',';
        list += fmt::format(R"({{"task_id":{{"value":"unknown-task-{:06}"}}}})", t);
      }
      std::string body = fmt::format(
          R"({{"type":"RECONCILE","framework_id":{{"value":"{}"}},"reconcile":{{"tasks":[{}]}}}})",
          subscriber.frameworkId, list);
      int fd = connectTo(master.port);
      if (fd < 0) continue;
      sendSome(fd, fmt::format("POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nMesos-Stream-Id: {}\r\n"
                               "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
                               subscriber.streamId, body.size(), body));
      readUntil(fd, "\r\n\r\n");  // 202 once the master took it (or 403 once it dropped it)
      ::close(fd);
    }
  }
  std::this_thread::sleep_for(3s);
  size_t peak = sampler.finish();
  for (const auto& subscriber : stalled) ::close(subscriber.fd);
  return peak > idle ? peak - idle : 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, int fallback) { return argc > i ? std::atoi(argv[i]) : fallback; };
  const int rounds = arg(1, 5);
  const int connections = arg(2, 1000);
  const int subscribers = arg(3, 100);
  const int tasks = arg(4, 20000);
  const int calls = arg(5, 2);
  std::vector<std::string> flags(argv + std::min(argc, 6), argv + argc);
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<double> idle, frames, streams;
  for (int round = 0; round < rounds; ++round) {
    auto master = startMaster(flags);
    if (!master) return 1;
    idle.push_back(mib(idleResident(master->process->pid())));
    frames.push_back(mib(stalledFrames(*master, connections)));
    streams.push_back(mib(stalledSubscribers(*master, subscribers, tasks, calls)));
    std::cerr << fmt::format(
        "round {}: idle {:.1f} MiB, +{:.1f} MiB (stalled frames), +{:.1f} "
        "MiB (stalled subscribers)\n",
        round + 1, idle.back(), frames.back(), streams.back());
    master->process->kill(SIGTERM);
    master->process->wait(30s);
  }
  std::cout << fmt::format(
      "\nrounds={} connections={} subscribers={} reconcile: {} tasks x {} calls each\n"
      "master idle RSS: median {:.1f} MiB\n"
      "{} connections announcing {} MiB frames: peak RSS above idle median {:.1f} MiB (max "
      "{:.1f})\n"
      "{} stalled subscribers: peak RSS above idle median {:.1f} MiB (max {:.1f})\n",
      rounds, connections, subscribers, tasks, calls, median(idle), connections,
      kMaxFrame / (1024 * 1024), median(frames), *std::max_element(frames.begin(), frames.end()),
      subscribers, median(streams), *std::max_element(streams.begin(), streams.end()));
  return 0;
}

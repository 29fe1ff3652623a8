// The agent's cost of HTTP health checks (#15's Measure: 1,000 tasks each checked every second
// should take at most 10% of a core). The agent's HealthChecker (kernel/agent/health_checker.h)
// runs on a real runtime and strand, as in the agent, against HTTP servers in a child process
// (so their CPU is not counted); the CPU of this process over the run is the agent's cost.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "kernel/agent/health_checker.h"
#include "kernel/runtime/runtime.h"

namespace {

namespace asio = boost::asio;
using tessera::kernel::agent::HealthChecker;
using tessera::kernel::agent::HealthCheckTarget;

constexpr const char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

// One connection of the servers: read the request (one read is enough for a GET), answer, close.
void serve(std::shared_ptr<asio::ip::tcp::socket> socket) {
  auto buffer = std::make_shared<std::array<char, 1024>>();
  socket->async_read_some(
      asio::buffer(*buffer), [socket, buffer](boost::system::error_code e, size_t) {
        if (e) return;
        asio::async_write(*socket, asio::buffer(kResponse, sizeof kResponse - 1),
                          [socket](boost::system::error_code, size_t) {
                            boost::system::error_code ignored;
                            socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
                            socket->close(ignored);
                          });
      });
}

void accept(asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code e, asio::ip::tcp::socket socket) {
    if (!e) serve(std::make_shared<asio::ip::tcp::socket>(std::move(socket)));
    accept(acceptor);
  });
}

// Forks the servers: `count` listeners on 127.0.0.1; their ports come back through a pipe.
pid_t startServers(size_t count, std::vector<uint16_t>& ports) {
  int pipeFds[2];
  if (pipe(pipeFds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    ::close(pipeFds[0]);
    asio::io_context io;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
    for (size_t i = 0; i < count; ++i) {
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(
          io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
      acceptor->listen(1024);
      uint16_t port = acceptor->local_endpoint().port();
      if (::write(pipeFds[1], &port, sizeof port) != sizeof port) _exit(1);
      accept(*acceptor);
      acceptors.push_back(std::move(acceptor));
    }
    ::close(pipeFds[1]);
    io.run();
    _exit(0);
  }
  ::close(pipeFds[1]);
  for (size_t i = 0; i < count; ++i) {
    uint16_t port = 0;
    if (::read(pipeFds[0], &port, sizeof port) != sizeof port) break;
    ports.push_back(port);
  }
  ::close(pipeFds[0]);
  return pid;
}

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// state.range(0) tasks, each checked every second over HTTP, for 10 seconds after a warm-up.
void BM_HttpChecksEverySecond(benchmark::State& state) {
  const auto tasks = static_cast<size_t>(state.range(0));
  std::vector<uint16_t> ports;
  pid_t servers = startServers(8, ports);
  if (servers <= 0 || ports.size() != 8) {
    state.SkipWithError("cannot start the HTTP servers");
    return;
  }
  tessera::kernel::runtime::Runtime runtime;
  runtime.start();
  std::shared_ptr<tessera::kernel::runtime::StrandExecutor> strand(runtime.makeExecutor());
  std::atomic<uint64_t> unhealthy{0};
  HealthChecker::Callbacks callbacks;
  callbacks.changed = [&](const HealthChecker::Key&, bool healthy, const std::string&) {
    if (!healthy) ++unhealthy;
  };
  callbacks.failed = [](const HealthChecker::Key&, const std::string&) {};
  auto checker = std::make_shared<HealthChecker>(runtime, strand, callbacks);
  strand->call([&] {
    for (size_t i = 0; i < tasks; ++i) {
      tessera::v1::HealthCheck check;
      check.set_type(tessera::v1::HealthCheck::HTTP);
      check.mutable_http()->set_port(ports[i % ports.size()]);
      check.mutable_http()->set_path("/health");
      check.set_delay_seconds(static_cast<double>(i) / static_cast<double>(tasks));  // spread
      check.set_interval_seconds(1);
      check.set_timeout_seconds(5);
      checker->start({"framework", fmt::format("task-{}", i)}, check, HealthCheckTarget{});
    }
    return 0;
  });
  auto completed = [&] { return strand->call([&] { return checker->completedChecks(); }); };
  std::this_thread::sleep_for(std::chrono::seconds(2));  // warm-up: every task checked once
  for (auto _ : state) {
    const uint64_t before = completed();
    const double cpuBefore = cpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(10));
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = cpuSeconds() - cpuBefore;
    const uint64_t checks = completed() - before;
    state.SetIterationTime(wall);
    state.counters["checks_per_s"] = static_cast<double>(checks) / wall;
    state.counters["core_percent"] = 100.0 * cpu / wall;
    state.counters["cpu_us_per_check"] = checks ? 1e6 * cpu / static_cast<double>(checks) : 0;
  }
  state.counters["unhealthy"] = static_cast<double>(unhealthy.load());
  strand->call([&] {
    checker->stopAll();
    return 0;
  });
  strand->drain();
  runtime.stop();
  checker.reset();
  ::kill(servers, SIGKILL);
  waitpid(servers, nullptr, 0);
}

BENCHMARK(BM_HttpChecksEverySecond)
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();

#include "kernel/agent/health_checker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>
#include <vector>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tessera::kernel::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The client context of HTTPS checks: no certificate verification (as Mesos's and Marathon's
// HTTPS checks), shared by all of them.
struct HealthChecker::Tls {
  asio::ssl::context context{asio::ssl::context::tls_client};
  Tls() { context.set_verify_mode(asio::ssl::verify_none); }
};

using Strand = asio::strand<asio::io_context::executor_type>;

// One HTTP(S) check's exchange: connect (and handshake), send the GET, read the status line.
// Only the status line matters, so that is all that is read (no resolver, no body).
struct PlainExchange {
  explicit PlainExchange(const Strand& strand) : stream(strand) {}
  asio::ip::tcp::socket& socket() { return stream; }
  asio::ip::tcp::socket stream;
  std::string request;
  asio::streambuf response;
};

struct HttpsExchange {
  HttpsExchange(const Strand& strand, asio::ssl::context& context) : stream(strand, context) {}
  asio::ip::tcp::socket& socket() { return stream.next_layer(); }
  asio::ssl::stream<asio::ip::tcp::socket> stream;
  std::string request;
  asio::streambuf response;
};

// Runs `exchange` against 127.0.0.1:`port`: `fail(step, error)` or `done(version, status)`.
template <typename Exchange, typename Fail, typename Done>
void readStatus(std::shared_ptr<Exchange> exchange, uint16_t port, Fail fail, Done done) {
  auto onStatusLine = [exchange, fail, done](const boost::system::error_code& e, size_t) {
    if (e) return fail("read", e);
    std::istream in(&exchange->response);
    std::string version;
    int status = 0;
    in >> version >> status;
    done(version, status);
  };
  auto onReady = [exchange, fail, onStatusLine](const boost::system::error_code& e) {
    if (e) return fail("handshake", e);
    asio::async_write(exchange->stream, asio::buffer(exchange->request),
                      [exchange, fail, onStatusLine](const boost::system::error_code& e, size_t) {
                        if (e) return fail("write", e);
                        asio::async_read_until(exchange->stream, exchange->response, "\r\n",
                                               onStatusLine);
                      });
  };
  exchange->socket().async_connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port),
                                   [exchange, fail, onReady](const boost::system::error_code& e) {
                                     if (e) return fail("connect", e);
                                     if constexpr (std::is_same_v<Exchange, HttpsExchange>) {
                                       exchange->stream.async_handshake(
                                           asio::ssl::stream_base::client, onReady);
                                     } else {
                                       onReady(e);
                                     }
                                   });
}

struct HealthChecker::Check {
  Key key;
  v1::HealthCheck spec;
  HealthCheckTarget target;
  Clock::time_point startedAt;
  std::optional<bool> healthy;  // the last reported health
  bool succeeded = false;       // once: the grace period no longer applies
  uint32_t failures = 0;        // in a row, past the grace period
  bool stopped = false;
  uint64_t attempt = 0;   // the check in flight; results of older ones are dropped
  bool inFlight = false;  // attempt has not produced its result yet
  std::unique_ptr<asio::steady_timer> next;      // the next check
  std::unique_ptr<asio::steady_timer> deadline;  // the running check's timeout
  std::unique_ptr<asio::ip::tcp::socket> socket;
  std::shared_ptr<PlainExchange> plain;
  std::shared_ptr<HttpsExchange> https;
  // COMMAND: waiting for a slot, holding one, the running process (its group) and its pidfd.
  bool queued = false;
  bool holdsSlot = false;
  pid_t pid = 0;
  std::unique_ptr<asio::posix::stream_descriptor> pidfd;
  bool timedOut = false;
};

namespace {

Clock::duration seconds(double value) {
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.0, value)));
}

int pidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// A wait status from waitid(P_PIDFD); nullopt when the process runs or is not our child.
std::optional<int> reap(int pidfd, bool block) {
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                WEXITED | (block ? 0 : WNOHANG));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 || info.si_pid == 0) return std::nullopt;
  if (info.si_code == CLD_EXITED) return (info.si_status & 0xff) << 8;
  return info.si_status & 0x7f;
}

// Kills a check's process group and reaps its leader, off the strand when the pool takes it.
void killAndReap(runtime::Runtime& runtime, pid_t pid, int pidfd) {
  if (pid > 0) ::kill(-pid, SIGKILL);
  if (pidfd < 0) return;
  auto work = [pidfd] {
    reap(pidfd, true);
    ::close(pidfd);
  };
  if (!runtime.blocking().submit(work)) work();
}

std::string describeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return fmt::format("ended with wait status {}", status);
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Field 22 of /proc/<pid>/stat (after the command name, which may hold spaces); 0 if unknown.
uint64_t startTimeOf(int64_t pid) {
  const std::string stat = readText(fmt::format("/proc/{}/stat", pid));
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// "hierarchy-id:controllers" -> path, from /proc/<pid>/cgroup.
std::map<std::string, std::string> cgroupsOf(const std::string& pid) {
  std::map<std::string, std::string> cgroups;
  std::istringstream in(readText(fmt::format("/proc/{}/cgroup", pid)));
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    cgroups[line.substr(0, second)] = line.substr(second + 1);
  }
  return cgroups;
}

// The cgroup.procs files of the cgroups `pid` is in and the agent is not: writing "0" to each
// moves the writer where the container is.
std::vector<std::string> cgroupProcsFiles(int64_t pid) {
  struct Mount {
    bool unified = false;
    std::set<std::string> options;  // the super options: the controllers, "name=systemd"
    std::string root;               // the mounted cgroup, relative to the hierarchy's root
    std::string point;
  };
  std::vector<Mount> mounts;
  std::istringstream in(readText("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto before = split(line.substr(0, dash), ' ');
    auto after = split(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) continue;
    Mount mount;
    if (after[0] == "cgroup2") {
      mount.unified = true;
    } else if (after[0] != "cgroup") {
      continue;
    }
    for (auto& option : split(after[2], ',')) mount.options.insert(option);
    mount.root = before[3];
    mount.point = before[4];
    mounts.push_back(std::move(mount));
  }
  std::vector<std::string> files;
  const auto own = cgroupsOf("self");
  for (const auto& [hierarchy, path] : cgroupsOf(std::to_string(pid))) {
    auto mine = own.find(hierarchy);
    if (mine != own.end() && mine->second == path) continue;
    const std::string controllers = hierarchy.substr(hierarchy.find(':') + 1);
    for (const auto& mount : mounts) {
      bool match = controllers.empty() ? mount.unified : !mount.unified;
      for (const auto& controller : split(controllers, ',')) {
        match = match && mount.options.count(controller) > 0;
      }
      if (!match) continue;
      std::string relative = path;
      if (mount.root != "/") {
        if (relative.compare(0, mount.root.size(), mount.root) != 0) continue;
        relative = relative.substr(mount.root.size());
      }
      std::string file = mount.point + relative + "/cgroup.procs";
      if (fs::exists(file)) {
        files.push_back(std::move(file));
        break;
      }
    }
  }
  return files;
}

// The namespaces (CLONE_NEW* flags) of `pid` that differ from the agent's.
int namespacesToJoin(int64_t pid) {
  static constexpr std::pair<const char*, int> kKinds[] = {
      {"mnt", CLONE_NEWNS},  {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
      {"uts", CLONE_NEWUTS}, {"ipc", CLONE_NEWIPC}, {"cgroup", CLONE_NEWCGROUP},
  };
  int flags = 0;
  for (const auto& [name, flag] : kKinds) {
    struct stat theirs {
    }, ours{};
    if (::stat(fmt::format("/proc/{}/ns/{}", pid, name).c_str(), &theirs) != 0) continue;
    if (::stat(fmt::format("/proc/self/ns/{}", name).c_str(), &ours) != 0) continue;
    if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) flags |= flag;
  }
  return flags;
}

std::string findProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

// What one COMMAND check runs, prepared on the strand.
struct CommandPlan {
  std::vector<std::string> argv;  // argv[0] is a path
  std::vector<std::string> env;   // "NAME=value"
  std::string directory;
  int64_t joinPid = 0;  // the container's process whose cgroups and namespaces to join; 0: none
  uint64_t startTime = 0;
};

struct Spawned {
  pid_t pid = 0;
  int pidfd = -1;
  std::string error;
};

// Writes "<what>: errno <n>" to `fd` and exits; only async-signal-safe calls.
[[noreturn]] void childFail(int fd, const char* what) {
  int saved = errno;
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + saved % 10);
    saved /= 10;
  } while (saved > 0 && n < 15);
  ssize_t ignored = ::write(fd, what, std::strlen(what));
  ignored = ::write(fd, ": errno ", 8);
  while (n > 0) ignored = ::write(fd, &digits[--n], 1);
  (void)ignored;
  _exit(127);
}

// Closes every descriptor from 3 up but `a` and `b` (either may be -1). The agent's sockets
// (asio's are not close-on-exec) must not live on in a check: a restarted agent could not listen
// on its port while one runs.
void closeAllBut(int a, int b) {
  unsigned from = 3;
  for (int keep : {std::min(a, b), std::max(a, b)}) {
    if (keep < static_cast<int>(from)) continue;
    if (static_cast<unsigned>(keep) > from) close_range(from, static_cast<unsigned>(keep) - 1, 0);
    from = static_cast<unsigned>(keep) + 1;
  }
  close_range(from, ~0U, 0);
}

// The forked child: its own process group, the container's cgroups and namespaces, the check.
[[noreturn]] void runChild(char* const* argv, char* const* envp, const char* directory,
                           const std::vector<const char*>& procs, int targetFd, int nsFlags,
                           int errorFd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  closeAllBut(errorFd, targetFd);
  setsid();
  for (const char* file : procs) {
    int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) childFail(errorFd, "joining the container's cgroups");
    ::close(fd);
  }
  if (nsFlags != 0 && setns(targetFd, nsFlags) != 0) {
    childFail(errorFd, "joining the container's namespaces");
  }
  if (targetFd >= 0) ::close(targetFd);
  if ((nsFlags & CLONE_NEWPID) != 0) {
    // A pid namespace applies to children only: the check runs in a grandchild, whose status
    // this process passes on.
    pid_t child = fork();
    if (child < 0) childFail(errorFd, "fork");
    if (child > 0) {
      ::close(errorFd);
      int status = 0;
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
  if (::chdir(directory) != 0 && ::chdir("/") != 0) childFail(errorFd, "chdir");
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
  }
  execve(argv[0], argv, envp);
  childFail(errorFd, "exec");
}

// Runs on the blocking pool: forks the check's process into the container.
Spawned spawn(const CommandPlan& plan) {
  Spawned spawned;
  std::vector<std::string> procs;
  int targetFd = -1;
  int nsFlags = 0;
  if (plan.joinPid > 0) {
    targetFd = pidfdOpen(static_cast<pid_t>(plan.joinPid));
    if (targetFd < 0 || (plan.startTime != 0 && startTimeOf(plan.joinPid) != plan.startTime)) {
      if (targetFd >= 0) ::close(targetFd);
      spawned.error = fmt::format("the task's process {} is gone", plan.joinPid);
      return spawned;
    }
    procs = cgroupProcsFiles(plan.joinPid);
    nsFlags = namespacesToJoin(plan.joinPid);
  }
  std::vector<char*> argv, envp;
  for (const auto& arg : plan.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const auto& var : plan.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  std::vector<const char*> procFiles;
  for (const auto& file : procs) procFiles.push_back(file.c_str());
  int errors[2];
  if (pipe2(errors, O_CLOEXEC) != 0) {
    spawned.error = fmt::format("pipe2: {}", std::strerror(errno));
    if (targetFd >= 0) ::close(targetFd);
    return spawned;
  }
  pid_t pid = fork();
  if (pid == 0) {
    ::close(errors[0]);
    runChild(argv.data(), envp.data(), plan.directory.c_str(), procFiles, targetFd, nsFlags,
             errors[1]);
  }
  int saved = errno;
  ::close(errors[1]);
  if (targetFd >= 0) ::close(targetFd);
  if (pid < 0) {
    ::close(errors[0]);
    spawned.error = fmt::format("fork: {}", std::strerror(saved));
    return spawned;
  }
  // EOF once the check's program is exec'd; an error text when it could not be.
  std::string error;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(errors[0], buffer, sizeof buffer)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    error.append(buffer, static_cast<size_t>(n));
  }
  ::close(errors[0]);
  spawned.pidfd = pidfdOpen(pid);
  if (!error.empty() || spawned.pidfd < 0) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (spawned.pidfd >= 0) ::close(spawned.pidfd);
    spawned.pidfd = -1;
    spawned.error = error.empty() ? "pidfd_open failed" : error;
    return spawned;
  }
  spawned.pid = pid;
  return spawned;
}

// 200-399, or one of `statuses` when the check names them.
bool healthyStatus(const v1::HealthCheck& spec, int status) {
  const auto& statuses = spec.http().statuses();
  if (statuses.empty()) return status >= 200 && status < 400;
  return std::find(statuses.begin(), statuses.end(), static_cast<uint32_t>(status)) !=
         statuses.end();
}

const char* typeName(v1::HealthCheck::Type type) {
  switch (type) {
    case v1::HealthCheck::COMMAND:
      return "COMMAND";
    case v1::HealthCheck::HTTP:
      return "HTTP";
    case v1::HealthCheck::TCP:
      return "TCP";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

HealthChecker::HealthChecker(runtime::Runtime& runtime,
                             std::shared_ptr<runtime::StrandExecutor> strand, Callbacks callbacks,
                             size_t maxCommandChecks)
    : runtime_(runtime),
      strand_(std::move(strand)),
      callbacks_(std::move(callbacks)),
      maxCommandChecks_(std::max<size_t>(1, maxCommandChecks)) {}

HealthChecker::~HealthChecker() {
  for (auto& [key, check] : checks_) {
    check->stopped = true;
    if (check->pid > 0) {
      ::kill(-check->pid, SIGKILL);
      if (check->pidfd) reap(check->pidfd->native_handle(), true);
    }
  }
}

void HealthChecker::start(const Key& key, const v1::HealthCheck& spec, HealthCheckTarget target,
                          std::optional<bool> lastHealthy) {
  if (stopped_) return;
  stop(key);
  auto check = std::make_shared<Check>();
  check->key = key;
  check->spec = spec;
  check->target = std::move(target);
  check->startedAt = Clock::now();
  check->healthy = lastHealthy;
  check->succeeded = lastHealthy.value_or(false);
  check->next = std::make_unique<asio::steady_timer>(strand_->strand());
  check->deadline = std::make_unique<asio::steady_timer>(strand_->strand());
  checks_[key] = check;
  schedule(check, spec.delay_seconds());
}

void HealthChecker::stop(const Key& key) {
  auto it = checks_.find(key);
  if (it == checks_.end()) return;
  CheckPtr check = it->second;
  checks_.erase(it);
  check->stopped = true;
  check->inFlight = false;
  check->next->cancel();
  check->deadline->cancel();
  check->queued = false;
  if (check->pid > 0) {
    int fd = check->pidfd ? check->pidfd->release() : -1;
    killAndReap(runtime_, check->pid, fd);
    check->pid = 0;
    check->pidfd.reset();
  }
  dropConnections(*check);
  if (check->holdsSlot) commandDone(check);
}

void HealthChecker::stopAll() {
  stopped_ = true;
  std::vector<Key> keys;
  for (const auto& [key, check] : checks_) keys.push_back(key);
  for (const auto& key : keys) stop(key);
  commandQueue_.clear();
}

void HealthChecker::schedule(const CheckPtr& check, double delay) {
  check->next->expires_after(seconds(delay));
  check->next->async_wait([weak = weak_from_this(), check](const boost::system::error_code& error) {
    auto self = weak.lock();
    if (!self || error || check->stopped || self->stopped_) return;
    self->run(check);
  });
}

void HealthChecker::run(const CheckPtr& check) {
  const uint64_t attempt = ++check->attempt;
  check->inFlight = true;
  check->timedOut = false;
  const double timeout = check->spec.timeout_seconds();
  check->deadline->expires_after(seconds(timeout));
  check->deadline->async_wait(
      [weak = weak_from_this(), check, attempt](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self || error || check->stopped || attempt != check->attempt || !check->inFlight)
          return;
        const std::string message =
            fmt::format("{} health check timed out after {}s", typeName(check->spec.type()),
                        check->spec.timeout_seconds());
        if (check->pid > 0) {
          // Its exit reports the timeout.
          check->timedOut = true;
          ::kill(-check->pid, SIGKILL);
          return;
        }
        self->result(check, attempt, false, message);
      });
  switch (check->spec.type()) {
    case v1::HealthCheck::HTTP:
      runHttp(check);
      break;
    case v1::HealthCheck::TCP:
      runTcp(check);
      break;
    case v1::HealthCheck::COMMAND:
      runCommand(check);
      break;
    default:
      result(check, attempt, false, "the health check has no known type");
      break;
  }
}

void HealthChecker::runHttp(const CheckPtr& check) {
  const uint64_t attempt = check->attempt;
  const auto& http = check->spec.http();
  const std::string scheme = http.has_scheme() ? http.scheme() : "http";
  if (scheme != "http" && scheme != "https") {
    result(check, attempt, false,
           fmt::format("HTTP health checks with scheme '{}' are not supported", scheme));
    return;
  }
  const uint16_t port = static_cast<uint16_t>(http.port());
  std::string target = http.path().empty() ? "/" : http.path();
  if (target.front() != '/') target = "/" + target;
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: tessera-agent\r\n"
      "Connection: close\r\n\r\n",
      target, port);
  const char* name = scheme == "https" ? "HTTPS" : "HTTP";
  std::weak_ptr<HealthChecker> weak = weak_from_this();
  // Any error ends the check; the check's deadline covers every step.
  auto fail = [weak, check, attempt, port, name](const char* step,
                                                 const boost::system::error_code& e) {
    if (auto self = weak.lock()) {
      self->result(
          check, attempt, false,
          fmt::format("{} health check of port {} failed ({}): {}", name, port, step, e.message()));
    }
  };
  auto done = [weak, check, attempt, port, name](const std::string& version, int status) {
    auto self = weak.lock();
    if (!self) return;
    if (version.rfind("HTTP/", 0) != 0 || status < 100 || status > 999) {
      self->result(check, attempt, false,
                   fmt::format("{} health check of port {} got no HTTP status line", name, port));
      return;
    }
    self->result(check, attempt, healthyStatus(check->spec, status),
                 fmt::format("{} health check of port {} returned status {}", name, port, status));
  };
  if (scheme == "https") {
    if (!tls_) tls_ = std::make_unique<Tls>();
    check->https = std::make_shared<HttpsExchange>(strand_->strand(), tls_->context);
    check->https->request = std::move(request);
    readStatus(check->https, port, fail, done);
  } else {
    check->plain = std::make_shared<PlainExchange>(strand_->strand());
    check->plain->request = std::move(request);
    readStatus(check->plain, port, fail, done);
  }
}

void HealthChecker::dropConnections(Check& check) {
  // Closed and destroyed later: we may be inside one of their handlers.
  asio::post(strand_->strand(), [plain = std::move(check.plain), https = std::move(check.https),
                                 socket = std::move(check.socket)]() {
    boost::system::error_code ignored;
    if (plain) plain->socket().close(ignored);
    if (https) https->socket().close(ignored);
  });
}

void HealthChecker::runTcp(const CheckPtr& check) {
  const uint64_t attempt = check->attempt;
  const uint32_t port = check->spec.tcp().port();
  check->socket = std::make_unique<asio::ip::tcp::socket>(strand_->strand());
  asio::ip::tcp::endpoint endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port));
  check->socket->async_connect(endpoint, [weak = weak_from_this(), check, attempt,
                                          port](const boost::system::error_code& e) {
    auto self = weak.lock();
    if (!self) return;
    self->result(check, attempt, !e,
                 e ? fmt::format("TCP health check of port {} failed: {}", port, e.message())
                   : fmt::format("TCP health check of port {} connected", port));
  });
}

void HealthChecker::runCommand(const CheckPtr& check) {
  if (commandsRunning_ >= maxCommandChecks_) {
    check->queued = true;
    commandQueue_.push_back(check);
    return;
  }
  spawnCommand(check);
}

void HealthChecker::spawnCommand(const CheckPtr& check) {
  const uint64_t attempt = check->attempt;
  ++commandsRunning_;
  check->holdsSlot = true;
  const v1::CommandInfo& command = check->spec.command();
  CommandPlan plan;
  // Shell form: sh -c <value>; argv form: <value> with `arguments` (whose first is argv[0]).
  std::vector<std::string> program;
  if (!command.has_shell() || command.shell()) {
    program = {"sh", "-c", command.value()};
  } else {
    program.push_back(command.value());
    for (int i = 1; i < command.arguments_size(); ++i) program.push_back(command.arguments(i));
  }
  if (!check->target.dockerName.empty()) {
    plan.argv = {findProgram("docker"), "exec", check->target.dockerName};
    plan.argv.insert(plan.argv.end(), program.begin(), program.end());
  } else {
    plan.argv = program;
    if (plan.argv[0] == "sh") plan.argv[0] = "/bin/sh";
    plan.joinPid = check->target.pid;
    plan.startTime = check->target.startTime;
  }
  const char* path = std::getenv("PATH");
  plan.env.push_back(fmt::format("PATH={}", path ? path : "/usr/local/bin:/usr/bin:/bin"));
  plan.env.push_back(fmt::format("MESOS_SANDBOX={}", check->target.sandbox));
  for (const auto& variable : command.environment().variables()) {
    plan.env.push_back(fmt::format("{}={}", variable.name(), variable.value()));
  }
  plan.directory = check->target.sandbox.empty() ? "/" : check->target.sandbox;
  std::weak_ptr<HealthChecker> weak = weak_from_this();
  auto strand = strand_;
  runtime::Runtime* runtime = &runtime_;
  bool submitted = runtime_.blocking().submit([weak, strand, runtime, check, attempt, plan] {
    Spawned spawned = spawn(plan);
    strand->post([weak, runtime, check, attempt, spawned] {
      auto self = weak.lock();
      if (!self || check->stopped || attempt != check->attempt || !check->inFlight) {
        killAndReap(*runtime, spawned.pid, spawned.pidfd);
        if (self && check->holdsSlot) self->commandDone(check);
        return;
      }
      self->onSpawned(check, spawned.pid, spawned.pidfd, spawned.error);
    });
  });
  if (!submitted) {
    commandDone(check);
    result(check, attempt, false, "the agent's blocking pool is full");
  }
}

void HealthChecker::onSpawned(const CheckPtr& check, pid_t pid, int pidfd, std::string error) {
  const uint64_t attempt = check->attempt;
  if (!error.empty()) {
    commandDone(check);
    result(check, attempt, false, fmt::format("COMMAND health check failed to start: {}", error));
    return;
  }
  check->pid = pid;
  check->pidfd = std::make_unique<asio::posix::stream_descriptor>(strand_->strand(), pidfd);
  check->pidfd->async_wait(
      asio::posix::stream_descriptor::wait_read,
      [weak = weak_from_this(), check, attempt](const boost::system::error_code& e) {
        auto self = weak.lock();
        if (!self || e || check->stopped || attempt != check->attempt || !check->pidfd) return;
        auto status = reap(check->pidfd->native_handle(), false);
        self->onExited(check, status.value_or(-1));
      });
}

void HealthChecker::onExited(const CheckPtr& check, int waitStatus) {
  const uint64_t attempt = check->attempt;
  check->pid = 0;
  check->pidfd.reset();
  commandDone(check);
  if (check->timedOut) {
    result(check, attempt, false,
           fmt::format("COMMAND health check timed out after {}s", check->spec.timeout_seconds()));
  } else if (waitStatus >= 0 && WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0) {
    result(check, attempt, true, "COMMAND health check exited with status 0");
  } else {
    result(check, attempt, false,
           waitStatus < 0 ? std::string("COMMAND health check ended with an unknown status")
                          : fmt::format("COMMAND health check {}", describeWaitStatus(waitStatus)));
  }
}

void HealthChecker::commandDone(const CheckPtr& check) {
  if (!check->holdsSlot) return;
  check->holdsSlot = false;
  --commandsRunning_;
  if (stopped_) return;  // stopAll(): nothing waiting may start
  while (!commandQueue_.empty() && commandsRunning_ < maxCommandChecks_) {
    CheckPtr waiting = commandQueue_.front().lock();
    commandQueue_.pop_front();
    if (!waiting || !waiting->queued || waiting->stopped || !waiting->inFlight) continue;
    waiting->queued = false;
    spawnCommand(waiting);
  }
}

void HealthChecker::result(const CheckPtr& check, uint64_t attempt, bool healthy,
                           std::string message) {
  if (check->stopped || attempt != check->attempt || !check->inFlight) return;
  check->inFlight = false;
  check->queued = false;
  check->deadline->cancel();
  if (check->pid > 0) {
    int fd = check->pidfd ? check->pidfd->release() : -1;
    killAndReap(runtime_, check->pid, fd);
    check->pid = 0;
    check->pidfd.reset();
    commandDone(check);
  }
  dropConnections(*check);
  ++completed_;
  const Key key = check->key;
  if (healthy) {
    check->succeeded = true;
    check->failures = 0;
    if (check->healthy != true) {
      check->healthy = true;
      callbacks_.changed(key, true, message);
    }
    if (!check->stopped) schedule(check, check->spec.interval_seconds());
    return;
  }
  if (!check->succeeded &&
      Clock::now() - check->startedAt < seconds(check->spec.grace_period_seconds())) {
    schedule(check, check->spec.interval_seconds());  // still starting up: not counted
    return;
  }
  ++check->failures;
  if (check->healthy != false) {
    check->healthy = false;
    callbacks_.changed(key, false, message);
    if (check->stopped) return;
  }
  const uint32_t limit = check->spec.consecutive_failures();
  if (limit > 0 && check->failures >= limit) {
    stop(key);
    callbacks_.failed(key, fmt::format("the task failed {} health check{} in a row; last: {}",
                                       check->failures, check->failures == 1 ? "" : "s", message));
    return;
  }
  schedule(check, check->spec.interval_seconds());
}

}  // namespace tessera::kernel::agent

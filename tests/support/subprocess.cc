#include "tests/support/subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace tessera::testing {

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

fs::path makeTempDir(const char* stem) {
  std::string pattern = (fs::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

// Whether `text` (NUL-separated, as /proc/<pid>/cmdline and environ are) names `dir` or a path
// under it.
bool mentions(const std::string& text, const std::string& dir) {
  for (size_t at = text.find(dir); at != std::string::npos; at = text.find(dir, at + 1)) {
    size_t end = at + dir.size();
    if (end == text.size() || text[end] == '/' || text[end] == '\0') return true;
  }
  return false;
}

std::optional<pid_t> parentOf(pid_t pid) {
  std::ifstream status(fs::path("/proc") / std::to_string(pid) / "status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return std::nullopt;
}

// Whether `pid` still runs: a zombie counts as gone (whether PID 1 reaps is not ours to know).
bool alive(pid_t pid) {
  std::string stat = slurp(fs::path("/proc") / std::to_string(pid) / "stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

void killProcessesUsing(const fs::path& dir) {
  const std::string name = dir.string();
  const pid_t self = getpid();
  std::vector<pid_t> others;  // not this process's children: init reaps them
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string base = entry.path().filename().string();
    if (base.empty() || base.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(base));
    if (pid == self) continue;
    if (!mentions(slurp(entry.path() / "cmdline"), name) &&
        !mentions(slurp(entry.path() / "environ"), name)) {
      continue;
    }
    if (::kill(pid, SIGKILL) == 0 && parentOf(pid) != self) others.push_back(pid);
  }
  // Wait for them to be gone before their files are removed (this process's own children are
  // reaped by their Subprocess, so only the others are waited for).
  waitFor(
      [&] {
        for (pid_t pid : others) {
          if (alive(pid)) return false;
        }
        return true;
      },
      std::chrono::seconds(10));
}

api::Result<std::unique_ptr<Subprocess>> Subprocess::start(Options options) {
  std::unique_ptr<Subprocess> process(new Subprocess());
  process->dir_ = makeTempDir("tessera-proc");
  const std::string outPath = (process->dir_ / "stdout").string();
  const std::string errPath = (process->dir_ / "stderr").string();

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& name : options.unsetEnv) env.erase(name);
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string cwd = options.cwd ? options.cwd->string() : "";

  pid_t pid = fork();
  if (pid < 0) return api::internalError("fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    setpgid(0, 0);  // its own process group, so a test can kill what it spawned
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  process->pid_ = pid;
  return process;
}

Subprocess::~Subprocess() {
  if (!status_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Subprocess::kill(int signal) {
  if (!status_) ::kill(pid_, signal);
}

std::optional<int> Subprocess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      status_ = status;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::optional<int> Subprocess::exitCode() const {
  if (!status_) return std::nullopt;
  if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
  if (WIFSIGNALED(*status_)) return -WTERMSIG(*status_);
  return std::nullopt;
}

bool Subprocess::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::string Subprocess::out() const { return slurp(dir_ / "stdout"); }
std::string Subprocess::err() const { return slurp(dir_ / "stderr"); }

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

uint16_t freePort() {
  // Below the kernel's ephemeral range (32768-60999 by default) and the agents' task ports
  // (31000-32000): a port the kernel hands out for port 0 or an outgoing connection could be
  // taken by another test's process between this check and the bind that follows it.
  constexpr int kFirst = 20000, kLast = 30999;
  static std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> pick(kFirst, kLast);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto port = static_cast<uint16_t>(pick(random));
    addr.sin_port = htons(port);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  std::abort();
}

TempDir::TempDir() : path_(makeTempDir("tessera-test")) {}
TempDir::~TempDir() {
  killProcessesUsing(path_);
  std::error_code ec;
  fs::remove_all(path_, ec);
}
fs::path TempDir::write(const std::string& name, const std::string& text) const {
  fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

fs::path tesseraBinary() { return fs::path(TESSERA_BINARY_DIR) / "bin" / "tessera"; }

api::Result<SimpleResponse> httpRequest(uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body,
                                        std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return api::unavailable("cannot connect to 127.0.0.1:{}: {}", port, std::strerror(errno));
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        "Connection: close\r\nContent-Type: application/json\r\n" +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
    close(fd);
    return api::unavailable("send failed");
  }
  std::string raw;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      close(fd);
      return api::makeStatus(api::StatusCode::kDeadlineExceeded, "no full response in time");
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    raw.append(buffer, n);
  }
  close(fd);
  auto headerEnd = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || headerEnd == std::string::npos) {
    return api::unavailable("malformed response: '{}'", raw.substr(0, 80));
  }
  SimpleResponse response;
  response.status = std::stoi(raw.substr(9, 3));
  std::istringstream headers(raw.substr(0, headerEnd));
  std::string line;
  std::getline(headers, line);
  while (std::getline(headers, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(c));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    response.headers[key] = value;
  }
  std::string payload = raw.substr(headerEnd + 4);
  if (response.headers["transfer-encoding"] == "chunked") {
    std::string decoded;
    size_t pos = 0;
    while (pos < payload.size()) {
      size_t eol = payload.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t size = std::stoul(payload.substr(pos, eol - pos), nullptr, 16);
      if (size == 0) break;
      decoded += payload.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
    payload = decoded;
  }
  response.body = payload;
  return response;
}

}  // namespace tessera::testing

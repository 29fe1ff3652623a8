#include "modules/containerizer_native/launch.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "modules/containerizer_native/proc.h"

namespace tessera::modules::containerizer_native {

namespace {

// clone3's argument, version 0 (64 bytes); declared here rather than via <linux/sched.h>,
// whose CLONE_* macros clash with <sched.h>'s.
struct CloneArgs {
  uint64_t flags = 0;
  uint64_t pidfd = 0;
  uint64_t childTid = 0;
  uint64_t parentTid = 0;
  uint64_t exitSignal = 0;
  uint64_t stack = 0;
  uint64_t stackSize = 0;
  uint64_t tls = 0;
};
static_assert(sizeof(CloneArgs) == 64);

// What the child reports on the exec-error pipe when a step before or at execve fails.
enum class ChildStep : int {
  kChdir = 1,
  kSetgroups,
  kSetgid,
  kSetuid,
  kExecve,
  kFork,
  kMountPrivate,
  kMountProc
};
struct ChildError {
  ChildStep step;
  int error;
};

// Exit code of a child told not to exec (isolation failed): it never ran the command.
constexpr int kNotReleasedExit = 126;

std::optional<std::string> lookup(std::string_view name,
                                  const std::map<std::string, std::string>& env) {
  auto path = env.find("PATH");
  std::string_view dirs = path == env.end() ? std::string_view(kDefaultPath) : path->second;
  while (true) {
    auto colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string candidate = fmt::format("{}/{}", dir.empty() ? "." : dir, name);
    struct stat info {};
    if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

api::Result<UserSwitch> resolveUser(const std::string& name) {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<size_t>(size) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  int error = 0;
  while ((error = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) ==
         ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (error != 0) return api::internalError("looking up user '{}': {}", name, strerror(error));
  if (found == nullptr) return api::invalidArgument("user '{}' does not exist", name);
  UserSwitch user{name, entry.pw_uid, entry.pw_gid, {}};
  int count = 32;
  while (true) {
    user.groups.resize(static_cast<size_t>(count));
    int n = count;
    if (getgrouplist(name.c_str(), entry.pw_gid, user.groups.data(), &n) >= 0) {
      user.groups.resize(static_cast<size_t>(n));
      break;
    }
    count = n > count ? n : count * 2;
  }
  return user;
}

int openOrFail(const std::string& path, int flags, std::string& error) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) error = fmt::format("opening '{}': {}", path, strerror(errno));
  return fd;
}

void closeIf(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// The child, between clone3 and execve: async-signal-safe calls only (no allocation, no
// locks), because the parent is multi-threaded.
// Where the supervisor records the exit status; all null when nothing is recorded.
struct StatusPaths {
  const char* directory = nullptr;
  const char* temp = nullptr;
  const char* file = nullptr;
};

// The fds of the child, at known numbers: 0-2, the release pipe at 3 and the error pipe at 4.
constexpr int kReleaseFd = 3;
constexpr int kErrorFd = 4;

// Writes `waitStatus` in decimal to `paths.file`, atomically and durably. Async-signal-safe;
// failures are silent (the containerizer then falls back to what waitid tells it, if anything).
void recordExitStatus(const StatusPaths& paths, int waitStatus) {
  if (paths.file == nullptr) return;
  char text[16];
  char* end = text + sizeof(text);
  char* begin = end;
  *--begin = '\n';
  unsigned value = static_cast<unsigned>(waitStatus);
  do {
    *--begin = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && begin > text);
  int fd = open(paths.temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const char* next = begin;
  while (next < end) {
    ssize_t n = write(fd, next, static_cast<size_t>(end - next));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    next += n;
  }
  bool written = next == end && fsync(fd) == 0;
  close(fd);
  if (!written || rename(paths.temp, paths.file) != 0) return;
  int dir = open(paths.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

// The supervisor, after forking the command: waits for it, records its status and ends the same
// way. Every signal is blocked (inherited from before the fork), so a SIGTERM to the group only
// reaches the command; SIGKILL still ends both. In a PID namespace it is init: orphans of the
// command are reparented to it, and it reaps them too (only the command's status counts); when
// it ends, the kernel kills whatever is left in the namespace.
[[noreturn]] void supervise(pid_t command, const StatusPaths& paths) {
  // A forked agent keeps the agent's argv; its own name tells the two apart in ps and top.
  syscall(SYS_prctl, PR_SET_NAME, "tessera-superv", 0, 0, 0);
  // The command's copy of the error pipe alone decides when the parent sees EOF (at its exec).
  close(kErrorFd);
  int waitStatus = 0;
  while (true) {
    int status = 0;
    pid_t reaped = waitpid(-1, &status, 0);
    if (reaped < 0 && errno == EINTR) continue;
    if (reaped < 0) _exit(127);  // cannot happen: the command is our child until reaped
    if (reaped == command) {
      waitStatus = status;
      break;
    }
  }
  recordExitStatus(paths, waitStatus);
  if (WIFEXITED(waitStatus)) _exit(WEXITSTATUS(waitStatus));
  // Die of the same signal, so even a reaper without the file sees the right status; the
  // command dumped its own core if it had to, the supervisor's would only be noise.
  const int signal = WTERMSIG(waitStatus);
  rlimit noCore{0, 0};
  setrlimit(RLIMIT_CORE, &noCore);
  struct sigaction defaults {};
  defaults.sa_handler = SIG_DFL;
  sigaction(signal, &defaults, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal);
  sigprocmask(SIG_UNBLOCK, &only, nullptr);
  // Not raise(): glibc's uses the tid it cached for the parent's thread (raw clone). A PID
  // namespace's init ignores its own signals: it goes on to exit 128 + the signal, as a shell
  // reports it, and the recorded file holds the real status.
  kill(getpid(), signal);
  _exit(128 + signal);  // not reached for a signal that can end a process outside a namespace
}

[[noreturn]] void runChild(const char* program, char* const* argv, char* const* envp,
                           const char* dir, const UserSwitch* user, int devNull, int out, int err,
                           int releaseRead, int errorWrite, const StatusPaths& statusPaths,
                           bool pidNamespace) {
  // Handlers are reset by exec, but ignored signals and the mask are inherited: clear both so the
  // command starts as from a shell.
  struct sigaction defaults {};
  defaults.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) sigaction(signal, &defaults, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setsid();

  // Keep only what this child needs, at known numbers (kReleaseFd, kErrorFd). Every other fd
  // goes now, before waiting: a sibling child still waiting for its isolation must not hold this
  // one's pipes open (it would delay their EOF).
  constexpr int kRelease = kReleaseFd;
  constexpr int kError = kErrorFd;
  int keep[] = {devNull, out, err, releaseRead, errorWrite};
  for (int& fd : keep) fd = fcntl(fd, F_DUPFD, 10);  // out of the way of 0-4 first
  dup2(keep[0], STDIN_FILENO);
  dup2(keep[1], STDOUT_FILENO);
  dup2(keep[2], STDERR_FILENO);
  dup2(keep[3], kRelease);
  dup2(keep[4], kError);
  close_range(kError + 1, ~0U, 0);
  fcntl(kError, F_SETFD, FD_CLOEXEC);

  char byte = 0;
  ssize_t n;
  do {
    n = read(kRelease, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(kNotReleasedExit);
  close(kRelease);

  auto fail = [](ChildStep step) {
    ChildError report{step, errno};
    ssize_t ignored = write(kError, &report, sizeof(report));
    (void)ignored;
    _exit(127);
  };

  if (pidNamespace) {
    // A new mount namespace is a copy whose mounts may still share propagation with the host's:
    // make them all private first, so nothing mounted in here (the /proc below, a task's own
    // mounts) shows outside. Then a procfs of this PID namespace, so /proc and ps inside see only
    // the container's processes.
    if (syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      fail(ChildStep::kMountPrivate);
    }
    if (syscall(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
        0) {
      fail(ChildStep::kMountProc);
    }
  }

  // Become the supervisor: fork the command (a raw clone3 again, as glibc's fork() would run
  // atfork handlers and take locks the parent's other threads may hold). Every signal is blocked
  // first so none meant for the command can end the supervisor in between; the command unblocks
  // them before exec. The supervisor keeps the agent's credentials so it can write the runtime
  // directory, and so the command's user cannot signal it.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  CloneArgs args;
  args.exitSignal = SIGCHLD;
  long command = syscall(SYS_clone3, &args, sizeof(args));
  if (command < 0) fail(ChildStep::kFork);
  if (command > 0) supervise(static_cast<pid_t>(command), statusPaths);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  if (chdir(dir) != 0) fail(ChildStep::kChdir);
  if (user != nullptr) {
    // Raw syscalls: glibc's setuid() & co. broadcast to every thread it believes the process
    // has, and after a raw clone3 it still believes in the parent's threads (it would hang).
    if (syscall(SYS_setgroups, user->groups.size(), user->groups.data()) != 0) {
      fail(ChildStep::kSetgroups);
    }
    if (syscall(SYS_setresgid, user->gid, user->gid, user->gid) != 0) fail(ChildStep::kSetgid);
    if (syscall(SYS_setresuid, user->uid, user->uid, user->uid) != 0) fail(ChildStep::kSetuid);
  }
  execve(program, argv, envp);
  fail(ChildStep::kExecve);
  _exit(127);  // not reached
}

}  // namespace

api::Result<LaunchSpec> prepareLaunch(const api::ContainerConfig& config,
                                      std::string_view agentWorkDir) {
  const v1::CommandInfo& command = config.command;
  LaunchSpec spec;
  if (config.sandboxDirectory.empty()) {
    return api::invalidArgument("container '{}' has no sandbox directory", config.containerId);
  }
  spec.workingDirectory = config.sandboxDirectory;
  if (command.value().empty()) {
    return api::invalidArgument("container '{}' has an empty command", config.containerId);
  }

  std::map<std::string, std::string> env;
  for (const auto& variable : command.environment().variables()) {
    if (variable.type() == v1::Environment::Variable::SECRET) {
      return api::invalidArgument("secret environment variable '{}' is not supported",
                                  variable.name());
    }
    if (variable.name().empty() || variable.name().find('=') != std::string::npos) {
      return api::invalidArgument("invalid environment variable name '{}'", variable.name());
    }
    env[variable.name()] = variable.value();
  }
  for (const auto& [name, value] : config.environment) env[name] = value;
  env.emplace("PATH", kDefaultPath);
  env[std::string(kContainerIdVariable)] = config.containerId;
  env[std::string(kWorkDirVariable)] = std::string(agentWorkDir);
  for (const auto& [name, value] : env) spec.env.push_back(fmt::format("{}={}", name, value));

  if (command.shell()) {
    spec.program = "/bin/sh";
    spec.argv = {"sh", "-c", command.value()};
  } else {
    spec.program = command.value();
    if (spec.program.find('/') == std::string::npos) {
      if (auto found = lookup(spec.program, env)) spec.program = *found;
    }
    spec.argv.assign(command.arguments().begin(), command.arguments().end());
    if (spec.argv.empty()) spec.argv.push_back(command.value());
  }

  std::string user = config.user.value_or(command.user());
  if (!user.empty() && geteuid() == 0) {
    auto resolved = resolveUser(user);
    if (!resolved) return resolved.status();
    spec.user = std::move(*resolved);
  }
  return spec;
}

api::Result<SpawnedChild> spawnChild(const LaunchSpec& spec, const std::string& stdoutPath,
                                     const std::string& stderrPath) {
  // Everything the child touches is built here, before the fork.
  std::vector<char*> argv;
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : spec.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  std::string statusTemp, statusFile;
  StatusPaths statusPaths;
  if (!spec.runtimeDirectory.empty()) {
    statusFile = fmt::format("{}/{}", spec.runtimeDirectory, kExitStatusFile);
    statusTemp = statusFile + ".tmp";
    statusPaths = {spec.runtimeDirectory.c_str(), statusTemp.c_str(), statusFile.c_str()};
  }

  std::string error;
  int devNull = openOrFail("/dev/null", O_RDONLY, error);
  int out = devNull < 0 ? -1 : openOrFail(stdoutPath, O_WRONLY | O_CREAT | O_APPEND, error);
  int err = out < 0 ? -1 : openOrFail(stderrPath, O_WRONLY | O_CREAT | O_APPEND, error);
  int release[2] = {-1, -1};
  int errors[2] = {-1, -1};
  auto closeAll = [&] {
    for (int* fd : {&devNull, &out, &err, &release[0], &release[1], &errors[0], &errors[1]}) {
      closeIf(*fd);
    }
  };
  if (err < 0) {
    closeAll();
    return api::internalError("{}", error);
  }
  if (spec.user) {
    // The command's user must be able to append to its own output files.
    if (fchown(out, spec.user->uid, spec.user->gid) != 0 ||
        fchown(err, spec.user->uid, spec.user->gid) != 0) {
      int saved = errno;
      closeAll();
      return api::internalError("chown of the output files to '{}': {}", spec.user->name,
                                strerror(saved));
    }
  }
  if (pipe2(release, O_CLOEXEC) != 0 || pipe2(errors, O_CLOEXEC) != 0) {
    int saved = errno;
    closeAll();
    return api::internalError("pipe2: {}", strerror(saved));
  }

  int pidfd = -1;
  CloneArgs args;
  args.flags = CLONE_PIDFD;
  if (spec.pidNamespace) args.flags |= CLONE_NEWPID | CLONE_NEWNS;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exitSignal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) {
    int saved = errno;
    closeAll();
    return api::internalError("clone3: {}", strerror(saved));
  }
  if (pid == 0) {
    runChild(spec.program.c_str(), argv.data(), envp.data(), spec.workingDirectory.c_str(),
             spec.user ? &*spec.user : nullptr, devNull, out, err, release[0], errors[1],
             statusPaths, spec.pidNamespace);
  }
  SpawnedChild child;
  child.pid = static_cast<pid_t>(pid);
  child.pidfd = pidfd;
  child.releaseFd = release[1];
  child.execErrorFd = errors[0];
  release[1] = -1;
  errors[0] = -1;
  closeAll();
  return child;
}

void releaseChild(SpawnedChild& child, bool release) {
  if (child.releaseFd < 0) return;
  if (release) {
    char byte = 1;
    ssize_t n;
    do {
      n = write(child.releaseFd, &byte, 1);
    } while (n < 0 && errno == EINTR);
  }
  closeIf(child.releaseFd);
}

std::optional<std::string> readExecError(int fd, const LaunchSpec& spec) {
  ChildError report{};
  size_t got = 0;
  while (got < sizeof(report)) {
    ssize_t n = read(fd, reinterpret_cast<char*>(&report) + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got != sizeof(report)) return std::nullopt;
  const char* reason = strerror(report.error);
  switch (report.step) {
    case ChildStep::kChdir:
      return fmt::format("cannot enter sandbox '{}': {}", spec.workingDirectory, reason);
    case ChildStep::kSetgroups:
    case ChildStep::kSetgid:
    case ChildStep::kSetuid:
      return fmt::format("cannot switch to user '{}': {}", spec.user ? spec.user->name : "",
                         reason);
    case ChildStep::kExecve:
      return fmt::format("cannot execute '{}': {}", spec.program, reason);
    case ChildStep::kFork:
      return fmt::format("cannot fork the command from its supervisor: {}", reason);
    case ChildStep::kMountPrivate:
      return fmt::format("cannot make the container's mounts private: {}", reason);
    case ChildStep::kMountProc:
      return fmt::format("cannot mount the container's /proc: {}", reason);
  }
  return fmt::format("child failed: {}", reason);
}

std::string runtimeDirectory(std::string_view agentWorkDir, std::string_view containerId) {
  std::error_code ec;
  std::filesystem::path base(agentWorkDir);
  std::filesystem::path absolute = std::filesystem::absolute(base, ec);
  return ((ec ? base : absolute) / "containers" / containerId).string();
}

std::optional<int> readExitStatus(const std::string& runtimeDirectory) {
  if (runtimeDirectory.empty()) return std::nullopt;
  std::ifstream in(fmt::format("{}/{}", runtimeDirectory, kExitStatusFile));
  if (!in) return std::nullopt;
  std::stringstream content;
  content << in.rdbuf();
  std::string text = content.str();
  if (text.ends_with('\n')) text.pop_back();
  int waitStatus = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), waitStatus);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || waitStatus < 0 ||
      waitStatus > 0xffff) {
    return std::nullopt;
  }
  return waitStatus;
}

std::string describeWaitStatus(int waitStatus) {
  if (WIFEXITED(waitStatus)) {
    return fmt::format("Command exited with status {}", WEXITSTATUS(waitStatus));
  }
  if (WIFSIGNALED(waitStatus)) {
    int signal = WTERMSIG(waitStatus);
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? fmt::format("Command terminated with signal {}", name)
                           : fmt::format("Command terminated with signal {}", signal);
  }
  return fmt::format("Command ended with wait status {}", waitStatus);
}

}  // namespace tessera::modules::containerizer_native

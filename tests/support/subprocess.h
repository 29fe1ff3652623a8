#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::testing {

/// A real child process for system tests: its stdout and stderr go to files in a temp dir so
/// nothing blocks on a full pipe. The destructor SIGKILLs it if it still runs.
class Subprocess {
 public:
  struct Options {
    std::vector<std::string> argv;           ///< argv[0] is the program path
    std::map<std::string, std::string> env;  ///< added to (or overriding) the environment
    std::vector<std::string> unsetEnv;       ///< removed from the environment
    std::optional<std::filesystem::path> cwd;
  };

  /// Starts the process. Errors: Internal when fork or exec fails (exec failure shows as exit
  /// code 127 instead, as a shell's).
  static api::Result<std::unique_ptr<Subprocess>> start(Options options);
  ~Subprocess();

  pid_t pid() const { return pid_; }
  /// Sends `signal` (if still running).
  void kill(int signal);
  /// Waits up to `timeout` for the process to end; returns its wait status, or nullopt if it
  /// still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  /// The exit code if it exited normally (after wait()), -signal if killed by one.
  std::optional<int> exitCode() const;
  bool running();

  std::string out() const;  ///< everything written to stdout so far
  std::string err() const;  ///< everything written to stderr so far

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path dir_;
};

/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns whether
/// it held. For conditions with no event to wait on (a port opening, a file appearing).
bool waitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// A TCP port on 127.0.0.1 that was free a moment ago, chosen at random from 20000-30999 (below
/// the kernel's ephemeral ports, so no outgoing connection or port-0 listener takes it meanwhile).
uint16_t freePort();

/// SIGKILLs every process (but this one) whose command line or environment names `dir` or a path
/// under it, and waits (up to 10 s) until those that are not this process's children are gone. A
/// task outlives an agent that a test SIGKILLs (by design: a restarted agent recovers it), and so
/// does the agent's supervisor process; when the test never restarts the agent, this is what ends
/// them. An agent's supervisor has the agent's argv (`--work_dir=...`), a task has its agent's work
/// dir in its environment.
void killProcessesUsing(const std::filesystem::path& dir);

/// A temp directory removed (recursively) on destruction, after killProcessesUsing() it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  /// Writes `text` to `name` inside the directory, returning the path.
  std::filesystem::path write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

/// The built `tessera` binary.
std::filesystem::path tesseraBinary();

/// A minimal blocking HTTP/1.1 GET/POST over loopback for system tests: returns status and
/// body. Errors: Unavailable if the connection fails, DeadlineExceeded on timeout.
struct SimpleResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case keys
};
api::Result<SimpleResponse> httpRequest(
    uint16_t port, const std::string& method, const std::string& target,
    const std::string& body = "", std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace tessera::testing

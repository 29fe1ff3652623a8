#pragma once

/// Turning a ContainerConfig into a process: everything the child needs is prepared before the
/// fork, so the child only makes async-signal-safe calls.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/container.h"
#include "tessera/api/status.h"

namespace tessera::modules::containerizer_native {

/// The default PATH a container gets when neither the command nor the agent sets one (Mesos's).
inline constexpr const char* kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user a container runs as, resolved before the fork.
struct UserSwitch {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  ///< supplementary groups, as initgroups() would set them
};

/// A launch prepared in the parent: program, argv, envp and user, all resolved.
struct LaunchSpec {
  std::string program;             ///< path handed to execve
  std::vector<std::string> argv;   ///< argv[0] included
  std::vector<std::string> env;    ///< "NAME=value"
  std::string workingDirectory;    ///< the sandbox
  std::optional<UserSwitch> user;  ///< set only when running as root and a user is given
  /// Where the supervisor records the command's wait status (kExitStatusFile); it must exist
  /// before the launch. Empty: nothing is recorded.
  std::string runtimeDirectory;
  /// `namespaces/pid`: the supervisor starts in a new PID and mount namespace (it is PID 1 there
  /// and reaps whatever is reparented to it), makes every mount private and mounts a fresh /proc
  /// before it forks the command. Needs root.
  bool pidNamespace = false;
};

/// The file, in a container's runtime directory, holding the command's wait status in decimal.
inline constexpr const char* kExitStatusFile = "exit_status";

/// A container's runtime directory: `<agentWorkDir>/containers/<containerId>`, made absolute.
/// It belongs to the containerizer (the sandbox is the user's, readable and writable through
/// /files), so a task can never forge its own exit status.
std::string runtimeDirectory(std::string_view agentWorkDir, std::string_view containerId);

/// The wait status the supervisor recorded in `runtimeDirectory`, if it did (and the file is
/// well formed); nothing for an empty directory name.
std::optional<int> readExitStatus(const std::string& runtimeDirectory);

/// Builds the spec: shell form runs `/bin/sh -c value`; argv form runs `value` (looked up in
/// the container's PATH when it has no '/') with `arguments` as argv (argv[0] included; just
/// `value` when empty). The environment is the command's variables, then `config.environment`
/// on top, then PATH (if unset) and the containerizer's markers. Errors: InvalidArgument for an
/// empty command, a secret variable, or an unknown user (when running as root).
api::Result<LaunchSpec> prepareLaunch(const api::ContainerConfig& config,
                                      std::string_view agentWorkDir);

/// A forked child that waits for release() before it execs.
struct SpawnedChild {
  pid_t pid = -1;
  int pidfd = -1;        ///< owned by the caller; from clone3(CLONE_PIDFD), so never a reused pid
  int releaseFd = -1;    ///< write one byte to let the child exec; close without to make it exit
  int execErrorFd = -1;  ///< read until EOF after release: an errno if execve failed
};

/// Forks the child (clone3 with CLONE_PIDFD; with `spec.pidNamespace` also CLONE_NEWPID |
/// CLONE_NEWNS) in its own session and process group; its stdout
/// and stderr are appended to `stdoutPath`/`stderrPath`, its stdin is /dev/null. Once released,
/// the child becomes the container's supervisor: it forks once more, the grandchild (same group,
/// same environment) switches user and execs the command, and the supervisor, with every signal
/// blocked (only SIGKILL ends it), waits for it (reaping any other process reparented to it, as a
/// PID namespace's init must), records its wait status durably in
/// `spec.runtimeDirectory` (temp file, fsync, rename, fsync of the directory) and then ends the
/// same way: the same exit code, or the same signal re-raised (without a core dump of its own;
/// in a PID namespace, where its own signals cannot end it, it exits 128 + the signal instead).
/// So the status survives an agent restart, when the supervisor is no longer the agent's child.
/// Errors: Internal naming the failing call.
api::Result<SpawnedChild> spawnChild(const LaunchSpec& spec, const std::string& stdoutPath,
                                     const std::string& stderrPath);

/// Lets the child exec (`release` true) or makes it exit without exec'ing; closes the fd.
void releaseChild(SpawnedChild& child, bool release);

/// Blocks until the released child has exec'd or failed to, then closes `fd`. Returns what
/// failed ("cannot execute '/x': No such file or directory"), or nothing when exec succeeded or
/// the child never got that far.
std::optional<std::string> readExecError(int fd, const LaunchSpec& spec);

/// "Command exited with status 3", "Command terminated with signal KILL" (Mesos's command
/// executor's words; the signal by its abbreviation).
std::string describeWaitStatus(int waitStatus);

}  // namespace tessera::modules::containerizer_native

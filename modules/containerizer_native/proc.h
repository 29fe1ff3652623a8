#pragma once

/// What the native containerizer reads from /proc: process stats, start times and the
/// environment marker it leaves in every container it starts.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::modules::containerizer_native {

/// The fields of /proc/<pid>/stat the containerizer uses.
struct ProcStat {
  pid_t pid = 0;
  char state = '?';        ///< field 3: R, S, D, Z, ...
  pid_t ppid = 0;          ///< field 4
  pid_t pgrp = 0;          ///< field 5
  pid_t session = 0;       ///< field 6
  uint64_t utime = 0;      ///< field 14, clock ticks
  uint64_t stime = 0;      ///< field 15, clock ticks
  int64_t numThreads = 0;  ///< field 20
  uint64_t startTime = 0;  ///< field 22, clock ticks after boot
  int64_t rssPages = 0;    ///< field 24
};

/// Parses the text of /proc/<pid>/stat (the command name may hold spaces and parentheses).
/// Errors: InvalidArgument for text that does not have the shape.
api::Result<ProcStat> parseProcStat(std::string_view text);

/// Reads /proc/<pid>/stat. Errors: NotFound when the process does not exist.
api::Result<ProcStat> readProcStat(pid_t pid);

/// The numeric entries of /proc (every process's pid), unsorted.
std::vector<pid_t> listPids();

/// The NUL-separated initial environment of `pid` (/proc/<pid>/environ) as a map; empty when it
/// cannot be read (the process is gone or belongs to someone we may not inspect).
std::map<std::string, std::string> readEnviron(pid_t pid);

/// The environment variable naming the container a process belongs to.
inline constexpr std::string_view kContainerIdVariable = "TESSERA_CONTAINER_ID";
/// The environment variable naming the agent work dir of the containerizer that started it, so
/// two agents on one host (or two test cases) never take each other's processes for orphans.
inline constexpr std::string_view kWorkDirVariable = "TESSERA_AGENT_WORK_DIR";

/// Every process carrying the marker of a container started by a containerizer with
/// `agentWorkDir`, by container id.
std::map<std::string, std::vector<pid_t>> findMarkedProcesses(std::string_view agentWorkDir);

/// pidfd_open(2). (glibc 2.36's <sys/pidfd.h> lacks C linkage, so this calls the syscall.)
int pidfdOpen(pid_t pid);

/// pidfd_send_signal(2) without siginfo. Returns 0 or -1 with errno.
int pidfdSendSignal(int pidfd, int signal);

/// Clock ticks per second (sysconf(_SC_CLK_TCK)).
double clockTicksPerSecond();

/// Bytes per page.
int64_t pageSize();

}  // namespace tessera::modules::containerizer_native

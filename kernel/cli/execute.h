#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace tessera::kernel::cli {

/// `tessera execute` (Mesos's mesos-execute): subscribes to `--master` as a framework, launches
/// one task (`--name`, `--command`, `--resources`, ..., or a whole v1 TaskInfo with
/// `--task=JSON|file:///path`, Mesos's flag; or a task group with `--task_group=JSON|file:///path`,
/// a v1 TaskGroupInfo launched with a DEFAULT executor, done when every task has ended and 0 only
/// when all finished) on the first offer that fits, prints
/// every status update with a timestamp, acknowledges them, and on a terminal state tears the
/// framework down and returns the task's exit code: 0 for TASK_FINISHED, the status N of a
/// TASK_FAILED whose message says "exited with status N" (else 1), 1 for any other end. An
/// unreachable master is one error line and 1 after `--connect_timeout`; SIGINT/SIGTERM kill
/// the task, tear down and return 128 + the signal. `args` excludes the subcommand.
int runExecute(const std::vector<std::string>& args);

/// runExecute() writing its progress to `out` and its errors to `err` (flag parsing errors and
/// --help still go to stderr and stdout).
int runExecute(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tessera::kernel::cli

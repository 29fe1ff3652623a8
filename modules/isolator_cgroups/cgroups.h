#pragma once

/// Plain cgroupfs operations for the cgroups isolator: finding the hierarchy (v1 or v2),
/// creating, configuring, reading and destroying cgroups. Every call here may block (cgroupfs
/// writes, waiting for a cgroup to empty); the isolator runs them on the blocking pool.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::modules::isolator_cgroups {

/// The controllers the isolator uses.
enum class Controller { kCpu, kCpuacct, kMemory, kPids, kFreezer };

/// "cpu", "cpuacct", "memory", "pids", "freezer".
std::string_view controllerName(Controller controller);

/// Where the cgroups live. v1: one mount per controller under the hierarchy
/// (`/sys/fs/cgroup/<controller>`); v2: one unified tree (`/sys/fs/cgroup` with
/// `cgroup.controllers`).
struct Layout {
  int version = 1;
  std::string hierarchy;  ///< "/sys/fs/cgroup"
  std::string root;       ///< the isolator's root below each mount ("tessera")
  /// v1: each controller's mount point. v2: every available controller maps to `hierarchy`.
  std::map<Controller, std::string> mounts;
  /// v1: the other controllers mounted there (not used for limits): orphans of an agent that
  /// ran with more isolation are found and removed there too.
  std::map<Controller, std::string> otherMounts;
  /// v2: the kernel can kill a whole cgroup at once (`cgroup.kill`, Linux >= 5.14).
  bool v2Kill = false;

  /// `<mount of controller>/<root>/<container>` (v2: `<hierarchy>/<root>/<container>`); the
  /// controller must be in `mounts`.
  std::string path(Controller controller, std::string_view container) const;
  /// `<mount>/<root>` for `controller`.
  std::string rootPath(Controller controller) const;
  /// The distinct directories that make up `container`'s cgroup (one per v1 mount, one on v2).
  std::vector<std::string> directories(std::string_view container) const;
  /// directories() plus those under `otherMounts`: where a cgroup of `container` may be.
  std::vector<std::string> allDirectories(std::string_view container) const;
  /// "v1" / "v2".
  std::string describe() const;
};

/// Finds the hierarchy at `hierarchy` and checks that `wanted` are mounted (v1) or available
/// (v2: listed in `cgroup.controllers`), then creates `<root>` and, on v2, enables the
/// controllers for it. Freezer is used when present, never required. Errors: FailedPrecondition
/// naming the controller and the path it looked at (`cgroups controller 'memory' is not
/// mounted at '/sys/fs/cgroup/memory'`), Internal for a failed write.
api::Result<Layout> detect(const std::string& hierarchy, const std::string& root,
                           const std::set<Controller>& wanted);

/// Reads a whole (small) file. Errors: Internal naming the path.
api::Result<std::string> readFile(const std::string& path);
/// Writes `value` to an existing cgroupfs file. Errors: Internal naming the path and errno.
api::Status writeFile(const std::string& path, std::string_view value);
/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events) as a map.
std::map<std::string, uint64_t> readKeyValues(const std::string& path);
/// A file holding one number; nullopt when it is missing, unreadable or "max".
std::optional<uint64_t> readNumber(const std::string& path);

/// Creates every directory of `container`'s cgroup. Errors: AlreadyExists if one exists and
/// holds processes, Internal for mkdir failures (naming the path).
api::Status create(const Layout& layout, std::string_view container);
/// Moves `pid` into every directory of `container`'s cgroup.
api::Status assign(const Layout& layout, std::string_view container, pid_t pid);
/// The processes in `container`'s cgroups (union over the v1 mounts).
std::set<pid_t> processes(const Layout& layout, std::string_view container);
/// True if any directory of `container`'s cgroup exists.
bool exists(const Layout& layout, std::string_view container);
/// The container names that have a cgroup under the root (union over the mounts).
std::set<std::string> containers(const Layout& layout);
/// Kills every process in `container`'s cgroup (v1: freezing it first when freezer is mounted,
/// so nothing forks meanwhile; v2: cgroup.kill when available), waits up to `timeout` until it
/// is empty and removes its directories. Missing directories are fine (idempotent). Errors:
/// DeadlineExceeded naming the processes still in it, Internal for an rmdir that fails.
api::Status destroy(const Layout& layout, std::string_view container,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// cpu.shares for `cpus` (Mesos: 1024 per cpu, at least 2).
uint64_t cpuShares(double cpus);
/// cgroup v2 cpu.weight for the shares (the conversion runc and Kubernetes use).
uint64_t cpuWeight(uint64_t shares);

}  // namespace tessera::modules::isolator_cgroups

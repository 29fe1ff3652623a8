#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "tessera/api/container.h"
#include "tessera/api/module.h"

namespace tessera::api {

/// Isolates containers run by the native containerizer (cgroups, namespaces, ...): the
/// containerizer calls prepare → (fork) → isolate → (exec) → watch, and cleanup after the
/// container's processes are gone. Every method runs on the isolator's executor and calls its
/// callback exactly once (watch: at most once). The kernel hands containerizers proxies that
/// post calls here and callbacks back to the caller's executor.
class TESSERA_API Isolator : public Module {
 public:
  /// The isolation names it implements, as `--isolation` spells them ("cgroups/cpu"). Asked
  /// once by the agent at start, on the isolator's executor.
  virtual std::vector<std::string> isolations() const = 0;

  /// After an agent restart: re-adopts `alive` (checkpointed containers that still run) and
  /// removes every isolation it finds that belongs to none of them (orphans), killing their
  /// processes. Errors: the first failure; the agent then refuses to start.
  virtual void recover(const std::vector<ContainerCheckpoint>& alive,
                       std::function<void(Status)> done) = 0;

  /// Prepares isolation for a container about to start (creates its cgroup and sets limits).
  virtual void prepare(const ContainerConfig& config, std::function<void(Status)> done) = 0;

  /// Puts `pid` into the container's isolation. The process has been forked and waits for
  /// every isolator's isolate() before it execs, so it never runs unisolated.
  virtual void isolate(std::string_view containerId, int64_t pid,
                       std::function<void(Status)> done) = 0;

  /// Calls `limited` once if the container hits a limit this isolator enforces; never if it
  /// does not. The callback is dropped at cleanup().
  virtual void watch(std::string_view containerId,
                     std::function<void(ContainerLimitation)> limited) = 0;

  /// Changes the limits of a running container.
  virtual void update(std::string_view containerId, const Resources& resources,
                      std::function<void(Status)> done) = 0;

  /// Fills in the fields of `stats` this isolator knows (cpu times, memory, throttling).
  virtual void usage(std::string_view containerId, v1::ResourceStatistics stats,
                     std::function<void(Result<v1::ResourceStatistics>)> done) = 0;

  /// Removes the container's isolation, killing any process still in it. Idempotent.
  virtual void cleanup(std::string_view containerId, std::function<void(Status)> done) = 0;
};

}  // namespace tessera::api

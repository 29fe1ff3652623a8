#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "tessera/api/status.h"

namespace tessera::modules::containerizer_native {

/// Watches process exits for a whole containerizer with ONE thread: every watched process is a
/// pidfd in one epoll set (pidfds are pollable for children and non-children alike, Linux
/// >= 5.3). When a pidfd turns readable the process has ended; the reaper then reaps it with
/// waitid(P_PIDFD) if it is our child (giving its wait status) and reports no status when it is
/// not (a process re-adopted after an agent restart).
class Reaper {
 public:
  /// Called on the reaper's thread, once per watch, with the wait status if known.
  using OnExit = std::function<void(std::optional<int> waitStatus)>;

  Reaper() = default;
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  /// Creates the epoll set and starts the thread. Errors: Internal naming the failing call.
  api::Status start();

  /// Takes ownership of `pidfd` and calls `onExit` once the process has ended. Thread-safe.
  /// Errors: FailedPrecondition when not started (the fd is closed).
  api::Status watch(int pidfd, OnExit onExit);

  /// Stops and joins the thread, closing every pidfd still watched and dropping its callback.
  /// Idempotent.
  void stop();

  /// Reaps `pidfd`'s process now if it has ended; nullopt when it runs or is not our child.
  static std::optional<int> tryReap(int pidfd);

 private:
  void loop();

  std::mutex mutex_;
  std::map<int, OnExit> watches_;  // by pidfd
  bool running_ = false;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd that stops the loop
  std::thread thread_;
};

}  // namespace tessera::modules::containerizer_native

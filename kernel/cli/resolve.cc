#include "kernel/cli/resolve.h"

#include <iostream>

#include "kernel/cli/common.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/logging.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

api::Result<std::unique_ptr<LeaderFollower>> LeaderFollower::start(
    runtime::Runtime& runtime, std::string_view master, std::string_view flag,
    std::chrono::milliseconds sessionTimeout) {
  auto url = zookeeper::parseZkUrl(master);
  if (!url) return url.status().withContext("flag '{}'", flag);
  auto follower = std::unique_ptr<LeaderFollower>(new LeaderFollower());
  follower->executor_ = runtime.makeExecutor();
  auto* self = follower.get();
  follower->detector_ =
      election::LeaderDetector::create(*url, sessionTimeout, *follower->executor_,
                                       [self](const std::optional<election::MasterInfo>& leader) {
                                         if (!leader) return;
                                         std::function<void(const std::string&)> fn;
                                         {
                                           std::lock_guard lock(self->mutex_);
                                           if (self->stopped_) return;
                                           fn = self->onChange_;
                                         }
                                         if (fn) fn(leader->address());
                                       });
  follower->detector_->start();
  return follower;
}

LeaderFollower::~LeaderFollower() { stop(); }

void LeaderFollower::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  detector_->stop();
  executor_->drain();
}

std::optional<std::string> LeaderFollower::leader() const {
  auto info = detector_->leader();
  if (!info) return std::nullopt;
  return info->address();
}

std::optional<std::string> LeaderFollower::awaitLeader(std::chrono::milliseconds timeout) const {
  auto info = detector_->awaitLeader(timeout);
  if (!info) return std::nullopt;
  return info->address();
}

void LeaderFollower::onChange(std::function<void(const std::string&)> fn) {
  std::lock_guard lock(mutex_);
  onChange_ = std::move(fn);
}

std::function<std::optional<std::string>()> LeaderFollower::resolver() const {
  auto detector = detector_;
  return [detector]() -> std::optional<std::string> {
    auto info = detector->leader();
    if (!info) return std::nullopt;
    return info->address();
  };
}

int runResolve(const std::vector<std::string>& args) {
  std::string master;
  runtime::Duration timeout = std::chrono::seconds(5);
  bool verbose = false;
  runtime::FlagSet flags;
  flags.add("master", &master, "The ZooKeeper URL of the masters: zk://host:port,.../path");
  flags.add("timeout", &timeout, "How long to wait for a leader to be detected");
  flags.add("verbose", &verbose, "Log what the detector does on stderr");
  std::vector<std::string> positional;
  switch (loadFlags("resolve", flags, args, &positional)) {
    case LoadOutcome::kExitOk:
      return 0;
    case LoadOutcome::kExitError:
      return 1;
    case LoadOutcome::kRun:
      break;
  }
  if (!positional.empty()) {
    if (!master.empty() || positional.size() > 1) {
      printError("resolve", "give the master once: tessera resolve zk://host:port/path");
      return 1;
    }
    master = positional.front();
  }
  if (master.empty()) {
    printError("resolve", "no master given: tessera resolve zk://host:port,.../path");
    return 1;
  }
  runtime::LoggingOptions logging{"resolve", verbose ? "INFO" : "ERROR", "", !verbose};
  if (auto status = runtime::setupLogging(logging); !status) {
    printError("resolve", status.message());
    return 1;
  }
  runtime::Runtime runtime(runtime::Runtime::Options{1, 1, 16});
  runtime.start();
  int code = 0;
  {
    auto follower = LeaderFollower::start(runtime, master, "--master");
    if (!follower) {
      printError("resolve", follower.status().message());
      code = 1;
    } else {
      auto leader =
          (*follower)->awaitLeader(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
      (*follower)->stop();
      if (leader) {
        std::cout << *leader << std::endl;
      } else {
        printError("resolve", fmt::format("no leading master found under '{}' within {}", master,
                                          runtime::formatDuration(timeout)));
        code = 1;
      }
    }
  }
  runtime.stop();
  return code;
}

}  // namespace tessera::kernel::cli

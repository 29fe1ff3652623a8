#pragma once

// Pods for the Marathon module: the pod store (every pod's current version and its earlier ones
// in the module's state store, written before the API answers, so a new leader has every pod),
// the /v2/pods routes (routes_pods.cc) and the PodScheduler that runs the instances. The
// framework glue (marathon_framework.cc) owns one, gives it offers and updates first, and
// starts it after the apps are read.
//
// Threading: everything runs on the module's executor, like the rest of the module.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "modules/framework_marathon/pod.h"
#include "modules/framework_marathon/pod_scheduler.h"
#include "tessera/api/http.h"
#include "tessera/api/module.h"

namespace tessera::modules::marathon {

class PodService {
 public:
  /// `appExists` tells whether an app has an id (a pod may not take it).
  PodService(api::Context& context, PodScheduler::Options options,
             std::function<bool(const std::string&)> appExists);
  ~PodService();
  PodService(const PodService&) = delete;
  PodService& operator=(const PodService&) = delete;

  /// Registers /v2/pods (prefix). Errors: the route is taken.
  api::Status addRoutes();
  /// Reads every stored pod (retrying every second until the store answers), then `done`.
  void load(std::function<void()> done);
  /// The leader's start after load(): the engine gets the pods; the API answers from now on.
  void start(api::SchedulerDriver& driver);
  void stop();

  PodScheduler& scheduler() { return *scheduler_; }
  size_t size() const { return pods_.size(); }

 private:
  struct Record {
    Pod current;
    std::vector<Pod> versions;  // newest first, current included
    uint64_t storeVersion = 0;
  };

  void handle(const api::HttpRequest& request, api::HttpResponder respond);
  void create(const api::HttpRequest& request, api::HttpResponder respond);
  void replace(const api::HttpRequest& request, const std::string& id, api::HttpResponder respond);
  void remove(const api::HttpRequest& request, const std::string& id, api::HttpResponder respond);
  void killInstances(const api::HttpRequest& request, const std::string& id,
                     std::vector<std::string> instanceIds, bool single, api::HttpResponder respond);
  std::string statusJson(const Record& record) const;

  // Stores `pod` as the current version (kept with its earlier ones), then `done`.
  void persist(const Pod& pod, std::function<void(api::Status)> done);
  void forget(const std::string& id, std::function<void(api::Status)> done);

  api::Context& context_;
  std::unique_ptr<PodScheduler> scheduler_;
  std::function<bool(const std::string&)> appExists_;
  std::map<std::string, Record> pods_;
  bool ready_ = false;
  std::unique_ptr<api::TimerHandle> retry_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tessera::modules::marathon

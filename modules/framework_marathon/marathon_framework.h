#pragma once

// The Marathon framework module: the api::Framework the host runs (subscription, scheduler
// events forwarded to the AppScheduler), the app store (every app's current version and its
// earlier versions in the module's state store, written before the API answers, so a new
// leader has every app) and Marathon 1.x's REST API on the module's routes.
//
// Threading: everything runs on the module's executor (Context::executor()): the factory,
// route handlers, store callbacks, scheduler callbacks and events. No locks.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "modules/framework_marathon/pod_service.h"
#include "modules/framework_marathon/scheduler.h"
#include "tessera/api/executor.h"
#include "tessera/api/framework.h"
#include "tessera/api/http.h"
#include "tessera/api/module.h"
#include "tessera/api/parameters.h"

namespace tessera::modules::marathon {

class MarathonFramework final : public api::Framework {
 public:
  /// What the module's parameters say (kernel/cli/marathon.cc passes them).
  struct Settings {
    std::string frameworkName = "marathon";
    std::string role = "*";
    std::string user;        // default: the current user, else "root"
    bool checkpoint = true;  // `marathon --disable_checkpoint` passes "false"
  };

  /// The factory: reads the parameters, registers the routes. Errors: a route that is taken.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  MarathonFramework(api::Context& context, Settings settings);
  ~MarathonFramework() override;

  void attached(api::FrameworkHost& host) override;
  void start(api::SchedulerDriver& driver) override;
  void stop() override;

  void subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds heartbeatInterval,
                  const v1::MasterInfo& master) override;
  void offers(std::vector<v1::Offer> offers) override;
  void rescind(const v1::OfferID& offerId) override;
  void update(const v1::TaskStatus& status) override;
  void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
               const std::string& data) override;
  void failure(const v1::AgentID& agentId, const std::optional<v1::ExecutorID>& executorId,
               std::optional<int> status) override;
  void error(std::string_view message) override;
  void disconnected() override;

 private:
  // An app as stored: its current version and the earlier ones (newest first, current
  // included), and the store's version of its key.
  struct Record {
    App current;
    std::vector<App> versions;
    uint64_t storeVersion = 0;
  };
  struct EventStream {
    std::shared_ptr<api::HttpStreamWriter> writer;
    std::set<std::string> types;  // empty: every event
  };

  api::Status addRoutes();
  using StoredEntries = std::vector<std::pair<std::string, api::StateEntry>>;
  // Every key under `prefix` (name, entry); retried every second until all could be read.
  void readAll(std::string prefix, std::function<void(StoredEntries)> done);
  // Reads the apps into apps_, then the running deployments (oldest first) for `done`.
  void loadState(std::function<void(std::vector<Deployment>)> done);
  // Stores a new deployment (its key must not exist), then `done` (also when that failed: the
  // engine runs it anyway; the failure is logged).
  void persistDeployment(const Deployment& deployment, std::function<void()> done);
  // The engine's Options::deploymentEnded: removes the deployment's key.
  void deploymentEnded(const std::string& id);
  void persist(const std::string& appId, std::function<void(api::Status)> done);
  void forget(const std::string& appId, std::function<void(api::Status)> done);
  void publish(std::string_view eventType, std::string json);

  // Route handlers.
  void handleApps(const api::HttpRequest& request, api::HttpResponder respond);
  void createApp(const api::HttpRequest& request, api::HttpResponder respond);
  void putApps(const api::HttpRequest& request, api::HttpResponder respond);
  void putApp(const api::HttpRequest& request, const std::string& id, api::HttpResponder respond);
  void deleteApp(const api::HttpRequest& request, const std::string& id,
                 api::HttpResponder respond);
  void restartApp(const api::HttpRequest& request, const std::string& id,
                  api::HttpResponder respond);
  void appTasks(const api::HttpRequest& request, const std::string& id, api::HttpResponder respond);
  void killTasks(const api::HttpRequest& request, std::vector<std::string> ids,
                 api::HttpResponder respond, bool single = false);
  void handleDeployments(const api::HttpRequest& request, api::HttpResponder respond);
  void handleTasks(const api::HttpRequest& request, api::HttpResponder respond);
  void handleQueue(const api::HttpRequest& request, api::HttpResponder respond);
  void handleGroups(const api::HttpRequest& request, api::HttpResponder respond);
  // POST (create; 409 when it exists) or PUT/PATCH (create or update) of the group at `pathId`.
  void writeGroup(const api::HttpRequest& request, const std::string& pathId,
                  api::HttpResponder respond);
  void handleEvents(const api::HttpRequest& request, std::shared_ptr<api::HttpStreamWriter> w);

  // The stored app `id`; nullptr after answering 404 `App '<id>' does not exist`.
  const Record* findApp(const std::string& id, api::HttpResponder& respond) const;
  // Makes `app` its record's current version and the newest of its versions (at most
  // kMaxVersions kept); the caller persists it.
  void remember(const App& app);

  // Stores `apps` as new current versions and deploys them (with `removed`, `restart`).
  void storeAndDeploy(std::vector<App> apps, std::vector<std::string> removed,
                      std::vector<std::string> restart, bool force,
                      std::function<void(api::Result<Deployment>)> done);

  // `failure`: `lastTaskFailure` (when there is one); `stats`: `taskStats`.
  std::string fullAppJson(const App& app, bool tasks, bool counts, bool deployments,
                          bool failure = false, bool stats = false) const;
  std::string taskStatsJson(const App& app) const;
  std::string taskJson(const Task& task) const;
  std::string infoJson() const;

  api::Context& context_;
  const Settings settings_;
  api::FrameworkHost* host_ = nullptr;
  api::SchedulerDriver* driver_ = nullptr;
  std::unique_ptr<AppScheduler> scheduler_;
  std::unique_ptr<PodService> pods_;  // /v2/pods and the pods' instances (offers, updates first)
  bool ready_ = false;                // the apps were read from the store
  std::optional<std::string> frameworkId_;
  std::map<std::string, Record> apps_;
  std::map<std::string, uint64_t> deploymentVersions_;  // stored deployments (0: being written)
  std::set<std::string> endedDeployments_;              // ended before their write was answered

  std::vector<EventStream> streams_;
  uint64_t nextStreamId_ = 0;
  std::map<std::string, uint64_t> requests_;     // metrics: requests per route family
  std::unique_ptr<api::TimerHandle> retryLoad_;  // reading the store again after a failure
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tessera::modules::marathon

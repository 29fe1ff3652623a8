#pragma once

// Chronos for Tessera: the framework module (api::Framework). It keeps Chronos's jobs in the
// module's state store, runs them at their schedule points (ISO-8601 or cron), after their
// parents (dependent jobs) or on request, retries failed runs, and serves Chronos's REST API at
// /scheduler/... and /v1/scheduler/....
//
// State store (the module's own key space): one key per job, `/jobs/<name>`, holding the job's
// JSON (its schedule as rewritten after each point, its counters) plus what the scheduler must
// not lose across a failover: the schedule's exact state (Schedule::toStateString()), the runs
// due but not launched yet, and the runs in flight. A run is written there before its task is
// launched and removed (with the counters updated) before its terminal status update is
// acknowledged, so a new leader finds every run that may be on the cluster and reconciles it
// with the master instead of launching it again; a run the master never saw is launched once
// more, with the same task id.
//
// Threading: everything runs on the module's executor (Context::executor()).

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "modules/framework_chronos/graph.h"
#include "modules/framework_chronos/job.h"
#include "modules/framework_chronos/schedule.h"
#include "tessera/api/framework.h"
#include "tessera/api/module.h"
#include "tessera/api/parameters.h"
#include "tessera/api/resources.h"

namespace tessera::modules::chronos {

/// The module's parameters (modules.json `parameters`, or the `chronos` command's flags).
struct ChronosOptions {
  std::string frameworkName = "chronos";  ///< framework_name
  std::string role = "*";                 ///< mesos_role
  std::string user = "root";              ///< mesos_user: FrameworkInfo.user
  /// failure_retry (milliseconds, Chronos's --failure_retry): delay before a failed run's retry.
  std::chrono::milliseconds failureRetry{60000};
  /// disable_after_failures (Chronos's --disable_after_failures): a job whose runs failed this
  /// many times since its last success, retries included, is disabled; 0 never disables.
  int64_t disableAfterFailures = 0;
  /// Reads the parameters; InvalidArgument names a bad one.
  static api::Result<ChronosOptions> parse(const api::Parameters& parameters);
};

class ChronosFramework final : public api::Framework {
 public:
  /// The module's factory: parses the parameters and registers the routes.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  ChronosFramework(api::Context& context, ChronosOptions options);
  ~ChronosFramework() override;

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

  /// Replaces the clock (tests drive schedules with a fake one). Call before start().
  void setClockForTest(std::function<Clock::time_point()> clock) { clock_ = std::move(clock); }

  /// Serves one request of the REST API (the routes call it; tests may too). Runs on the
  /// executor.
  void handle(const api::HttpRequest& request, api::HttpResponder respond);

 private:
  using Millis = int64_t;                    // milliseconds since the epoch
  static constexpr size_t kStatsKept = 100;  // run durations kept (and stored) per job
  // Refuse filter (seconds) when declining an offer that none of the waiting runs fits.
  static constexpr double kFullRefuseSeconds = 1;

  // A run that is due but not launched yet.
  struct Pending {
    Millis due = 0;         // the schedule point (or the time of a manual or dependent trigger)
    int64_t attempt = 0;    // 0 for the first try, n for the n-th retry
    Millis notBefore = 0;   // retries wait for failure_retry
    std::string arguments;  // PUT job/{name}?arguments=: added to this run's command only
  };
  // A run launched (or about to be): its task.
  struct Run {
    std::string taskId;
    Millis due = 0;
    int64_t attempt = 0;
    std::string agentId;
    Millis startedAt = 0;     // TASK_RUNNING, for the stats; 0 before
    bool recovering = false;  // read from the store or an accept of unknown outcome: reconcile
    bool killed = false;      // killed through the API: no retry
    std::string arguments;    // see Pending
    // An async job's task finished: the run waits for PUT task/{id} to say how it went.
    bool awaitingCallback = false;
  };
  struct Entry {
    Job job;
    std::optional<Schedule> schedule;   // nullopt for dependent jobs
    std::optional<TimePoint> cronNext;  // kept for a cron schedule across restarts
    std::deque<Pending> queue;
    std::map<std::string, Run> runs;  // by task id
    Millis lastStart = 0;
    Millis lastSuccessAt = 0;
    std::vector<double> durations;  // seconds of the last kStatsKept successful runs (stored)
    std::string durationsJson;      // `durations` as the members of a JSON array (the record's)
    // Made from `job` on first use and dropped by setJob(): openSpecJson(job) for record(), and
    // for a run's launch what it takes (parsed once per [offer has disk][reserved for the role]
    // instead of per run) and the task's fixed texts.
    std::string specJson;
    struct RunResources {
      bool parsed = false;
      std::optional<api::Resources> resources;  // nullopt: the job's resources do not parse
    };
    std::array<RunResources, 4> runResources;
    std::string taskName;  // `ChronosTask:<name>`, empty until the first launch
    std::string memText;
    std::string cpusText;
    std::string diskText;
    std::unique_ptr<api::TimerHandle> timer;
    TimePoint timerAt;  // the schedule point `timer` fires at
    std::unique_ptr<api::TimerHandle> retryTimer;
    // The store: the key's version, a write in flight, callbacks of the next write.
    uint64_t version = 0;
    bool writing = false;
    bool dirty = false;
    bool deleted = false;
    bool deferred = false;  // changed by a schedule point, written by flushDeferred() if no write
    std::vector<std::function<void(api::Status)>> waiting;
    std::vector<std::function<void(api::Status)>> next;

    /// Replaces the job's definition (a POST or PUT, a record read at start): what record()
    /// keeps of the old one goes.
    void setJob(Job replacement);
    /// Adds a successful run's duration, keeping the last kStatsKept (and durationsJson).
    void addDuration(double seconds);
  };

  Millis nowMillis() const;
  TimePoint nowSeconds() const;

  // Loading and persisting.
  void load(std::function<void()> then);
  api::Status restore(const std::string& text, uint64_t version);
  std::string record(Entry& entry) const;  // fills entry.specJson
  void persist(const std::string& name, std::function<void(api::Status)> done = nullptr);
  void persist(Entry& entry, std::function<void(api::Status)> done = nullptr);
  void write(Entry& entry);
  void defer(Entry& entry);
  void flushDeferred();

  // Scheduling.
  api::Status prepareSchedule(Job& job, Entry& entry, bool keepCronPoint);
  void arm(const std::string& name);
  void arm(Entry& entry);
  void due(const std::string& name);
  void enqueue(Entry& entry, Pending pending);
  void wantOffers();  // posts one checkOffers() for the calls until it runs
  void checkOffers();
  void triggerDependents(const std::string& parent);
  void rebuildGraph();
  bool busy(const Entry& entry) const;
  void ended(Entry& entry, const std::string& taskId, const v1::TaskStatus& status);
  bool failed(Entry& entry, const Run& run, Millis now);  // true when a retry is queued
  void launchFrom(const v1::Offer& offer, std::vector<Entry*>& candidates);
  const api::Resources* resourcesFor(Entry& entry, const api::Resources& available) const;
  // Fills the entry's task texts on first use.
  v1::TaskInfo taskFor(Entry& entry, const Run& run, const v1::Offer& offer,
                       const api::Resources& resources) const;
  void reconcileRecovering();

  // The REST API.
  void upsert(const api::HttpRequest& request, JobKind kind, api::HttpResponder respond);
  void runNow(const std::string& name, std::string arguments, api::HttpResponder respond);
  void callback(const std::string& taskId, std::string_view body, api::HttpResponder respond);
  void remove(const std::string& name, api::HttpResponder respond);
  void drop(const std::string& name);
  void kill(const std::string& name, api::HttpResponder respond);
  std::string jobsJson(const api::HttpRequest& request) const;
  std::string statJson(const Entry& entry) const;
  std::string dot() const;
  std::string csv() const;

  api::Context& context_;
  const ChronosOptions options_;
  std::function<Clock::time_point()> clock_ = [] { return Clock::now(); };
  api::FrameworkHost* host_ = nullptr;
  api::SchedulerDriver* driver_ = nullptr;
  bool loaded_ = false;
  bool stopped_ = false;
  bool suppressed_ = false;
  // An offer was declined with a refuse filter because nothing waited: the next run that waits
  // must revive (which clears the filter), or it would wait out the filter.
  bool declinedIdle_ = false;
  bool offersCheckPosted_ = false;
  // Jobs whose schedule point's change waits for the next write (defer()).
  std::vector<std::string> deferred_;
  std::unique_ptr<api::TimerHandle> flushTimer_;
  std::map<std::string, std::unique_ptr<Entry>> jobs_;
  std::map<std::string, std::string> tasks_;  // task id -> job name
  JobGraph graph_;
};

}  // namespace tessera::modules::chronos

// The Chronos framework's life cycle and run bookkeeping: schedule points, the runs' queue and
// status updates, retries and dependents. The store (chronos_store.cc), offer matching
// (chronos_offers.cc) and the REST API (chronos_http.cc) live beside it.
#include "modules/framework_chronos/chronos_framework.h"

#include <algorithm>
#include <iterator>
#include <tuple>

#include "modules/framework_chronos/chronos_util.h"
#include "tessera/api/task_state.h"

namespace tessera::modules::chronos {

namespace {

using detail::formatMillis;
using detail::orElse;
using detail::toSeconds;

bool isSuccess(v1::TaskState state) { return state == v1::TASK_FINISHED; }

}  // namespace

api::Result<ChronosOptions> ChronosOptions::parse(const api::Parameters& parameters) {
  api::ParameterReader reader(parameters);
  ChronosOptions options;
  options.frameworkName = reader.string("framework_name", options.frameworkName);
  options.role = reader.string("mesos_role", options.role);
  options.user = reader.string("mesos_user", options.user);
  auto retry = reader.integer("failure_retry", options.failureRetry.count());
  if (!retry) return retry.status();
  if (*retry < 0) return api::invalidArgument("parameter 'failure_retry' must be at least 0");
  options.failureRetry = std::chrono::milliseconds(*retry);
  auto disable = reader.integer("disable_after_failures", options.disableAfterFailures);
  if (!disable) return disable.status();
  if (*disable < 0) {
    return api::invalidArgument("parameter 'disable_after_failures' must be at least 0");
  }
  options.disableAfterFailures = *disable;
  (void)reader.string("ui_dir");  // the web UI's files: uiDirectory() reads it
  if (options.frameworkName.empty()) {
    return api::invalidArgument("parameter 'framework_name' must not be empty");
  }
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return options;
}

ChronosFramework::ChronosFramework(api::Context& context, ChronosOptions options)
    : context_(context), options_(std::move(options)) {}

ChronosFramework::~ChronosFramework() = default;

ChronosFramework::Millis ChronosFramework::nowMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_().time_since_epoch()).count();
}

TimePoint ChronosFramework::nowSeconds() const {
  return std::chrono::floor<std::chrono::seconds>(clock_());
}

void ChronosFramework::attached(api::FrameworkHost& host) { host_ = &host; }

void ChronosFramework::start(api::SchedulerDriver& driver) {
  driver_ = &driver;
  load([this] {
    if (stopped_ || driver_ == nullptr) return;
    v1::FrameworkInfo info;
    info.set_user(options_.user);
    info.set_name(options_.frameworkName);
    info.add_roles(options_.role);
    info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
    if (host_ != nullptr && !host_->advertisedAddress().empty()) {
      info.set_webui_url(fmt::format("http://{}", host_->advertisedAddress()));
    }
    if (auto status = driver_->subscribe(info); !status) {
      context_.logger().error("cannot subscribe: {}", status.message());
    }
  });
}

void ChronosFramework::stop() {
  stopped_ = true;
  driver_ = nullptr;
  if (flushTimer_) flushTimer_->cancel();
  for (auto& [name, entry] : jobs_) {
    if (entry->timer) entry->timer->cancel();
    if (entry->retryTimer) entry->retryTimer->cancel();
  }
}

void ChronosFramework::Entry::setJob(Job replacement) {
  job = std::move(replacement);
  specJson.clear();
  runResources = {};
  taskName.clear();
}

// durationsJson follows `durations` one number at a time: formatting all of them again for
// every record cost up to kStatsKept double conversions per write.
void ChronosFramework::Entry::addDuration(double seconds) {
  durations.push_back(seconds);
  if (!durationsJson.empty()) durationsJson.push_back(',');
  fmt::format_to(std::back_inserter(durationsJson), "{}", seconds);
  if (durations.size() > kStatsKept) {
    durations.erase(durations.begin());
    durationsJson.erase(0, durationsJson.find(',') + 1);
  }
}

// ---- Scheduling ------------------------------------------------------------------------------

api::Status ChronosFramework::prepareSchedule(Job& job, Entry& entry, bool keepCronPoint) {
  entry.schedule.reset();
  if (job.kind() == JobKind::kDependent) {
    entry.cronNext.reset();
    return api::Status::ok();
  }
  const TimePoint now = nowSeconds();
  if (!job.cron.empty()) {
    const TimePoint from =
        keepCronPoint && entry.cronNext ? *entry.cronNext - std::chrono::seconds(1) : now;
    auto schedule = Schedule::parseCron(job.cron, job.scheduleTimeZone, from);
    if (!schedule) return schedule.status().withContext("field 'cron'");
    entry.schedule = std::move(*schedule);
    entry.cronNext = entry.schedule->next();
    return api::Status::ok();
  }
  auto schedule = Schedule::parseIso8601(job.schedule, job.scheduleTimeZone, now);
  if (!schedule) return schedule.status().withContext("field 'schedule'");
  entry.schedule = std::move(*schedule);
  entry.cronNext.reset();
  job.schedule = entry.schedule->toString();
  return api::Status::ok();
}

void ChronosFramework::arm(const std::string& name) { arm(*jobs_.at(name)); }

// The point's timer is made again only when the point changed: arm() follows every run's end,
// and a new timer per run was a cost of its own (bench/chronos_bench).
void ChronosFramework::arm(Entry& entry) {
  std::optional<TimePoint> next;
  if (entry.schedule && !stopped_) next = entry.schedule->next();
  if (entry.timer && (!next || *next != entry.timerAt)) {
    entry.timer->cancel();
    entry.timer.reset();
  }
  if (entry.retryTimer) entry.retryTimer->cancel();
  entry.retryTimer.reset();
  if (stopped_) return;
  if (next && !entry.timer) {
    auto delay = std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(*next - clock_()));
    entry.timerAt = *next;
    entry.timer = context_.executor().schedule(delay, [this, name = entry.job.name] { due(name); });
  }
  // Retries waiting for failure_retry: offers are asked for again when the first is ready.
  Millis earliest = 0;
  for (const auto& pending : entry.queue) {
    if (pending.notBefore > 0 && (earliest == 0 || pending.notBefore < earliest)) {
      earliest = pending.notBefore;
    }
  }
  if (earliest > 0) {
    auto delay = std::chrono::milliseconds(std::max<Millis>(0, earliest - nowMillis()));
    entry.retryTimer = context_.executor().schedule(delay, [this] { wantOffers(); });
  }
  wantOffers();
}

bool ChronosFramework::busy(const Entry& entry) const {
  return !entry.runs.empty() || !entry.queue.empty();
}

// A schedule point came: one run for the latest point passed (never one per missed point),
// within epsilon (or startingDeadlineSeconds), unless the job is disabled or may not overlap
// the run still going. The advanced schedule and the queued run are written together.
void ChronosFramework::due(const std::string& name) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || stopped_) return;
  Entry& entry = *it->second;
  entry.timer.reset();  // it fired: arm() makes the next one
  if (!entry.schedule) return;
  const TimePoint now = nowSeconds();
  auto next = entry.schedule->next();
  if (!next) return;
  if (*next > now) return arm(entry);
  int64_t skipped = 0;
  Schedule latest = entry.schedule->skipMissed(now, &skipped);
  auto point = latest.next();
  if (!point) return arm(entry);
  const Job& job = entry.job;
  const int64_t window = job.startingDeadlineSeconds
                             ? *job.startingDeadlineSeconds
                             : orElse(parseDurationSeconds(job.epsilon), 60);
  const int64_t late = (now - *point).count();
  if (skipped > 0) {
    context_.logger().info("job '{}': {} schedule points passed while not running, skipped", name,
                           skipped);
  }
  if (late > window) {
    context_.logger().warning("job '{}': the point {} passed {}s ago, beyond {}s: skipped", name,
                              formatDateTime(*point), late, window);
  } else if (job.disabled) {
    context_.logger().info("job '{}' is disabled: the point {} is skipped", name,
                           formatDateTime(*point));
  } else if (!job.allowsOverlap() && busy(entry)) {
    context_.logger().info("job '{}' still runs: the point {} is skipped", name,
                           formatDateTime(*point));
  } else {
    enqueue(entry,
            Pending{std::chrono::duration_cast<std::chrono::milliseconds>(point->time_since_epoch())
                        .count(),
                    0,
                    0,
                    {}});
  }
  entry.schedule = latest.advanced();
  if (entry.schedule->isCron()) {
    entry.cronNext = entry.schedule->next();
  } else {
    entry.job.schedule = entry.schedule->toString();
  }
  defer(entry);
  arm(entry);
}

void ChronosFramework::enqueue(Entry& entry, Pending pending) {
  entry.queue.push_back(pending);
  wantOffers();
}

// Revives offers while any run waits for them, suppresses them otherwise. The check walks every
// job, so the calls made in one burst (100,000 points due at once, each job's update) share one
// check, posted after them; walking per call was quadratic (bench/chronos_bench.cc).
void ChronosFramework::wantOffers() {
  if (offersCheckPosted_) return;
  offersCheckPosted_ = true;
  context_.executor().post([this] {
    offersCheckPosted_ = false;
    if (!stopped_) checkOffers();
  });
}

void ChronosFramework::checkOffers() {
  if (driver_ == nullptr || !driver_->subscribed()) return;
  const Millis now = nowMillis();
  bool waiting = false;
  for (auto job = jobs_.begin(); job != jobs_.end() && !waiting; ++job) {
    for (const auto& pending : job->second->queue) {
      if (pending.notBefore <= now) {
        waiting = true;
        break;
      }
    }
  }
  if (waiting && (suppressed_ || declinedIdle_)) {
    suppressed_ = false;
    declinedIdle_ = false;
    driver_->revive({}, nullptr);
  } else if (!waiting && !suppressed_) {
    suppressed_ = true;
    driver_->suppress({}, nullptr);
  }
}

// Dependent jobs whose parents all succeeded since the dependent's last start run once.
void ChronosFramework::triggerDependents(const std::string& parent) {
  const Millis now = nowMillis();
  for (const auto& name : graph_.parentSucceeded(parent, toSeconds(now))) {
    auto it = jobs_.find(name);
    if (it == jobs_.end() || it->second->deleted) continue;
    Entry& entry = *it->second;
    if (entry.job.disabled) continue;
    if (!entry.job.allowsOverlap() && busy(entry)) continue;
    context_.logger().info("job '{}': every parent succeeded, running it", name);
    enqueue(entry, Pending{now, 0, 0, {}});
    persist(name);
  }
}

// The graph from the jobs read at start: links, and which parents succeeded since each child's
// last start.
void ChronosFramework::rebuildGraph() {
  graph_ = JobGraph();
  for (const auto& [name, entry] : jobs_) (void)graph_.addJob(name);
  for (const auto& [name, entry] : jobs_) {
    if (auto linked = graph_.setParents(name, entry->job.parents); !linked) {
      context_.logger().error("job '{}': {}", name, linked.message());
    }
  }
  for (const auto& [name, entry] : jobs_) {
    std::optional<TimePoint> success;
    std::optional<TimePoint> started;
    if (entry->lastSuccessAt > 0) success = toSeconds(entry->lastSuccessAt);
    if (entry->lastStart > 0) started = toSeconds(entry->lastStart);
    graph_.restore(name, success, started);
  }
}

void ChronosFramework::subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds,
                                  const v1::MasterInfo&) {
  context_.logger().info("subscribed as framework '{}'", frameworkId.value());
  suppressed_ = false;  // a new subscription starts with offers flowing
  reconcileRecovering();
  wantOffers();
}

// Runs read from the store (or whose launch had an unknown outcome): the master says what became
// of each; one it never saw is launched again (update()).
void ChronosFramework::reconcileRecovering() {
  if (driver_ == nullptr || !driver_->subscribed()) return;
  std::vector<v1::scheduler::Call::Reconcile::Task> tasks;
  for (const auto& [name, entry] : jobs_) {
    for (const auto& [taskId, run] : entry->runs) {
      if (!run.recovering) continue;
      v1::scheduler::Call::Reconcile::Task task;
      task.mutable_task_id()->set_value(taskId);
      if (!run.agentId.empty()) task.mutable_agent_id()->set_value(run.agentId);
      tasks.push_back(std::move(task));
    }
  }
  if (tasks.empty()) return;
  context_.logger().info("reconciling {} runs in flight", tasks.size());
  driver_->reconcile(std::move(tasks), nullptr);
}

void ChronosFramework::rescind(const v1::OfferID&) {}

void ChronosFramework::update(const v1::TaskStatus& status) {
  auto acknowledge = [this, &status] {
    if (driver_ != nullptr && status.has_uuid()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
  };
  const std::string& taskId = status.task_id().value();
  auto task = tasks_.find(taskId);
  auto job = task == tasks_.end() ? jobs_.end() : jobs_.find(task->second);
  if (job == jobs_.end() || job->second->deleted) return acknowledge();
  Entry& entry = *job->second;
  auto run = entry.runs.find(taskId);
  if (run == entry.runs.end()) return acknowledge();
  if (status.has_agent_id() && !status.agent_id().value().empty()) {
    run->second.agentId = status.agent_id().value();
  }
  const bool reconciled = status.reason() == v1::TaskStatus::REASON_RECONCILIATION;
  if (run->second.recovering && reconciled &&
      (status.state() == v1::TASK_LOST || status.state() == v1::TASK_UNKNOWN ||
       status.state() == v1::TASK_GONE) &&
      status.message().find("unknown") != std::string::npos) {
    // The master never saw the task: the launch did not happen. Launch it once more (same
    // schedule point, same attempt), unless it was killed meanwhile.
    Run lost = run->second;
    entry.runs.erase(run);
    tasks_.erase(taskId);
    if (!lost.killed) {
      context_.logger().info("job '{}': task '{}' never reached the master, launching it again",
                             entry.job.name, taskId);
      entry.queue.push_front(Pending{lost.due, lost.attempt, 0, lost.arguments});
    }
    persist(entry.job.name);
    wantOffers();
    return acknowledge();
  }
  run->second.recovering = false;
  if (status.state() == v1::TASK_FINISHED && entry.job.async && !run->second.awaitingCallback) {
    // Chronos's async jobs: the task's own end does not end the run; the job reports its outcome
    // with PUT task/{id} (callback()). Stored before the update is acknowledged, so that a new
    // leader waits for the callback instead of reconciling a task that is gone.
    run->second.awaitingCallback = true;
    context_.logger().info("job '{}': task '{}' finished, waiting for its async outcome",
                           entry.job.name, taskId);
    std::optional<std::tuple<v1::AgentID, v1::TaskID, std::string>> ack;
    if (status.has_uuid()) ack.emplace(status.agent_id(), status.task_id(), status.uuid());
    persist(entry.job.name, [this, ack = std::move(ack)](api::Status written) {
      if (!written || driver_ == nullptr || !ack) return;
      driver_->acknowledge(std::get<0>(*ack), std::get<1>(*ack), std::get<2>(*ack), nullptr);
    });
    return;
  }
  if (run->second.awaitingCallback) return acknowledge();  // its outcome comes by callback
  if (!api::isTerminal(status.state())) {
    if (status.state() == v1::TASK_RUNNING && run->second.startedAt == 0) {
      run->second.startedAt = nowMillis();
    }
    return acknowledge();
  }
  ended(entry, taskId, status);
}

// A run ended: counters, a retry or the dependents, written before the update is acknowledged
// (an update not acknowledged comes again after a failover, and is then applied once).
void ChronosFramework::ended(Entry& entry, const std::string& taskId,
                             const v1::TaskStatus& status) {
  auto found = entry.runs.find(taskId);
  Run run = found->second;
  entry.runs.erase(found);
  tasks_.erase(taskId);
  Job& job = entry.job;
  const Millis now = nowMillis();
  const bool success = isSuccess(status.state());
  bool retrying = false;
  if (success) {
    ++job.successCount;
    job.lastSuccess = formatMillis(now);
    job.errorsSinceLastSuccess = 0;
    entry.lastSuccessAt = now;
    if (run.startedAt > 0) entry.addDuration(static_cast<double>(now - run.startedAt) / 1000.0);
    context_.logger().info("job '{}': task '{}' succeeded", job.name, taskId);
  } else {
    context_.logger().info("job '{}': task '{}' ended {} ({})", job.name, taskId,
                           v1::TaskState_Name(status.state()), status.message());
    retrying = failed(entry, run, now);
  }
  // softError (as Chronos): a run that failed for good still lets the dependents run.
  const bool release = success || (entry.job.softError && !run.killed && !retrying);
  if (release && !success) entry.lastSuccessAt = now;  // the dependents' view of the parent
  const std::string name = job.name;
  std::optional<std::tuple<v1::AgentID, v1::TaskID, std::string>> ack;
  if (status.has_uuid()) ack.emplace(status.agent_id(), status.task_id(), status.uuid());
  persist(entry, [this, name, ack = std::move(ack), release](api::Status written) {
    if (!written || driver_ == nullptr) return;
    if (ack) driver_->acknowledge(std::get<0>(*ack), std::get<1>(*ack), std::get<2>(*ack), nullptr);
    if (release) triggerDependents(name);
  });
  if (auto it = jobs_.find(name); it != jobs_.end()) arm(*it->second);
}

// A failed run: a retry after failure_retry while attempts are left (not for a run killed
// through the API), else the run counts in errorCount (once, however many attempts it took, as
// Chronos counts it) and the job is disabled once disable_after_failures is reached.
// errorsSinceLastSuccess and lastError follow every failed attempt.
bool ChronosFramework::failed(Entry& entry, const Run& run, Millis now) {
  Job& job = entry.job;
  ++job.errorsSinceLastSuccess;
  job.lastError = detail::formatMillis(now);
  if (!run.killed && run.attempt < job.retries) {
    Pending retry{run.due, run.attempt + 1,
                  now + static_cast<Millis>(options_.failureRetry.count()), run.arguments};
    entry.queue.push_front(std::move(retry));
    return true;
  }
  ++job.errorCount;
  if (options_.disableAfterFailures > 0 &&
      job.errorsSinceLastSuccess >= options_.disableAfterFailures && !job.disabled) {
    job.disabled = true;
    context_.logger().warning("job '{}': {} failures since its last success, disabled", job.name,
                              job.errorsSinceLastSuccess);
  }
  return false;
}

void ChronosFramework::message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) {}

void ChronosFramework::failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
                               std::optional<int>) {}

void ChronosFramework::error(std::string_view message) {
  context_.logger().error("the master removed the framework: {}", message);
}

void ChronosFramework::disconnected() { context_.logger().warning("disconnected from the master"); }

}  // namespace tessera::modules::chronos

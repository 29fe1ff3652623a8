#include "modules/framework_chronos/chronos_framework.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/RegularExpression.h>

#include <algorithm>
#include <cmath>

#include "tessera/api/json.h"
#include "tessera/api/resources.h"
#include "tessera/api/task_state.h"

namespace tessera::modules::chronos {

namespace {

using api::HttpRequest;
using api::HttpResponder;
using api::HttpResponse;
using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr std::string_view kJobsKey = "/jobs";

std::string jobKey(std::string_view name) { return fmt::format("{}/{}", kJobsKey, name); }

HttpResponse noContent() { return HttpResponse{204, "application/json", {}, ""}; }

std::string formatMillis(int64_t millis) {
  return formatDateTime(Clock::time_point(std::chrono::milliseconds(millis)));
}

TimePoint toSeconds(int64_t millis) {
  return std::chrono::floor<std::chrono::seconds>(
      Clock::time_point(std::chrono::milliseconds(millis)));
}

int64_t orElse(const api::Result<int64_t>& result, int64_t fallback) {
  return result ? *result : fallback;
}

bool isSuccess(v1::TaskState state) { return state == v1::TASK_FINISHED; }

// Chronos's percentiles: `mean`, `median`, `75thPercentile`, `95thPercentile`, ... of `sorted`.
std::optional<double> statistic(std::vector<double> values, std::string_view which) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  if (which == "mean") {
    double sum = 0;
    for (double v : values) sum += v;
    return sum / static_cast<double>(values.size());
  }
  double quantile = 0;
  if (which == "median") {
    quantile = 0.5;
  } else if (which.ends_with("thPercentile")) {
    auto number = which.substr(0, which.size() - std::string_view("thPercentile").size());
    auto parsed = api::parseInt(number);
    if (!parsed || *parsed < 1 || *parsed > 100) return std::nullopt;
    quantile = static_cast<double>(*parsed) / 100.0;
  } else {
    return std::nullopt;
  }
  auto index = static_cast<size_t>(std::ceil(quantile * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, index == 0 ? 0 : index - 1)];
}

// The value of attribute `name` of an offer as text ("hostname" is the offer's host).
std::optional<std::string> attributeOf(const v1::Offer& offer, const std::string& name) {
  if (name == "hostname") return offer.hostname();
  for (const auto& attribute : offer.attributes()) {
    if (attribute.name() != name) continue;
    if (attribute.has_text()) return attribute.text().value();
    if (attribute.has_scalar()) return fmt::format("{}", attribute.scalar().value());
    return std::string();
  }
  return std::nullopt;
}

bool satisfies(const Job& job, const v1::Offer& offer) {
  for (const auto& constraint : job.constraints) {
    auto value = attributeOf(offer, constraint[0]);
    const std::string& op = constraint[1];
    const std::string& wanted = constraint[2];
    bool matches = false;
    if (op == "EQUALS") {
      matches = value && *value == wanted;
    } else {
      bool like = false;
      // A whole-value match, as Chronos's LIKE (Java's String.matches) is.
      try {
        like = value && Poco::RegularExpression(wanted).match(*value);
      } catch (const Poco::Exception&) {
        like = false;
      }
      matches = op == "LIKE" ? like : !like;
    }
    if (!matches) return false;
  }
  return true;
}

// What a run of `job` takes from an offer holding `available`: resources reserved for `role`
// when they fit, else unreserved ones; disk only when the offer has disk.
std::optional<api::Resources> resourcesFor(const Job& job, const api::Resources& available,
                                           const std::string& role) {
  std::string text = fmt::format("cpus:{};mem:{}", job.cpus, job.mem);
  if (available.disk() > 0 && job.disk > 0) text += fmt::format(";disk:{}", job.disk);
  if (role != "*") {
    if (auto reserved = api::Resources::parse(text, role);
        reserved && available.contains(*reserved)) {
      return std::move(reserved).value();
    }
  }
  auto plain = api::Resources::parse(text);
  if (plain && available.contains(*plain)) return std::move(plain).value();
  return std::nullopt;
}

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
  if (options.frameworkName.empty()) {
    return api::invalidArgument("parameter 'framework_name' must not be empty");
  }
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return options;
}

api::Result<std::unique_ptr<api::Module>> ChronosFramework::create(
    const api::Parameters& parameters, api::Context& context) {
  auto options = ChronosOptions::parse(parameters);
  if (!options) return options.status();
  auto module = std::make_unique<ChronosFramework>(context, *options);
  ChronosFramework* self = module.get();
  for (std::string_view prefix : {"/scheduler", "/v1/scheduler"}) {
    auto added = context.http().addRoute(
        "*", prefix,
        [self](const HttpRequest& request, HttpResponder respond) {
          self->handle(request, std::move(respond));
        },
        true);
    if (!added) return added;
  }
  return std::unique_ptr<api::Module>(std::move(module));
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
  for (auto& [name, entry] : jobs_) {
    if (entry->timer) entry->timer->cancel();
    if (entry->retryTimer) entry->retryTimer->cancel();
  }
}

// ---- The state store -------------------------------------------------------------------------

void ChronosFramework::load(std::function<void()> then) {
  auto& store = context_.state();
  store.children(kJobsKey, context_.executor(), [this, then](auto names) {
    if (stopped_) return;
    if (!names) {
      context_.logger().error("cannot list the jobs: {}", names.status().message());
      return;
    }
    auto remaining = std::make_shared<size_t>(names->size());
    auto finish = [this, then, remaining] {
      if (*remaining > 0 && --*remaining > 0) return;
      loaded_ = true;
      rebuildGraph();
      for (auto& [name, entry] : jobs_) arm(name);
      context_.logger().info("loaded {} jobs", jobs_.size());
      then();
    };
    if (names->empty()) return finish();
    for (const auto& name : *names) {
      context_.state().get(jobKey(name), context_.executor(), [this, name, finish](auto entry) {
        if (stopped_) return;
        if (!entry) {
          context_.logger().error("cannot read job '{}': {}", name, entry.status().message());
        } else if (*entry) {
          if (auto restored = restore((*entry)->value, (*entry)->version); !restored) {
            context_.logger().error("cannot restore job '{}': {}", name, restored.message());
          }
        }
        finish();
      });
    }
  });
}

api::Status ChronosFramework::restore(const std::string& text, uint64_t version) {
  auto job = parseJob(text, true);
  if (!job) return job.status();
  auto entry = std::make_unique<Entry>();
  entry->version = version;
  std::string stateText;
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Object::Ptr>();
    if (object->has("chronosCronNext")) {
      entry->cronNext =
          TimePoint(std::chrono::seconds(object->getValue<int64_t>("chronosCronNext")));
    }
    stateText = object->optValue<std::string>("chronosSchedule", "");
    if (object->has("chronosLastStart")) {
      entry->lastStart = object->getValue<int64_t>("chronosLastStart");
    }
    if (object->has("chronosLastSuccessAt")) {
      entry->lastSuccessAt = object->getValue<int64_t>("chronosLastSuccessAt");
    }
    if (auto queue = object->getArray("chronosQueue")) {
      for (size_t i = 0; i < queue->size(); ++i) {
        auto item = queue->getObject(static_cast<unsigned>(i));
        entry->queue.push_back(Pending{item->getValue<int64_t>("due"),
                                       item->getValue<int64_t>("attempt"),
                                       item->getValue<int64_t>("notBefore")});
      }
    }
    if (auto runs = object->getArray("chronosRuns")) {
      for (size_t i = 0; i < runs->size(); ++i) {
        auto item = runs->getObject(static_cast<unsigned>(i));
        Run run;
        run.taskId = item->getValue<std::string>("taskId");
        run.due = item->getValue<int64_t>("due");
        run.attempt = item->getValue<int64_t>("attempt");
        run.agentId = item->optValue<std::string>("agentId", "");
        run.killed = item->optValue<bool>("killed", false);
        run.recovering = true;
        tasks_[run.taskId] = job->name;
        entry->runs.emplace(run.taskId, std::move(run));
      }
    }
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("bad record: {}", e.displayText());
  }
  // The schedule exactly as it was (anchor, count, pending point); its text only for records
  // written without it.
  if (!stateText.empty() && job->kind() == JobKind::kScheduled) {
    auto schedule = Schedule::parseState(stateText);
    if (schedule) {
      entry->schedule = std::move(*schedule);
      if (entry->schedule->isCron()) entry->cronNext = entry->schedule->next();
    } else {
      context_.logger().warning("job '{}': {}; reading its schedule's text instead", job->name,
                                schedule.status().message());
    }
  }
  if (!entry->schedule) {
    if (auto prepared = prepareSchedule(*job, *entry, true); !prepared) return prepared;
  }
  entry->job = std::move(*job);
  const std::string name = entry->job.name;
  jobs_[name] = std::move(entry);
  return api::Status::ok();
}

std::string ChronosFramework::record(const Entry& entry) const {
  std::string json = toJson(entry.job);
  json.pop_back();  // the closing brace: the scheduler's own fields follow
  if (entry.cronNext) {
    json += fmt::format(R"(,"chronosCronNext":{})", entry.cronNext->time_since_epoch().count());
  }
  if (entry.schedule)
    json += R"(,"chronosSchedule":)" + api::jsonQuote(entry.schedule->toStateString());
  json += fmt::format(R"(,"chronosLastStart":{},"chronosLastSuccessAt":{},"chronosQueue":[)",
                      entry.lastStart, entry.lastSuccessAt);
  bool first = true;
  for (const auto& pending : entry.queue) {
    if (!first) json.push_back(',');
    first = false;
    json += fmt::format(R"({{"due":{},"attempt":{},"notBefore":{}}})", pending.due, pending.attempt,
                        pending.notBefore);
  }
  json += R"(],"chronosRuns":[)";
  first = true;
  for (const auto& [taskId, run] : entry.runs) {
    if (!first) json.push_back(',');
    first = false;
    json += R"({"taskId":)" + api::jsonQuote(taskId);
    json += fmt::format(R"(,"due":{},"attempt":{},"agentId":{},"killed":{}}})", run.due,
                        run.attempt, api::jsonQuote(run.agentId), run.killed);
  }
  return json + "]}";
}

void ChronosFramework::persist(const std::string& name, std::function<void(api::Status)> done) {
  auto it = jobs_.find(name);
  if (it == jobs_.end()) {
    if (done) done(api::Status(api::StatusCode::kNotFound, fmt::format("job '{}' is gone", name)));
    return;
  }
  Entry& entry = *it->second;
  if (done) entry.next.push_back(std::move(done));
  if (entry.writing) {
    entry.dirty = true;
    return;
  }
  write(name);
}

// One write of a job's record at a time (compare-and-set on its version); changes made while
// one is in flight go out together in the next.
void ChronosFramework::write(const std::string& name) {
  Entry& entry = *jobs_.at(name);
  entry.writing = true;
  entry.dirty = false;
  entry.waiting = std::move(entry.next);
  entry.next.clear();
  auto finished = [this, name](api::Status status) {
    auto it = jobs_.find(name);
    if (it == jobs_.end()) return;
    Entry& entry = *it->second;
    entry.writing = false;
    auto waiting = std::move(entry.waiting);
    entry.waiting.clear();
    // The next write (or the removal) goes out before the callbacks run: they may persist this
    // job again or delete it.
    if (!stopped_ && entry.deleted) {
      context_.state().remove(
          jobKey(name), entry.version, context_.executor(), [this, name](api::Status removed) {
            if (!removed) {
              context_.logger().error("cannot remove job '{}': {}", name, removed.message());
            }
          });
      // Callbacks waiting for a write that will not happen hear why.
      for (auto& callback : entry.next) {
        waiting.push_back([callback = std::move(callback), name](api::Status) {
          callback(
              api::Status(api::StatusCode::kNotFound, fmt::format("job '{}' was deleted", name)));
        });
      }
      jobs_.erase(it);
    } else if (!stopped_ && (entry.dirty || !entry.next.empty())) {
      write(name);
    }
    for (auto& callback : waiting) callback(status);
  };
  context_.state().set(jobKey(name), record(entry), entry.version, context_.executor(),
                       [this, name, finished](api::Result<uint64_t> version) {
                         if (stopped_) return;
                         auto it = jobs_.find(name);
                         if (it == jobs_.end()) return;
                         if (!version) {
                           context_.logger().error("cannot write job '{}': {}", name,
                                                   version.status().message());
                           return finished(version.status());
                         }
                         it->second->version = *version;
                         finished(api::Status::ok());
                       });
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

void ChronosFramework::arm(const std::string& name) {
  Entry& entry = *jobs_.at(name);
  if (entry.timer) entry.timer->cancel();
  entry.timer.reset();
  if (entry.retryTimer) entry.retryTimer->cancel();
  entry.retryTimer.reset();
  if (stopped_) return;
  if (entry.schedule) {
    if (auto next = entry.schedule->next()) {
      auto delay =
          std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(*next - clock_()));
      entry.timer = context_.executor().schedule(delay, [this, name] { due(name); });
    }
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
  if (!entry.schedule) return;
  const TimePoint now = nowSeconds();
  auto next = entry.schedule->next();
  if (!next) return;
  if (*next > now) return arm(name);
  int64_t skipped = 0;
  Schedule latest = entry.schedule->skipMissed(now, &skipped);
  auto point = latest.next();
  if (!point) return arm(name);
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
                    0, 0});
  }
  entry.schedule = latest.advanced();
  if (entry.schedule->isCron()) {
    entry.cronNext = entry.schedule->next();
  } else {
    entry.job.schedule = entry.schedule->toString();
  }
  persist(name);
  arm(name);
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
    enqueue(entry, Pending{now, 0, 0});
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

void ChronosFramework::offers(std::vector<v1::Offer> offers) {
  const Millis now = nowMillis();
  // Who waits: high-priority jobs first, then by due time.
  std::vector<std::string> candidates;
  for (const auto& [name, entry] : jobs_) {
    if (entry->deleted || entry->queue.empty()) continue;
    if (entry->queue.front().notBefore > now) continue;
    candidates.push_back(name);
  }
  std::sort(candidates.begin(), candidates.end(), [this](const auto& a, const auto& b) {
    const Entry& x = *jobs_.at(a);
    const Entry& y = *jobs_.at(b);
    if (x.job.highPriority != y.job.highPriority) return x.job.highPriority;
    return x.queue.front().due < y.queue.front().due;
  });
  for (const auto& offer : offers) {
    if (candidates.empty() || driver_ == nullptr) {
      v1::Filters filters;
      filters.set_refuse_seconds(5);
      if (driver_ != nullptr) driver_->decline({offer.id()}, filters, nullptr);
      declinedIdle_ = true;
      continue;
    }
    launchFrom(offer, candidates);
  }
  wantOffers();
}

// Launches from one offer every candidate it fits (one run per job), each run written to the
// store before the offer is accepted.
void ChronosFramework::launchFrom(const v1::Offer& offer, std::vector<std::string>& candidates) {
  auto available = api::Resources::fromProto(offer.resources());
  if (!available) {
    driver_->decline({offer.id()}, std::nullopt, nullptr);
    return;
  }
  const Millis now = nowMillis();
  std::vector<std::pair<std::string, std::string>> launching;  // (job, task id)
  auto taken = std::make_shared<std::map<std::string, api::Resources>>();
  // The candidates this offer does not take stay, in order (erasing each one taken from the
  // vector's front was quadratic).
  std::vector<std::string> rest;
  for (auto& candidate : candidates) {
    Entry& entry = *jobs_.at(candidate);
    const Job& job = entry.job;
    auto needed = resourcesFor(job, *available, options_.role);
    if (!needed || !satisfies(job, offer)) {
      rest.push_back(std::move(candidate));
      continue;
    }
    *available -= *needed;
    Pending pending = entry.queue.front();
    entry.queue.pop_front();
    Run run;
    run.due = pending.due;
    run.attempt = pending.attempt;
    run.agentId = offer.agent_id().value();
    run.taskId = fmt::format("ct:{}:{}:{}:", run.due, run.attempt, job.name);
    while (tasks_.count(run.taskId) > 0) {
      run.taskId = fmt::format("ct:{}:{}:{}:", ++run.due, run.attempt, job.name);
    }
    tasks_[run.taskId] = job.name;
    entry.lastStart = now;
    graph_.childStarted(job.name, toSeconds(now));
    launching.emplace_back(job.name, run.taskId);
    (*taken)[run.taskId] = *needed;
    entry.runs.emplace(run.taskId, std::move(run));
  }
  candidates = std::move(rest);
  if (launching.empty()) {
    driver_->decline({offer.id()}, std::nullopt, nullptr);
    return;
  }
  auto remaining = std::make_shared<size_t>(launching.size());
  auto written = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (const auto& [name, taskId] : launching) {
    persist(name, [this, name, taskId, remaining, written, offer, taken](api::Status status) {
      if (status) {
        written->emplace_back(name, taskId);
      } else if (auto it = jobs_.find(name); it != jobs_.end()) {
        // Not recorded, so not launched: the run waits for another offer.
        auto run = it->second->runs.find(taskId);
        if (run != it->second->runs.end()) {
          it->second->queue.push_front(Pending{run->second.due, run->second.attempt, 0});
          it->second->runs.erase(run);
        }
        tasks_.erase(taskId);
      }
      if (--*remaining > 0 || driver_ == nullptr) return;
      std::vector<v1::Offer::Operation> operations;
      for (const auto& [job, task] : *written) {
        auto it = jobs_.find(job);
        if (it == jobs_.end()) continue;
        auto run = it->second->runs.find(task);
        // Gone, or killed while it was being written: not launched.
        if (run == it->second->runs.end() || run->second.killed) continue;
        v1::Offer::Operation operation;
        operation.set_type(v1::Offer::Operation::LAUNCH);
        *operation.mutable_launch()->add_task_infos() =
            taskFor(*it->second, run->second, offer, taken->at(task));
        operations.push_back(std::move(operation));
        context_.logger().info("job '{}': launching task '{}'", job, task);
      }
      if (operations.empty()) {
        driver_->decline({offer.id()}, std::nullopt, nullptr);
        return;
      }
      driver_->accept({offer.id()}, std::move(operations), std::nullopt,
                      [this, written](api::Status accepted) {
                        if (accepted) return;
                        // The outcome is not known: ask the master once subscribed again.
                        context_.logger().warning("accept failed: {}", accepted.message());
                        for (const auto& [job, task] : *written) {
                          auto it = jobs_.find(job);
                          if (it == jobs_.end()) continue;
                          auto run = it->second->runs.find(task);
                          if (run != it->second->runs.end()) run->second.recovering = true;
                        }
                        reconcileRecovering();
                      });
    });
  }
}

v1::TaskInfo ChronosFramework::taskFor(const Entry& entry, const Run& run, const v1::Offer& offer,
                                       const api::Resources& resources) const {
  const Job& job = entry.job;
  v1::TaskInfo task;
  task.set_name(fmt::format("ChronosTask:{}", job.name));
  task.mutable_task_id()->set_value(run.taskId);
  *task.mutable_agent_id() = offer.agent_id();
  *task.mutable_resources() = resources.toProto();
  if (offer.has_allocation_info()) {
    for (auto& resource : *task.mutable_resources()) {
      *resource.mutable_allocation_info() = offer.allocation_info();
    }
  }
  auto* command = task.mutable_command();
  command->set_shell(job.shell);
  command->set_value(job.command);
  if (!job.shell) {
    if (!job.container) command->add_arguments(job.command);
    for (const auto& argument : job.arguments) command->add_arguments(argument);
  }
  if (!job.runAsUser.empty()) command->set_user(job.runAsUser);
  auto* environment = command->mutable_environment();
  auto add = [environment](std::string name, std::string value) {
    auto* variable = environment->add_variables();
    variable->set_name(std::move(name));
    variable->set_type(v1::Environment::Variable::VALUE);
    variable->set_value(std::move(value));
  };
  add("CHRONOS_JOB_OWNER", job.owner);
  add("CHRONOS_JOB_NAME", job.name);
  add("HOST", offer.hostname());
  add("CHRONOS_RESOURCE_MEM", fmt::format("{}", job.mem));
  add("CHRONOS_RESOURCE_CPU", fmt::format("{}", job.cpus));
  add("CHRONOS_RESOURCE_DISK", fmt::format("{}", job.disk));
  add("CHRONOS_JOB_RUN_TIME", formatMillis(run.due));
  add("CHRONOS_JOB_RUN_ATTEMPT", std::to_string(run.attempt));
  for (const auto& variable : job.environmentVariables) add(variable.name, variable.value);
  for (const auto& uri : job.uris) command->add_uris()->set_value(uri);
  for (const auto& fetch : job.fetch) {
    auto* uri = command->add_uris();
    uri->set_value(fetch.uri);
    uri->set_executable(fetch.executable);
    uri->set_extract(fetch.extract);
    uri->set_cache(fetch.cache);
    if (!fetch.outputFile.empty()) uri->set_output_file(fetch.outputFile);
  }
  if (job.container) {
    auto* container = task.mutable_container();
    container->set_type(job.container->type == "MESOS" ? v1::ContainerInfo::MESOS
                                                       : v1::ContainerInfo::DOCKER);
    for (const auto& volume : job.container->volumes) {
      auto* proto = container->add_volumes();
      proto->set_container_path(volume.containerPath);
      if (!volume.hostPath.empty()) proto->set_host_path(volume.hostPath);
      proto->set_mode(volume.mode == "RO" ? v1::Volume::RO : v1::Volume::RW);
    }
    if (job.container->type == "DOCKER") {
      auto* docker = container->mutable_docker();
      docker->set_image(job.container->image);
      docker->set_force_pull_image(job.container->forcePullImage);
      const std::string& network = job.container->network;
      docker->set_network(network == "BRIDGE" ? v1::ContainerInfo::DockerInfo::BRIDGE
                          : network == "NONE" ? v1::ContainerInfo::DockerInfo::NONE
                          : network == "USER" ? v1::ContainerInfo::DockerInfo::USER
                                              : v1::ContainerInfo::DockerInfo::HOST);
    }
  }
  return task;
}

void ChronosFramework::rescind(const v1::OfferID&) {}

void ChronosFramework::update(const v1::TaskStatus& status) {
  auto acknowledge = [this, status] {
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
      entry.queue.push_front(Pending{lost.due, lost.attempt, 0});
    }
    persist(entry.job.name);
    wantOffers();
    return acknowledge();
  }
  run->second.recovering = false;
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
  if (success) {
    ++job.successCount;
    job.lastSuccess = formatMillis(now);
    job.errorsSinceLastSuccess = 0;
    entry.lastSuccessAt = now;
    if (run.startedAt > 0) {
      entry.durations.push_back(static_cast<double>(now - run.startedAt) / 1000.0);
      if (entry.durations.size() > 1000) entry.durations.erase(entry.durations.begin());
    }
    context_.logger().info("job '{}': task '{}' succeeded", job.name, taskId);
  } else {
    ++job.errorCount;
    ++job.errorsSinceLastSuccess;
    job.lastError = formatMillis(now);
    context_.logger().info("job '{}': task '{}' ended {} ({})", job.name, taskId,
                           v1::TaskState_Name(status.state()), status.message());
    if (!run.killed && run.attempt < job.retries) {
      entry.queue.push_front(Pending{run.due, run.attempt + 1,
                                     now + static_cast<Millis>(options_.failureRetry.count())});
    }
  }
  const std::string name = job.name;
  persist(name, [this, name, status, success](api::Status written) {
    if (!written || driver_ == nullptr) return;
    if (status.has_uuid()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
    if (success) triggerDependents(name);
  });
  if (jobs_.count(name) > 0) arm(name);
}

void ChronosFramework::message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) {}

void ChronosFramework::failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
                               std::optional<int>) {}

void ChronosFramework::error(std::string_view message) {
  context_.logger().error("the master removed the framework: {}", message);
}

void ChronosFramework::disconnected() { context_.logger().warning("disconnected from the master"); }

// ---- The REST API ----------------------------------------------------------------------------

void ChronosFramework::handle(const HttpRequest& request, HttpResponder respond) {
  std::string_view path = request.path;
  for (std::string_view prefix : {"/v1/scheduler", "/scheduler"}) {
    if (path.starts_with(prefix)) {
      path.remove_prefix(prefix.size());
      break;
    }
  }
  while (path.starts_with("/")) path.remove_prefix(1);
  while (path.ends_with("/")) path.remove_suffix(1);
  const std::string& method = request.method;
  auto after = [&](std::string_view head) -> std::optional<std::string> {
    if (!path.starts_with(head) || path.size() <= head.size()) return std::nullopt;
    return std::string(path.substr(head.size()));
  };
  if (path == "leader" && method == "GET") {
    // Without --zk the one host leads: its advertised address, else the one asked.
    std::string leader;
    if (host_ != nullptr) leader = host_->leaderAddress().value_or(host_->advertisedAddress());
    if (leader.empty()) leader = request.header("host").value_or("");
    return respond(HttpResponse::json(200, R"({"leader":)" + api::jsonQuote(leader) + "}"));
  }
  if (!loaded_) return respond(HttpResponse::error(503, "the jobs are not loaded yet"));
  if ((path == "iso8601" || path == "dependency") && (method == "POST" || method == "PUT")) {
    return upsert(request, path == "iso8601" ? JobKind::kScheduled : JobKind::kDependent,
                  std::move(respond));
  }
  if (path == "jobs" && method == "GET") return respond(HttpResponse::json(200, jobsJson(request)));
  if (path == "jobs/search" && method == "GET") {
    return respond(HttpResponse::json(200, jobsJson(request)));
  }
  if (path == "graph/dot" && method == "GET") return respond(HttpResponse::text(200, dot()));
  if (path == "graph/csv" && method == "GET") return respond(HttpResponse::text(200, csv()));
  if (auto name = after("job/stat/"); name && method == "GET") {
    auto it = jobs_.find(*name);
    if (it == jobs_.end() || it->second->deleted) {
      return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", *name)));
    }
    return respond(HttpResponse::json(200, statJson(*it->second)));
  }
  if (auto which = after("stats/"); which && method == "GET") {
    std::string body = "[";
    for (const auto& [name, entry] : jobs_) {
      auto value = statistic(entry->durations, *which);
      if (!value) continue;
      if (body.size() > 1) body.push_back(',');
      body += R"({"jobNameLabel":)" + api::jsonQuote(name) + fmt::format(R"(,"time":{}}})", *value);
    }
    if (*which != "mean" && *which != "median" && !which->ends_with("thPercentile")) {
      return respond(HttpResponse::error(400, fmt::format("unknown statistic '{}'", *which)));
    }
    return respond(HttpResponse::json(200, body + "]"));
  }
  if (auto name = after("job/"); name && name->find('/') == std::string::npos) {
    if (method == "PUT" || method == "POST") return runNow(*name, std::move(respond));
    if (method == "DELETE") return remove(*name, std::move(respond));
    if (method == "GET") {
      auto it = jobs_.find(*name);
      if (it == jobs_.end() || it->second->deleted) {
        return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", *name)));
      }
      return respond(HttpResponse::json(200, toJson(it->second->job)));
    }
  }
  if (auto name = after("task/kill/"); name && method == "DELETE") {
    return kill(*name, std::move(respond));
  }
  respond(HttpResponse::error(404, fmt::format("no route {} {}", method, request.path)));
}

void ChronosFramework::upsert(const HttpRequest& request, JobKind kind, HttpResponder respond) {
  auto job = parseJob(request.body);
  if (!job) return respond(HttpResponse::error(400, job.status().message()));
  if (auto valid = validateJob(*job, kind); !valid) {
    return respond(HttpResponse::error(400, valid.message()));
  }
  auto existing = jobs_.find(job->name);
  if (existing != jobs_.end() && existing->second->deleted) {
    return respond(HttpResponse::error(409, fmt::format("job '{}' is being deleted", job->name)));
  }
  Entry scratch;
  if (auto prepared = prepareSchedule(*job, scratch, false); !prepared) {
    return respond(HttpResponse::error(400, prepared.message()));
  }
  const std::string name = job->name;
  const bool added = !graph_.contains(name);
  if (added) (void)graph_.addJob(name);
  if (auto linked = graph_.setParents(name, job->parents); !linked) {
    if (added) (void)graph_.removeJob(name);
    return respond(HttpResponse::error(400, linked.message()));
  }
  if (existing == jobs_.end()) {
    auto entry = std::make_unique<Entry>();
    entry->job = std::move(*job);
    entry->schedule = std::move(scratch.schedule);
    entry->cronNext = scratch.cronNext;
    jobs_[name] = std::move(entry);
  } else {
    // A replaced job keeps its counters and its runs.
    Entry& entry = *existing->second;
    Job& replaced = *job;
    replaced.successCount = entry.job.successCount;
    replaced.errorCount = entry.job.errorCount;
    replaced.lastSuccess = entry.job.lastSuccess;
    replaced.lastError = entry.job.lastError;
    replaced.errorsSinceLastSuccess = entry.job.errorsSinceLastSuccess;
    entry.job = std::move(replaced);
    entry.schedule = std::move(scratch.schedule);
    entry.cronNext = scratch.cronNext;
  }
  persist(name, [respond](api::Status written) {
    if (!written) {
      return respond(
          HttpResponse::error(503, fmt::format("cannot store the job: {}", written.message())));
    }
    respond(noContent());
  });
  arm(name);
}

void ChronosFramework::runNow(const std::string& name, HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  enqueue(*it->second, Pending{nowMillis(), 0, 0});
  persist(name, [respond](api::Status written) {
    if (!written) return respond(HttpResponse::error(503, written.message()));
    respond(noContent());
  });
}

void ChronosFramework::kill(const std::string& name, HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  Entry& entry = *it->second;
  entry.queue.clear();
  for (auto& [taskId, run] : entry.runs) {
    run.killed = true;
    if (driver_ == nullptr) continue;
    std::optional<v1::AgentID> agent;
    if (!run.agentId.empty()) {
      agent.emplace();
      agent->set_value(run.agentId);
    }
    v1::TaskID id;
    id.set_value(taskId);
    driver_->kill(id, agent, nullptr);
  }
  persist(name, [respond](api::Status written) {
    if (!written) return respond(HttpResponse::error(503, written.message()));
    respond(noContent());
  });
  wantOffers();
}

void ChronosFramework::remove(const std::string& name, HttpResponder respond) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) {
    return respond(HttpResponse::error(404, fmt::format("job '{}' does not exist", name)));
  }
  drop(name);
  wantOffers();
  respond(noContent());
}

// Deletes a job: kills its runs, forgets it and removes its key. As Chronos does, its children
// lose it as a parent, and a child left without parents is deleted too.
void ChronosFramework::drop(const std::string& name) {
  auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second->deleted) return;
  Entry& entry = *it->second;
  for (auto& [taskId, run] : entry.runs) {
    tasks_.erase(taskId);
    if (driver_ == nullptr) continue;
    std::optional<v1::AgentID> agent;
    if (!run.agentId.empty()) {
      agent.emplace();
      agent->set_value(run.agentId);
    }
    v1::TaskID id;
    id.set_value(taskId);
    driver_->kill(id, agent, nullptr);
  }
  if (entry.timer) entry.timer->cancel();
  if (entry.retryTimer) entry.retryTimer->cancel();
  entry.deleted = true;
  entry.queue.clear();
  std::vector<std::string> children;
  if (auto removed = graph_.removeJob(name); removed) children = std::move(removed).value();
  if (!entry.writing) {
    // Else the write in flight removes the key when it completes (write()).
    const uint64_t version = entry.version;
    jobs_.erase(it);
    if (version > 0) {
      context_.state().remove(
          jobKey(name), version, context_.executor(), [this, name](api::Status removed) {
            if (!removed) {
              context_.logger().error("cannot remove job '{}': {}", name, removed.message());
            }
          });
    }
  }
  context_.logger().info("job '{}' deleted", name);
  for (const auto& child : children) {
    auto found = jobs_.find(child);
    if (found == jobs_.end() || found->second->deleted) continue;
    auto& parents = found->second->job.parents;
    parents.erase(std::remove(parents.begin(), parents.end(), name), parents.end());
    if (parents.empty()) {
      drop(child);
    } else {
      persist(child);
    }
  }
}

std::string ChronosFramework::jobsJson(const HttpRequest& request) const {
  const auto name = request.queryParam("name");
  const auto command = request.queryParam("command");
  const auto any = request.queryParam("any");
  const auto limit = orElse(api::parseInt(request.queryParam("limit").value_or("-1")), -1);
  const auto offset = orElse(api::parseInt(request.queryParam("offset").value_or("0")), 0);
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  auto contains = [&](const std::string& haystack, const std::optional<std::string>& needle) {
    return !needle || lower(haystack).find(lower(*needle)) != std::string::npos;
  };
  std::string body = "[";
  int64_t index = 0;
  int64_t written = 0;
  for (const auto& [jobName, entry] : jobs_) {
    if (entry->deleted) continue;
    const Job& job = entry->job;
    if (!contains(job.name, name) || !contains(job.command, command)) continue;
    if (any && !contains(job.name, any) && !contains(job.command, any) &&
        !contains(job.description, any) && !contains(job.owner, any)) {
      continue;
    }
    if (index++ < offset) continue;
    if (limit >= 0 && written >= limit) break;
    if (written++ > 0) body.push_back(',');
    body += toJson(job);
  }
  return body + "]";
}

std::string ChronosFramework::statJson(const Entry& entry) const {
  std::string histogram;
  for (std::string_view which :
       {"75thPercentile", "95thPercentile", "98thPercentile", "99thPercentile", "median", "mean"}) {
    if (!histogram.empty()) histogram.push_back(',');
    histogram += fmt::format(R"("{}":{})", which, statistic(entry.durations, which).value_or(0.0));
  }
  return fmt::format(R"({{"histogram":{{{},"count":{}}},"taskStatHistory":[]}})", histogram,
                     entry.durations.size());
}

std::string ChronosFramework::dot() const { return graph_.toDot(); }

std::string ChronosFramework::csv() const {
  return graph_.toCsv([this](const std::string& name) {
    auto it = jobs_.find(name);
    if (it == jobs_.end()) return std::make_pair(LastStatus::kFresh, JobState::kIdle);
    const Entry& entry = *it->second;
    auto parsed = [](const std::string& text) -> std::optional<TimePoint> {
      if (text.empty()) return std::nullopt;
      auto time = parseDateTime(text, "");
      if (!time) return std::nullopt;
      return *time;
    };
    const JobState state = !entry.runs.empty()    ? JobState::kRunning
                           : !entry.queue.empty() ? JobState::kQueued
                                                  : JobState::kIdle;
    return std::make_pair(lastStatusOf(parsed(entry.job.lastSuccess), parsed(entry.job.lastError)),
                          state);
  });
}

}  // namespace tessera::modules::chronos

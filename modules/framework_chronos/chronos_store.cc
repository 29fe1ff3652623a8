// The Chronos framework's state store: loading the jobs at start, and one compare-and-set write
// of a job's record at a time.
#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <charconv>
#include <iterator>

#include "modules/framework_chronos/chronos_framework.h"
#include "modules/framework_chronos/chronos_util.h"
#include "tessera/api/json.h"

namespace tessera::modules::chronos {

namespace {

using detail::jobKey;
using detail::kJobsKey;
using Poco::JSON::Array;
using Poco::JSON::Object;

// How long a schedule point's change may wait for the launch's write (defer()).
constexpr std::chrono::seconds kDeferredWrite{2};

}  // namespace

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
        entry->queue.push_back(Pending{
            item->getValue<int64_t>("due"), item->getValue<int64_t>("attempt"),
            item->getValue<int64_t>("notBefore"), item->optValue<std::string>("arguments", "")});
      }
    }
    if (auto durations = object->getArray("chronosDurations")) {
      for (size_t i = 0; i < durations->size(); ++i) {
        entry->addDuration(durations->getElement<double>(static_cast<unsigned>(i)));
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
        run.arguments = item->optValue<std::string>("arguments", "");
        run.startedAt = item->optValue<int64_t>("startedAt", 0);
        run.awaitingCallback = item->optValue<bool>("awaitingCallback", false);
        // A task that ended and waits for its async outcome is not asked about: it is gone.
        run.recovering = !run.awaitingCallback;
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
  entry->setJob(std::move(*job));
  const std::string name = entry->job.name;
  jobs_[name] = std::move(entry);
  return api::Status::ok();
}

// Written at every launch and end of a run (twice per run), so built from text kept per job:
// the job's spec (openSpecJson(), made again only when the job is replaced) and its durations;
// what changes per run is appended with to_chars rather than fmt (bench/chronos_bench: building
// the whole record each time was a third of a run's cost).
std::string ChronosFramework::record(Entry& entry) const {
  if (entry.specJson.empty()) entry.specJson = openSpecJson(entry.job);
  std::string json;
  json.reserve(entry.specJson.size() + entry.durationsJson.size() + 512);
  json = entry.specJson;
  appendRunStateMembers(json, entry.job);
  auto number = [&json](int64_t value) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    json.append(digits, end);
  };
  if (entry.cronNext) {
    json += R"(,"chronosCronNext":)";
    number(entry.cronNext->time_since_epoch().count());
  }
  if (entry.schedule) {
    json += R"(,"chronosSchedule":)";
    api::appendJsonString(json, entry.schedule->toStateString());
  }
  json += R"(,"chronosLastStart":)";
  number(entry.lastStart);
  json += R"(,"chronosLastSuccessAt":)";
  number(entry.lastSuccessAt);
  json += R"(,"chronosQueue":[)";
  bool first = true;
  for (const auto& pending : entry.queue) {
    if (!first) json.push_back(',');
    first = false;
    json += R"({"due":)";
    number(pending.due);
    json += R"(,"attempt":)";
    number(pending.attempt);
    json += R"(,"notBefore":)";
    number(pending.notBefore);
    if (!pending.arguments.empty()) {
      json += R"(,"arguments":)";
      api::appendJsonString(json, pending.arguments);
    }
    json.push_back('}');
  }
  json += R"(],"chronosRuns":[)";
  first = true;
  for (const auto& [taskId, run] : entry.runs) {
    if (!first) json.push_back(',');
    first = false;
    json += R"({"taskId":)";
    api::appendJsonString(json, taskId);
    json += R"(,"due":)";
    number(run.due);
    json += R"(,"attempt":)";
    number(run.attempt);
    json += R"(,"agentId":)";
    api::appendJsonString(json, run.agentId);
    json += run.killed ? R"(,"killed":true)" : R"(,"killed":false)";
    json += R"(,"startedAt":)";
    number(run.startedAt);
    if (!run.arguments.empty()) {
      json += R"(,"arguments":)";
      api::appendJsonString(json, run.arguments);
    }
    if (run.awaitingCallback) json += R"(,"awaitingCallback":true)";
    json.push_back('}');
  }
  // The run statistics (job/stat, stats/...), so that they survive a failover.
  json += R"(],"chronosDurations":[)";
  json += entry.durationsJson;
  json += "]}";
  return json;
}

void ChronosFramework::persist(const std::string& name, std::function<void(api::Status)> done) {
  auto it = jobs_.find(name);
  if (it == jobs_.end()) {
    if (done) done(api::Status(api::StatusCode::kNotFound, fmt::format("job '{}' is gone", name)));
    return;
  }
  persist(*it->second, std::move(done));
}

void ChronosFramework::persist(Entry& entry, std::function<void(api::Status)> done) {
  if (done) entry.next.push_back(std::move(done));
  if (entry.writing) {
    entry.dirty = true;
    return;
  }
  write(entry);
}

// A schedule point's change (the schedule advanced, the run queued) is not written at once: the
// launch's write, which must happen before the run's task goes out, carries it, so a point costs
// one record write instead of two. A run still waiting after kDeferredWrite is written on its
// own. Losing the change in a failover is safe: the new leader finds the point not passed and
// runs it then, once, if it is within epsilon.
void ChronosFramework::defer(Entry& entry) {
  if (!entry.deferred) {
    entry.deferred = true;
    deferred_.push_back(entry.job.name);
  }
  if (flushTimer_ == nullptr && !stopped_) {
    flushTimer_ = context_.executor().schedule(kDeferredWrite, [this] { flushDeferred(); });
  }
}

void ChronosFramework::flushDeferred() {
  flushTimer_.reset();
  if (stopped_) return;
  auto names = std::move(deferred_);
  deferred_.clear();
  for (const auto& name : names) {
    auto it = jobs_.find(name);
    if (it != jobs_.end() && it->second->deferred && !it->second->deleted) persist(name);
  }
}

// One write of a job's record at a time (compare-and-set on its version); changes made while
// one is in flight go out together in the next.
void ChronosFramework::write(Entry& entry) {
  const std::string& name = entry.job.name;
  entry.writing = true;
  entry.dirty = false;
  entry.deferred = false;  // this write carries the deferred change
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
      write(entry);
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

}  // namespace tessera::modules::chronos

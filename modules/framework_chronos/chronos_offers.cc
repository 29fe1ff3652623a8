// The Chronos framework's offer matching: which waiting runs an offer takes, and their tasks.
#include <Poco/Exception.h>
#include <Poco/RegularExpression.h>

#include <algorithm>

#include "modules/framework_chronos/chronos_framework.h"
#include "modules/framework_chronos/chronos_util.h"
#include "tessera/api/resources.h"

namespace tessera::modules::chronos {

namespace {

using detail::formatMillis;
using detail::toSeconds;

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

// The resources a run of `job` takes: disk only when the offer has disk, reserved for `role` or
// unreserved; nullopt when they do not parse.
std::optional<api::Resources> parseRunResources(const Job& job, bool withDisk,
                                                const std::string* role) {
  std::string text = fmt::format("cpus:{};mem:{}", job.cpus, job.mem);
  if (withDisk) text += fmt::format(";disk:{}", job.disk);
  auto parsed = role != nullptr ? api::Resources::parse(text, *role) : api::Resources::parse(text);
  if (!parsed) return std::nullopt;
  return std::move(parsed).value();
}

}  // namespace

// What a run of the entry's job takes from an offer holding `available`: resources reserved
// for the role when they fit, else unreserved ones; disk only when the offer has disk. Parsed
// once per job (entry.runResources), not per run.
const api::Resources* ChronosFramework::resourcesFor(Entry& entry,
                                                     const api::Resources& available) const {
  const bool withDisk = available.disk() > 0 && entry.job.disk > 0;
  auto parsed = [&](bool reserved) -> const std::optional<api::Resources>& {
    auto& cached = entry.runResources[(withDisk ? 2 : 0) + (reserved ? 1 : 0)];
    if (!cached.parsed) {
      cached.resources =
          parseRunResources(entry.job, withDisk, reserved ? &options_.role : nullptr);
      cached.parsed = true;
    }
    return cached.resources;
  };
  if (options_.role != "*") {
    if (const auto& reserved = parsed(true); reserved && available.contains(*reserved)) {
      return &*reserved;
    }
  }
  const auto& plain = parsed(false);
  if (plain && available.contains(*plain)) return &*plain;
  return nullptr;
}

void ChronosFramework::offers(std::vector<v1::Offer> offers) {
  const Millis now = nowMillis();
  // Who waits: high-priority jobs first, then by due time.
  std::vector<Entry*> candidates;
  for (const auto& [name, entry] : jobs_) {
    if (entry->deleted || entry->queue.empty()) continue;
    if (entry->queue.front().notBefore > now) continue;
    candidates.push_back(entry.get());
  }
  std::sort(candidates.begin(), candidates.end(), [](const Entry* x, const Entry* y) {
    if (x->job.highPriority != y->job.highPriority) return x->job.highPriority;
    return x->queue.front().due < y->queue.front().due;
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
void ChronosFramework::launchFrom(const v1::Offer& offer, std::vector<Entry*>& candidates) {
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
  std::vector<Entry*> rest;
  for (Entry* candidate : candidates) {
    Entry& entry = *candidate;
    const Job& job = entry.job;
    const api::Resources* needed = resourcesFor(entry, *available);
    if (needed == nullptr || !satisfies(job, offer)) {
      rest.push_back(candidate);
      continue;
    }
    *available -= *needed;
    Pending pending = entry.queue.front();
    entry.queue.pop_front();
    Run run;
    run.due = pending.due;
    run.attempt = pending.attempt;
    run.arguments = pending.arguments;
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
    // Runs wait that this offer cannot hold: its resources come back soon (kFullRefuseSeconds),
    // as the tasks running now end, rather than after Mesos's default 5 s.
    v1::Filters filters;
    filters.set_refuse_seconds(kFullRefuseSeconds);
    driver_->decline({offer.id()}, filters, nullptr);
    return;
  }
  auto remaining = std::make_shared<size_t>(launching.size());
  auto written = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  // Shared by every run's callback (a copy in each was a large part of a launch's cost).
  auto shared = std::make_shared<const v1::Offer>(offer);
  for (const auto& [name, taskId] : launching) {
    // Init-captures: clang 14 (the ASan build) cannot capture a structured binding itself.
    persist(name, [this, name = name, taskId = taskId, remaining, written, shared,
                   taken](api::Status status) {
      const v1::Offer& offer = *shared;
      if (status) {
        written->emplace_back(name, taskId);
      } else if (auto it = jobs_.find(name); it != jobs_.end()) {
        // Not recorded, so not launched: the run waits for another offer.
        auto run = it->second->runs.find(taskId);
        if (run != it->second->runs.end()) {
          it->second->queue.push_front(
              Pending{run->second.due, run->second.attempt, 0, run->second.arguments});
          it->second->runs.erase(run);
        }
        tasks_.erase(taskId);
      }
      if (--*remaining > 0 || driver_ == nullptr) return;
      // One LAUNCH operation for all the offer's runs.
      v1::Offer::Operation operation;
      operation.set_type(v1::Offer::Operation::LAUNCH);
      auto* launch = operation.mutable_launch();
      for (const auto& [job, task] : *written) {
        auto it = jobs_.find(job);
        if (it == jobs_.end()) continue;
        auto run = it->second->runs.find(task);
        // Gone, or killed while it was being written: not launched.
        if (run == it->second->runs.end() || run->second.killed) continue;
        *launch->add_task_infos() = taskFor(*it->second, run->second, offer, taken->at(task));
        context_.logger().info("job '{}': launching task '{}'", job, task);
      }
      if (launch->task_infos().empty()) {
        driver_->decline({offer.id()}, std::nullopt, nullptr);
        return;
      }
      std::vector<v1::Offer::Operation> operations;
      operations.push_back(std::move(operation));
      // No refuse filter on what the launch leaves of the offer: without one (Mesos's default
      // is 5 s) a run queued while this launch was written waited out the filter, as nothing
      // revives offers that were never suppressed (#23). When nothing waits, checkOffers() has
      // suppressed offers by the time the rest comes back, or it is declined as idle.
      v1::Filters filters;
      filters.set_refuse_seconds(0);
      driver_->accept({offer.id()}, std::move(operations), filters,
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

v1::TaskInfo ChronosFramework::taskFor(Entry& entry, const Run& run, const v1::Offer& offer,
                                       const api::Resources& resources) const {
  const Job& job = entry.job;
  if (entry.taskName.empty()) {
    entry.taskName = "ChronosTask:" + job.name;
    entry.memText = fmt::format("{}", job.mem);
    entry.cpusText = fmt::format("{}", job.cpus);
    entry.diskText = fmt::format("{}", job.disk);
  }
  v1::TaskInfo task;
  task.set_name(entry.taskName);
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
  // A run's own arguments (PUT job/{name}?arguments=) follow the job's: appended to a shell
  // command's text, or split on spaces into more arguments.
  command->set_value(job.shell && !run.arguments.empty() ? job.command + " " + run.arguments
                                                         : job.command);
  if (!job.shell) {
    if (!job.container) command->add_arguments(job.command);
    for (const auto& argument : job.arguments) command->add_arguments(argument);
    size_t begin = 0;
    while (begin < run.arguments.size()) {
      size_t end = run.arguments.find(' ', begin);
      if (end == std::string::npos) end = run.arguments.size();
      if (end > begin) command->add_arguments(run.arguments.substr(begin, end - begin));
      begin = end + 1;
    }
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
  add("CHRONOS_RESOURCE_MEM", entry.memText);
  add("CHRONOS_RESOURCE_CPU", entry.cpusText);
  add("CHRONOS_RESOURCE_DISK", entry.diskText);
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

}  // namespace tessera::modules::chronos

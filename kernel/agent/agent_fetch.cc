// The fetcher's part of launching a task: its URIs are fetched into the sandbox off the strand
// (fetcher.h) before a containerizer is chosen; a failed fetch fails the task, a kill meanwhile
// cancels the fetch and ends the task TASK_KILLED without launching it.

#include "kernel/agent/agent_core.h"

namespace tessera::kernel::agent {

api::Status AgentCore::startFetcher() {
  FetcherOptions options;
  options.cacheDir =
      options_.fetcherCacheDir.empty() ? workDir_ / "fetch" : fs::path(options_.fetcherCacheDir);
  options.cacheSize = options_.fetcherCacheSize;
  options.stallTimeout = options_.fetcherStallTimeout;
  options.maxParallel = options_.fetcherMaxParallel;
  options.linkCached = options_.fetcherLinkCached;
  auto fetcher = Fetcher::create(std::move(options));
  if (!fetcher) return fetcher.status().withContext("flag '--fetcher_cache_dir'");
  fetcher_ = std::move(fetcher).value();
  return api::Status::ok();
}

bool AgentCore::fetchUris(const TaskPtr& task,
                          const std::shared_ptr<api::ContainerConfig>& config) {
  const v1::TaskInfo& info = task->record.info();
  std::vector<v1::CommandInfo::URI> uris(info.command().uris().begin(),
                                         info.command().uris().end());
  if (info.has_executor()) {
    const auto& more = info.executor().command().uris();
    uris.insert(uris.end(), more.begin(), more.end());
  }
  if (uris.empty() || !fetcher_) return false;
  log_->info("fetching {} URI(s) for task '{}' of framework '{}'", uris.size(), task->taskId,
             task->frameworkId);
  // The answer comes on a fetcher thread: only the strand (shared) is held there, so the core
  // is never destroyed on a thread its fetcher would join.
  std::weak_ptr<AgentCore> weak = weak_from_this();
  std::shared_ptr<runtime::StrandExecutor> strand = strand_;
  task->fetch = fetcher_->fetch(
      std::move(uris), task->sandbox,
      [weak, strand, task, config](api::Status status) {
        strand->post([weak, task, config, status] {
          auto self = weak.lock();
          if (!self || self->stopped_) return;
          self->onFetched(task, config, status);
        });
      },
      config->user);
  return true;
}

void AgentCore::onFetched(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                          const api::Status& status) {
  task->fetch.reset();
  if (task->killRequested()) {
    chooseContainerizer(task, config, 0);  // reports the kill (or forgets the task)
    return;
  }
  if (!status) {
    log_->warn("task '{}' of framework '{}': {}", task->taskId, task->frameworkId,
               status.message());
    task->transition(TaskPhase::kTerminated);
    enqueueUpdate(task, v1::TASK_FAILED, status.message(),
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  enqueueUpdate(task, v1::TASK_STARTING, "", std::nullopt);
  chooseContainerizer(task, config, 0);
}

}  // namespace tessera::kernel::agent

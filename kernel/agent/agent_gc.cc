// Sandbox garbage collection in the agent: which sandboxes are scheduled (a container ended),
// the schedule's checkpoints under "<root>gc/<path, escaped>", the live check that keeps running
// tasks' sandboxes, and the empty parents removed after a run directory.

#include <fmt/format.h>

#include "kernel/agent/agent_core.h"

namespace tessera::kernel::agent {

namespace {

// A sandbox's checkpoint name: a hash of its path, since the path itself, escaped, can be longer
// than a store key may be (the file store's names stop at 240 bytes). The entry holds the path.
std::string gcKeyName(std::string_view path) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits: stable across builds and hosts
  for (unsigned char c : path) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return fmt::format("{:016x}", hash);
}

bool within(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

}  // namespace

void AgentCore::startGc() {
  auto& succeeded = services_.metrics->counter("gc/path_removals_succeeded");
  auto& failed = services_.metrics->counter("gc/path_removals_failed");
  GarbageCollector::Hooks hooks;
  std::weak_ptr<AgentCore> weak = weak_from_this();
  // The collector lives on our strand and dies with us: it may use `this`.
  hooks.live = [this](const std::string& path) { return sandboxLive(path); };
  hooks.removed = [this](const GcEntry& entry, const api::Status& result) {
    onSandboxCollected(entry, result);
  };
  gc_ = std::make_shared<GarbageCollector>(*strand_, options_.gc, options_.workDir,
                                           std::move(hooks), succeeded, failed);
  auto pending = gc_->pendingGauge();
  services_.metrics->gauge(
      "gc/path_removals_pending", nullptr, [pending] { return pending->load(); }, this);
}

api::Status AgentCore::readGc(Recovered& recovered) {
  auto names = syncChildren(root_ + "gc");
  if (!names) return names.status();
  for (const auto& name : *names) {
    const std::string key = root_ + "gc/" + name;
    auto entry = syncGet(key);
    if (!entry) return entry.status();
    if (!entry->has_value()) continue;
    auto parsed = parseGcEntryJson((*entry)->value);
    if (!parsed) {
      log_->warn("dropping checkpoint '{}': {}", key, parsed.status().toString());
      recoveryErrors_->increment();
      continue;
    }
    recovered.gc.push_back(std::move(parsed).value());
  }
  return api::Status::ok();
}

void AgentCore::collectSandbox(const TaskPtr& task) {
  if (stopped_ || !gc_ || task->sandbox.empty()) return;
  const std::string key = root_ + "gc/" + gcKeyName(task->sandbox);
  GcEntry entry = gc_->schedule(task->sandbox, api::nowSeconds());
  auto version = versions_.find(key);
  if (version != versions_.end() && version->second > 0) return;  // checkpointed already
  log_->info("scheduling the sandbox '{}' of task '{}' for removal in {:.0f}s", entry.path,
             task->taskId, entry.removeAt - api::nowSeconds());
  storeSet(key, gcEntryJson(entry));
}

bool AgentCore::sandboxLive(const std::string& path) const {
  for (const auto& [key, task] : tasks_) {
    if (task->phase() == TaskPhase::kTerminated || task->phase() == TaskPhase::kForgotten) {
      continue;
    }
    if (task->sandbox.empty()) continue;
    if (within(task->sandbox, path) || within(path, task->sandbox)) return true;
  }
  return false;
}

void AgentCore::onSandboxCollected(const GcEntry& entry, const api::Status& result) {
  storeRemove(root_ + "gc/" + gcKeyName(entry.path));
  if (!result) {
    log_->warn("sandbox '{}' not removed: {}", entry.path, result.message());
    return;
  }
  log_->info("removed the sandbox '{}'", entry.path);
  // Then its parents while they are empty: runs/, the executor's, executors/ and the
  // framework's directory (rmdir refuses a non-empty one, and sandboxes are only made on this
  // strand), never the agent's frameworks/ itself.
  const fs::path top = sandboxRoot() / info_.id().value() / "frameworks";
  if (!within(entry.path, top.string())) return;
  for (fs::path dir = fs::path(entry.path).parent_path();
       within(dir.string(), top.string()) && dir != top; dir = dir.parent_path()) {
    if (sandboxLive(dir.string())) break;
    std::error_code error;
    if (!fs::remove(dir, error) || error) break;
  }
}

void AgentCore::writeGc(http::JsonWriter& w) const {
  w.key("gc").beginArray();
  if (gc_) {
    for (const auto& entry : gc_->scheduled()) {
      w.beginObject()
          .field("path", entry.path)
          .field("scheduled_at", entry.scheduledAt)
          .field("remove_at", entry.removeAt)
          .endObject();
    }
  }
  w.endArray();
}

}  // namespace tessera::kernel::agent

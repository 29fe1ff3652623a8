// Sandbox garbage collection: the schedule, its timer, the disk watch and the removals.

#include "kernel/agent/gc.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernel/http/json_writer.h"
#include "tessera/api/duration.h"

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

runtime::Duration maxAllowedAge(runtime::Duration delay, double headroom, double usage) {
  const double factor = std::max(0.0, 1.0 - headroom - usage);
  return std::chrono::duration_cast<runtime::Duration>(
      std::chrono::duration<double, std::nano>(static_cast<double>(delay.count()) * factor));
}

api::Result<double> diskUsage(const std::string& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) {
    return api::unavailable("cannot read the disk usage of '{}': {}", path, std::strerror(errno));
  }
  if (info.f_blocks == 0) return 0.0;
  const double used = static_cast<double>(info.f_blocks - info.f_bfree);
  return std::clamp(used / static_cast<double>(info.f_blocks), 0.0, 1.0);
}

std::string gcEntryJson(const GcEntry& entry) {
  http::JsonWriter w;
  w.beginObject()
      .field("path", entry.path)
      .field("scheduled_at", entry.scheduledAt)
      .field("remove_at", entry.removeAt)
      .endObject();
  return w.take();
}

api::Result<GcEntry> parseGcEntryJson(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    GcEntry entry;
    entry.path = object->getValue<std::string>("path");
    entry.scheduledAt = object->get("scheduled_at").convert<double>();
    entry.removeAt = object->get("remove_at").convert<double>();
    if (entry.path.empty() || !fs::path(entry.path).is_absolute()) {
      return api::invalidArgument("bad gc checkpoint: path '{}' is not absolute", entry.path);
    }
    return entry;
  } catch (const std::exception& e) {
    return api::invalidArgument("bad gc checkpoint: {}", e.what());
  }
}

GarbageCollector::GarbageCollector(runtime::StrandExecutor& strand, GcOptions options,
                                   std::string usagePath, Hooks hooks, api::Counter& succeeded,
                                   api::Counter& failed)
    : strand_(strand),
      options_(options),
      usagePath_(std::move(usagePath)),
      hooks_(std::move(hooks)),
      succeeded_(succeeded),
      failed_(failed) {}

double GarbageCollector::now() const { return hooks_.now ? hooks_.now() : api::nowSeconds(); }

void GarbageCollector::start() {
  if (stopped_ || diskTimer_) return;
  std::weak_ptr<GarbageCollector> weak = weak_from_this();
  diskTimer_ = strand_.schedule(options_.diskWatchInterval, [weak] {
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    self->diskTimer_.reset();
    self->checkDiskUsage();
    self->start();  // the next check
  });
}

void GarbageCollector::stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
  timer_.reset();
  timerAt_.reset();
  if (diskTimer_) diskTimer_->cancel();
  diskTimer_.reset();
}

GcEntry GarbageCollector::schedule(const std::string& path, double endedAt) {
  auto it = entries_.find(path);
  if (it != entries_.end()) return it->second;
  GcEntry entry{path, endedAt, endedAt + std::chrono::duration<double>(options_.delay).count()};
  restore(entry);
  return entry;
}

void GarbageCollector::restore(const GcEntry& entry) {
  auto [it, added] = entries_.emplace(entry.path, entry);
  if (!added && entry.removeAt < it->second.removeAt) it->second = entry;
  refresh();
  arm();
}

bool GarbageCollector::unschedule(const std::string& path) {
  if (removing_.count(path)) return false;
  if (entries_.erase(path) == 0) return false;
  refresh();
  arm();
  return true;
}

void GarbageCollector::prune(runtime::Duration maxAge) {
  const double limit = now() - std::chrono::duration<double>(maxAge).count();
  std::vector<std::string> due;
  for (const auto& [path, entry] : entries_) {
    if (!removing_.count(path) && entry.scheduledAt <= limit) due.push_back(path);
  }
  for (const auto& path : due) remove(path);
  arm();
}

void GarbageCollector::checkDiskUsage() {
  if (stopped_ || checking_) return;
  checking_ = true;
  auto result = std::make_shared<api::Result<double>>(0.0);
  auto usage = hooks_.usage;
  auto path = usagePath_;
  std::weak_ptr<GarbageCollector> weak = weak_from_this();
  auto queued = strand_.runBlocking(
      [result, usage, path] { *result = usage ? usage() : diskUsage(path); },
      [weak, result] {
        auto self = weak.lock();
        if (!self) return;
        self->checking_ = false;
        if (self->stopped_) return;
        if (!*result) return;  // an unreadable disk changes nothing: the delay still applies
        self->prune(maxAllowedAge(self->options_.delay, self->options_.diskHeadroom, **result));
      });
  if (!queued) checking_ = false;
}

std::vector<GcEntry> GarbageCollector::scheduled() const {
  std::vector<GcEntry> out;
  for (const auto& [path, entry] : entries_) out.push_back(entry);
  std::sort(out.begin(), out.end(),
            [](const GcEntry& a, const GcEntry& b) { return a.removeAt < b.removeAt; });
  return out;
}

void GarbageCollector::arm() {
  if (stopped_) return;
  std::optional<double> soonest;
  for (const auto& [path, entry] : entries_) {
    if (removing_.count(path)) continue;
    if (!soonest || entry.removeAt < *soonest) soonest = entry.removeAt;
  }
  if (soonest == timerAt_) return;
  if (timer_) timer_->cancel();
  timer_.reset();
  timerAt_ = soonest;
  if (!soonest) return;
  // After a full blocking pool, due paths are tried again a second later, not in a busy loop.
  const double wait = std::max(backoff_ ? 1.0 : 0.0, *soonest - now());
  backoff_ = false;
  std::weak_ptr<GarbageCollector> weak = weak_from_this();
  timer_ = strand_.schedule(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(wait)),
      [weak] {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        self->timer_.reset();
        self->timerAt_.reset();
        self->onTimer();
      });
}

void GarbageCollector::onTimer() {
  const double current = now();
  std::vector<std::string> due;
  for (const auto& [path, entry] : entries_) {
    if (!removing_.count(path) && entry.removeAt <= current) due.push_back(path);
  }
  for (const auto& path : due) remove(path);
  arm();
}

void GarbageCollector::remove(const std::string& path) {
  if (hooks_.live(path)) {
    // A live sandbox is never removed: it is scheduled again when its container ends.
    auto it = entries_.find(path);
    GcEntry entry = it->second;
    entries_.erase(it);
    refresh();
    if (hooks_.removed) {
      hooks_.removed(entry, api::failedPrecondition("'{}' holds a live sandbox", path));
    }
    return;
  }
  removing_.insert(path);
  auto result = std::make_shared<api::Status>();
  std::weak_ptr<GarbageCollector> weak = weak_from_this();
  auto queued = strand_.runBlocking(
      [path, result] {
        std::error_code error;
        fs::remove_all(path, error);
        if (error) {
          *result = api::unavailable("cannot remove '{}': {}", path, error.message());
        }
      },
      [weak, path, result] {
        if (auto self = weak.lock()) self->onRemoved(path, *result);
      });
  if (!queued) {
    // The pool is full: try again a little later.
    removing_.erase(path);
    backoff_ = true;
  }
}

void GarbageCollector::onRemoved(const std::string& path, const api::Status& result) {
  removing_.erase(path);
  auto it = entries_.find(path);
  if (it == entries_.end()) return;
  GcEntry entry = it->second;
  entries_.erase(it);
  refresh();
  if (result) {
    succeeded_.increment();
  } else {
    failed_.increment();
  }
  if (!stopped_ && hooks_.removed) hooks_.removed(entry, result);
  arm();
}

}  // namespace tessera::kernel::agent

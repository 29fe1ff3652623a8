#include "kernel/net/module_stream.h"

#include <algorithm>
#include <atomic>
#include <utility>

namespace tessera::kernel::net {

// A module's api::HttpStreamWriter over the kernel's HttpStream: the byte path (start, write,
// end, the queue limit) is the HttpStream's own; callbacks are posted to the module's executor
// through ModuleStreams, which stops passing them on once the module's Context is gone.
// Kernel-side closures hold the writer weakly, so the module's last reference still ends it.
class ModuleStreamWriter final : public api::HttpStreamWriter,
                                 public std::enable_shared_from_this<ModuleStreamWriter> {
 public:
  ModuleStreamWriter(std::shared_ptr<ModuleStreams> owner, std::shared_ptr<HttpStream> stream)
      : owner_(std::move(owner)), stream_(std::move(stream)) {}

  ~ModuleStreamWriter() override {
    // Unstarted, the HttpStream's own destructor answers 500 when it goes with us.
    if (started_.load()) stream_->end();
  }

  // Called once, right after construction: the HttpStream's close notification, relayed.
  void watchClose() {
    stream_->onClose([owner = owner_, weak = weak_from_this()] {
      owner->post([weak] {
        if (auto self = weak.lock()) self->closed();
      });
    });
  }

  void start(int status, std::string contentType,
             std::vector<std::pair<std::string, std::string>> headers) override {
    if (started_.exchange(true)) return;
    stream_->start(status, std::move(contentType), std::move(headers));
  }

  void startEvents(std::chrono::milliseconds keepAlive,
                   std::vector<std::pair<std::string, std::string>> headers) override {
    if (started_.exchange(true)) return;
    headers.insert(headers.begin(), {"Cache-Control", "no-cache"});
    stream_->start(200, "text/event-stream", std::move(headers));
    if (keepAlive.count() > 0) scheduleKeepAlive(keepAlive);
  }

  bool write(std::string data) override {
    if (data.empty()) return started_.load() && stream_->open();
    wrote_.store(true);
    return stream_->write(std::move(data));
  }

  void whenDrained(std::function<void()> fn) override {
    stream_->whenWritten([owner = owner_, weak = weak_from_this(), fn = std::move(fn)]() mutable {
      owner->post([weak, fn = std::move(fn)] {
        auto self = weak.lock();
        if (self && !self->detached_.load()) fn();
      });
    });
  }

  void onClosed(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      if (!closedRan_) {
        onClosed_ = std::move(fn);
        return;
      }
    }
    // Already closed: still on the module's executor, never inline.
    owner_->post([weak = weak_from_this(), fn = std::move(fn)] {
      auto self = weak.lock();
      if (self && !self->detached_.load()) fn();
    });
  }

  void setMaxQueuedBytes(size_t bytes) override { stream_->setMaxQueuedBytes(bytes); }

  void end() override {
    started_.store(true);  // an unstarted end() sends an empty 200, as the HttpStream's does
    stream_->end();
  }

  bool open() const override { return !detached_.load() && stream_->open(); }

  // The module's Context is going: end the stream and drop its callbacks unrun.
  void detach() {
    detached_.store(true);
    std::function<void()> dropped;
    {
      std::lock_guard lock(mutex_);
      closedRan_ = true;
      dropped = std::move(onClosed_);
    }
    if (started_.exchange(true)) {
      stream_->end();
      return;
    }
    stream_->start(503, "application/json");
    stream_->write(R"({"message":"the module serving this stream stopped"})");
    stream_->end();
  }

  bool streaming() const { return !detached_.load() && stream_->open(); }

 private:
  // On the module's executor: the HttpStream closed.
  void closed() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mutex_);
      if (closedRan_) return;
      closedRan_ = true;
      fn = std::move(onClosed_);
    }
    if (fn && !detached_.load()) fn();
  }

  // A comment line when `interval` passed with nothing written; the timer holds the writer
  // weakly, so it stops with the stream or the writer.
  void scheduleKeepAlive(std::chrono::milliseconds interval) {
    owner_->schedule(interval, [weak = weak_from_this(), interval] {
      auto self = weak.lock();
      if (!self || !self->open()) return;
      if (!self->wrote_.exchange(false)) self->stream_->write(": keep-alive\n\n");
      self->scheduleKeepAlive(interval);
    });
  }

  const std::shared_ptr<ModuleStreams> owner_;
  const std::shared_ptr<HttpStream> stream_;
  std::atomic<bool> started_{false};
  std::atomic<bool> detached_{false};
  std::atomic<bool> wrote_{false};  // since the last keep-alive tick
  std::mutex mutex_;
  bool closedRan_ = false;
  std::function<void()> onClosed_;
};

std::shared_ptr<api::HttpStreamWriter> ModuleStreams::open(std::shared_ptr<HttpStream> stream) {
  auto writer = std::make_shared<ModuleStreamWriter>(shared_from_this(), std::move(stream));
  bool accepted = false;
  {
    std::lock_guard lock(mutex_);
    if (executor_ != nullptr) {
      std::erase_if(writers_, [](const auto& weak) { return weak.expired(); });
      writers_.push_back(writer);
      accepted = true;
    }
  }
  if (!accepted) {
    writer->detach();  // a request that was on its way while the module stopped
    return nullptr;
  }
  // Outside the lock: a stream closed already runs the notification at once, which posts.
  writer->watchClose();
  return writer;
}

bool ModuleStreams::post(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (executor_ == nullptr) return false;
  executor_->post(std::move(fn));
  return true;
}

bool ModuleStreams::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (executor_ == nullptr) return false;
  // Not kept: a tick that finds its writer gone or its stream closed just stops.
  (void)executor_->schedule(delay, std::move(fn));
  return true;
}

void ModuleStreams::closeAll() {
  std::vector<std::weak_ptr<ModuleStreamWriter>> writers;
  {
    std::lock_guard lock(mutex_);
    executor_ = nullptr;
    writers.swap(writers_);
  }
  for (auto& weak : writers) {
    if (auto writer = weak.lock()) writer->detach();
  }
}

size_t ModuleStreams::openForTest() const {
  std::lock_guard lock(mutex_);
  return static_cast<size_t>(std::count_if(writers_.begin(), writers_.end(), [](const auto& weak) {
    auto writer = weak.lock();
    return writer && writer->streaming();
  }));
}

}  // namespace tessera::kernel::net

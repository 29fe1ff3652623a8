#include "kernel/runtime/runtime.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tessera::kernel::runtime {

namespace asio = boost::asio;

BlockingPool::BlockingPool(size_t threads, size_t maxQueued) : maxQueued_(maxQueued) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

BlockingPool::~BlockingPool() { shutdown(); }

bool BlockingPool::submit(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= maxQueued_) return false;
    queue_.push_back(std::move(work));
  }
  ready_.notify_one();
  return true;
}

void BlockingPool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void BlockingPool::loop() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

namespace {

class AsioTimerHandle final : public api::TimerHandle {
 public:
  explicit AsioTimerHandle(std::shared_ptr<asio::steady_timer> timer,
                           std::shared_ptr<std::atomic<bool>> cancelled)
      : timer_(std::move(timer)), cancelled_(std::move(cancelled)) {}
  void cancel() override {
    cancelled_->store(true);
    timer_->cancel();
  }

 private:
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

}  // namespace

StrandExecutor::StrandExecutor(Runtime& runtime)
    : runtime_(runtime), strand_(asio::make_strand(runtime.io())) {}

void StrandExecutor::post(std::function<void()> fn) { asio::post(strand_, std::move(fn)); }

bool StrandExecutor::runningInThisThread() const { return strand_.running_in_this_thread(); }

std::unique_ptr<api::TimerHandle> StrandExecutor::schedule(std::chrono::nanoseconds delay,
                                                           std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  // The handler holds the timer so it lives until it fires or is cancelled.
  timer->async_wait([timer, cancelled, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec && !cancelled->load()) fn();
  });
  return std::make_unique<AsioTimerHandle>(timer, cancelled);
}

api::Status StrandExecutor::runBlocking(std::function<void()> work, std::function<void()> done) {
  auto strand = strand_;
  bool queued = runtime_.blocking().submit(
      [strand, work = std::move(work), done = std::move(done)]() mutable {
        work();
        asio::post(strand, std::move(done));
      });
  if (!queued) return api::resourceExhausted("the blocking pool's queue is full");
  return api::Status::ok();
}

Runtime::Runtime(Options options)
    : options_(options),
      io_(static_cast<int>(options.ioThreads)),
      blocking_(options.blockingThreads, options.blockingQueue) {
  guard_.emplace(asio::make_work_guard(io_));
}

Runtime::~Runtime() { stop(); }

void Runtime::start() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  started_ = true;
  for (size_t i = 0; i < options_.ioThreads; ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
}

void Runtime::stop() {
  std::lock_guard lock(mutex_);
  guard_.reset();
  io_.stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  blocking_.shutdown();
}

}  // namespace tessera::kernel::runtime

#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tessera/api/executor.h"

namespace tessera::kernel::runtime {

/// A fixed set of threads for calls that block, fed by a bounded queue so that a flood of
/// blocking work is refused rather than queued without limit.
class BlockingPool {
 public:
  BlockingPool(size_t threads, size_t maxQueued);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// Queues `work`. Returns false (and runs nothing) when the queue is full or the pool is
  /// shut down. Thread-safe.
  bool submit(std::function<void()> work);
  /// Runs what is queued, then joins the threads. Idempotent.
  void shutdown();

 private:
  void loop();

  const size_t maxQueued_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class Runtime;

/// An api::Executor on an Asio strand of the runtime's io_context.
class StrandExecutor final : public api::Executor {
 public:
  explicit StrandExecutor(Runtime& runtime);

  void post(std::function<void()> fn) override;
  bool runningInThisThread() const override;
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override;
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override;

  /// Runs `fn` on the strand and waits for its result. Must not be called from the strand.
  template <typename Fn>
  auto call(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto future = task.get_future();
    boost::asio::post(strand_, [&task] { task(); });
    return future.get();
  }

  /// Waits until everything posted before this call has run. Not from the strand.
  void drain() {
    call([] { return 0; });
  }

  boost::asio::strand<boost::asio::io_context::executor_type>& strand() { return strand_; }

 private:
  Runtime& runtime_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
};

/// The daemon's event loop: one io_context run by a few threads, strands for components on
/// top, and a bounded blocking pool beside it.
class Runtime {
 public:
  struct Options {
    size_t ioThreads = 2;
    size_t blockingThreads = 4;
    size_t blockingQueue = 1024;
  };

  Runtime() : Runtime(Options{}) {}
  explicit Runtime(Options options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  boost::asio::io_context& io() { return io_; }
  BlockingPool& blocking() { return blocking_; }

  /// A new strand on this runtime.
  std::unique_ptr<StrandExecutor> makeExecutor() { return std::make_unique<StrandExecutor>(*this); }

  /// Starts the io threads. Idempotent.
  void start();
  /// Stops the loop and joins every thread (io and blocking). Idempotent; not from an io
  /// thread.
  void stop();

 private:
  Options options_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  BlockingPool blocking_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  bool started_ = false;
};

}  // namespace tessera::kernel::runtime

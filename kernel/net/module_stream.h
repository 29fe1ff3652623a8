#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "kernel/net/http_server.h"
#include "tessera/api/executor.h"
#include "tessera/api/http.h"

namespace tessera::kernel::net {

class ModuleStreamWriter;

/// The streams one module opened through its ExecutorRouter, and the gate to that module's
/// executor: every writer callback is posted through here, so once closeAll() has run (the
/// module's Context is going) nothing reaches the executor or the module again. Thread-safe.
class ModuleStreams : public std::enable_shared_from_this<ModuleStreams> {
 public:
  /// `executor` must outlive the closeAll() call.
  explicit ModuleStreams(api::Executor& executor) : executor_(&executor) {}

  /// The module's writer over `stream`, or null (after answering 503) once closed.
  std::shared_ptr<api::HttpStreamWriter> open(std::shared_ptr<HttpStream> stream);
  /// Posts `fn` to the module's executor; false (and `fn` dropped) once closed.
  bool post(std::function<void()> fn);
  /// Runs `fn` on the module's executor after `delay`; false once closed.
  bool schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  /// Ends every open stream and drops its callbacks unrun; later open()/post()/schedule() are
  /// refused. Idempotent.
  void closeAll();
  /// Writers alive whose stream is still open.
  size_t openForTest() const;

 private:
  mutable std::mutex mutex_;
  api::Executor* executor_;  // null once closed
  std::vector<std::weak_ptr<ModuleStreamWriter>> writers_;
};

}  // namespace tessera::kernel::net

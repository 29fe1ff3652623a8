#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace tessera::testing {

/// A thread-safe queue of things that happened (events, messages), which a test waits on with
/// a deadline instead of sleeping.
template <typename T>
class WaitQueue {
 public:
  void push(T value) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(value));
    }
    changed_.notify_all();
  }
  /// Removes and returns the first item matching `match`, waiting up to `timeout` for one.
  std::optional<T> take(const std::function<bool(const T&)>& match,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mutex_);
    std::optional<T> found;
    changed_.wait_for(lock, timeout, [&] {
      for (auto it = items_.begin(); it != items_.end(); ++it) {
        if (match(*it)) {
          found = std::move(*it);
          items_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  /// True if an item matching `match` is there within `timeout` (it is left in place).
  bool seen(const std::function<bool(const T&)>& match,
            std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      for (const auto& item : items_) {
        if (match(item)) return true;
      }
      return false;
    });
  }
  /// Everything queued so far (left in place).
  std::vector<T> snapshot() {
    std::lock_guard lock(mutex_);
    return {items_.begin(), items_.end()};
  }
  void clear() {
    std::lock_guard lock(mutex_);
    items_.clear();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<T> items_;
};

}  // namespace tessera::testing

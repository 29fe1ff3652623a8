#include "modules/containerizer_native/reaper.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tessera::modules::containerizer_native {

Reaper::~Reaper() { stop(); }

api::Status Reaper::start() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return api::internalError("epoll_create1: {}", strerror(errno));
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) return api::internalError("eventfd: {}", strerror(errno));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event) != 0) {
    return api::internalError("epoll_ctl: {}", strerror(errno));
  }
  std::lock_guard lock(mutex_);
  thread_ = std::thread([this] { loop(); });
  running_ = true;
  return api::Status::ok();
}

api::Status Reaper::watch(int pidfd, OnExit onExit) {
  std::lock_guard lock(mutex_);
  if (!running_) {
    close(pidfd);
    return api::failedPrecondition("the reaper is not running");
  }
  watches_[pidfd] = std::move(onExit);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = pidfd;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfd, &event) != 0) {
    int saved = errno;
    watches_.erase(pidfd);
    close(pidfd);
    return api::internalError("epoll_ctl: {}", strerror(saved));
  }
  return api::Status::ok();
}

std::optional<int> Reaper::tryReap(int pidfd) {
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 || info.si_pid == 0) return std::nullopt;  // ECHILD: not ours; 0: still runs
  switch (info.si_code) {
    case CLD_EXITED:
      return (info.si_status & 0xff) << 8;
    case CLD_KILLED:
      return info.si_status & 0x7f;
    case CLD_DUMPED:
      return (info.si_status & 0x7f) | 0x80;
    default:
      return std::nullopt;
  }
}

void Reaper::loop() {
  std::array<epoll_event, 64> events;
  while (true) {
    int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == wake_) return;
      OnExit onExit;
      {
        std::lock_guard lock(mutex_);
        auto it = watches_.find(fd);
        if (it == watches_.end()) continue;
        onExit = std::move(it->second);
        watches_.erase(it);
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      }
      std::optional<int> status = tryReap(fd);
      close(fd);
      onExit(status);
    }
  }
}

void Reaper::stop() {
  {
    std::lock_guard lock(mutex_);
    running_ = false;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_, &one, sizeof(one));
    (void)ignored;
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  for (auto& [fd, onExit] : watches_) close(fd);
  watches_.clear();
  if (wake_ >= 0) close(wake_);
  if (epoll_ >= 0) close(epoll_);
  wake_ = epoll_ = -1;
}

}  // namespace tessera::modules::containerizer_native

#include "modules/isolator_cgroups/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tessera::modules::isolator_cgroups {

namespace fs = std::filesystem;

namespace {

bool isFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::set<pid_t> readPids(const std::string& file) {
  std::set<pid_t> pids;
  std::ifstream in(file);
  long pid = 0;
  while (in >> pid) {
    if (pid > 0) pids.insert(static_cast<pid_t>(pid));
  }
  return pids;
}

// Waits (polling, bounded) until `condition` holds; cgroupfs offers no event for "frozen" on v1
// or for "empty" without a notification setup per cgroup.
template <typename Fn>
bool pollUntil(Fn condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(100);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace

std::string_view controllerName(Controller controller) {
  switch (controller) {
    case Controller::kCpu:
      return "cpu";
    case Controller::kCpuacct:
      return "cpuacct";
    case Controller::kMemory:
      return "memory";
    case Controller::kPids:
      return "pids";
    case Controller::kFreezer:
      return "freezer";
  }
  return "?";
}

std::string Layout::rootPath(Controller controller) const {
  return mounts.at(controller) + "/" + root;
}

std::string Layout::path(Controller controller, std::string_view container) const {
  return rootPath(controller) + "/" + std::string(container);
}

namespace {

std::vector<std::string> directoriesIn(
    const std::vector<const std::map<Controller, std::string>*>& sets, const std::string& root,
    std::string_view container) {
  std::vector<std::string> result;
  std::set<std::string> seen;  // co-mounted controllers (cpu,cpuacct) share a directory
  for (const auto* set : sets) {
    for (const auto& [controller, mount] : *set) {
      std::error_code ec;
      auto canonical = fs::weakly_canonical(mount, ec);
      std::string key = ec ? mount : canonical.string();
      if (!seen.insert(key).second) continue;
      std::string dir = mount;
      dir += '/';
      dir += root;
      if (!container.empty()) {
        dir += '/';
        dir += container;
      }
      result.push_back(std::move(dir));
    }
  }
  return result;
}

}  // namespace

std::vector<std::string> Layout::directories(std::string_view container) const {
  return directoriesIn({&mounts}, root, container);
}

std::vector<std::string> Layout::allDirectories(std::string_view container) const {
  return directoriesIn({&mounts, &otherMounts}, root, container);
}

std::string Layout::describe() const { return version == 2 ? "v2" : "v1"; }

api::Result<Layout> detect(const std::string& hierarchy, const std::string& root,
                           const std::set<Controller>& wanted) {
  if (root.empty() || root.find("..") != std::string::npos || root.front() == '/') {
    return api::invalidArgument("invalid cgroups root '{}' (a relative path without '..')", root);
  }
  Layout layout;
  layout.hierarchy = hierarchy;
  layout.root = root;
  const std::string controllersFile = hierarchy + "/cgroup.controllers";
  if (isFile(controllersFile)) {
    layout.version = 2;
    auto text = readFile(controllersFile);
    if (!text) return text.status();
    std::set<std::string, std::less<>> available;
    std::istringstream words(*text);
    for (std::string word; words >> word;) available.insert(word);
    // v2 has no cpuacct or freezer controllers: cpu.stat and cgroup.freeze are core files.
    std::string enable;
    for (Controller controller : wanted) {
      if (controller == Controller::kCpuacct || controller == Controller::kFreezer) continue;
      auto name = controllerName(controller);
      if (available.count(name) == 0) {
        return api::failedPrecondition(
            "cgroups controller '{}' is not available in the v2 hierarchy at '{}' (not listed in "
            "'{}'; is it delegated?)",
            name, hierarchy, controllersFile);
      }
      if (!enable.empty()) enable += ' ';
      enable += '+';
      enable += name;
    }
    for (Controller controller : wanted) layout.mounts[controller] = hierarchy;
    layout.v2Kill = true;
    std::error_code ec;
    fs::create_directories(hierarchy + "/" + root, ec);
    if (ec) {
      return api::internalError("cannot create the cgroups root '{}': {}", hierarchy + "/" + root,
                                ec.message());
    }
    if (!enable.empty()) {
      // Controllers must be enabled for the children of every level down to the containers.
      for (const std::string& level : {hierarchy, hierarchy + "/" + root}) {
        if (auto written = writeFile(level + "/cgroup.subtree_control", enable); !written) {
          return api::failedPrecondition("cannot enable cgroups controllers '{}' at '{}': {}",
                                         enable, level, written.message());
        }
      }
    }
    return layout;
  }
  layout.version = 1;
  std::set<Controller> all = wanted;
  all.insert(Controller::kFreezer);
  for (Controller other :
       {Controller::kCpu, Controller::kCpuacct, Controller::kMemory, Controller::kPids}) {
    if (all.count(other) != 0) continue;
    const std::string mount = hierarchy + "/" + std::string(controllerName(other));
    if (isFile(mount + "/cgroup.procs")) layout.otherMounts[other] = mount;
  }
  for (Controller controller : all) {
    const std::string mount = hierarchy + "/" + std::string(controllerName(controller));
    if (!isFile(mount + "/cgroup.procs")) {
      if (controller == Controller::kFreezer && wanted.count(controller) == 0) continue;
      return api::failedPrecondition(
          "cgroups controller '{}' is not mounted at '{}' (neither a v1 controller there nor a "
          "v2 hierarchy with cgroup.controllers at '{}')",
          controllerName(controller), mount, hierarchy);
    }
    layout.mounts[controller] = mount;
    std::error_code ec;
    fs::create_directories(mount + "/" + root, ec);
    if (ec) {
      return api::failedPrecondition("cgroups controller '{}': cannot create '{}': {}",
                                     controllerName(controller), mount + "/" + root, ec.message());
    }
  }
  return layout;
}

api::Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return api::internalError("cannot open '{}': {}", path, std::strerror(errno));
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return api::internalError("cannot read '{}': {}", path, std::strerror(error));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

api::Status writeFile(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return api::internalError("cannot open '{}': {}", path, std::strerror(errno));
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int error = errno;
  ::close(fd);
  if (n < 0) {
    return api::internalError("cannot write '{}' to '{}': {}", value, path, std::strerror(error));
  }
  return api::Status::ok();
}

std::map<std::string, uint64_t> readKeyValues(const std::string& path) {
  std::map<std::string, uint64_t> values;
  std::ifstream in(path);
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) values[key] = value;
  return values;
}

std::optional<uint64_t> readNumber(const std::string& path) {
  auto text = readFile(path);
  if (!text) return std::nullopt;
  uint64_t value = 0;
  const char* begin = text->data();
  auto [ptr, ec] = std::from_chars(begin, begin + text->size(), value);
  if (ec != std::errc()) return std::nullopt;
  return value;
}

api::Status create(const Layout& layout, std::string_view container) {
  for (const auto& directory : layout.directories(container)) {
    if (::mkdir(directory.c_str(), 0755) == 0) continue;
    if (errno != EEXIST) {
      return api::internalError("cannot create cgroup '{}': {}", directory, std::strerror(errno));
    }
    // A leftover of an earlier container with this id: reuse it only if nothing runs in it.
    if (!readPids(directory + "/cgroup.procs").empty()) {
      return api::alreadyExists("cgroup '{}' already exists and has processes", directory);
    }
  }
  return api::Status::ok();
}

api::Status assign(const Layout& layout, std::string_view container, pid_t pid) {
  const std::string text = std::to_string(pid);
  for (const auto& directory : layout.directories(container)) {
    if (auto written = writeFile(directory + "/cgroup.procs", text); !written) return written;
  }
  return api::Status::ok();
}

std::set<pid_t> processes(const Layout& layout, std::string_view container) {
  std::set<pid_t> pids;
  for (const auto& directory : layout.allDirectories(container)) {
    auto some = readPids(directory + "/cgroup.procs");
    pids.insert(some.begin(), some.end());
  }
  return pids;
}

bool exists(const Layout& layout, std::string_view container) {
  for (const auto& directory : layout.allDirectories(container)) {
    if (isDirectory(directory)) return true;
  }
  return false;
}

std::set<std::string> containers(const Layout& layout) {
  std::set<std::string> names;
  for (const auto& rootDir : layout.allDirectories("")) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(rootDir, ec)) {
      if (entry.is_directory(ec)) names.insert(entry.path().filename().string());
    }
  }
  return names;
}

api::Status destroy(const Layout& layout, std::string_view container,
                    std::chrono::milliseconds timeout) {
  if (!exists(layout, container)) return api::Status::ok();
  std::string freezer;
  if (layout.version == 1 && layout.mounts.count(Controller::kFreezer) != 0) {
    freezer = layout.path(Controller::kFreezer, container);
    if (!isDirectory(freezer)) freezer.clear();
  }
  const std::string v2 = layout.version == 2 ? layout.directories(container).front() : "";
  bool killed = false;
  if (!v2.empty() && layout.v2Kill && isFile(v2 + "/cgroup.kill")) {
    killed = writeFile(v2 + "/cgroup.kill", "1").isOk();
  }
  if (!killed && !processes(layout, container).empty()) {
    // Frozen, no process can fork a child we would miss; SIGKILL is delivered on thaw.
    const std::string v2Freeze = v2.empty() ? std::string() : v2 + "/cgroup.freeze";
    const std::string freezeFile = !freezer.empty() ? freezer + "/freezer.state"
                                   : (!v2Freeze.empty() && isFile(v2Freeze)) ? v2Freeze
                                                                             : std::string();
    const char* frozenValue = layout.version == 1 ? "FROZEN" : "1";
    if (!freezeFile.empty() && writeFile(freezeFile, frozenValue).isOk() && layout.version == 1) {
      pollUntil(
          [&] {
            auto state = readFile(freezeFile);
            return !state || state->rfind("FROZEN", 0) == 0;
          },
          timeout);
    }
    for (pid_t pid : processes(layout, container)) ::kill(pid, SIGKILL);
    if (!freezeFile.empty()) (void)writeFile(freezeFile, layout.version == 1 ? "THAWED" : "0");
  }
  bool empty = pollUntil(
      [&] {
        auto left = processes(layout, container);
        // A process that was forking while we read the list: kill what is still there.
        for (pid_t pid : left) ::kill(pid, SIGKILL);
        return left.empty();
      },
      timeout);
  if (!empty) {
    std::string pids;
    for (pid_t pid : processes(layout, container)) {
      if (!pids.empty()) pids += ' ';
      pids += std::to_string(pid);
    }
    return api::makeStatus(api::StatusCode::kDeadlineExceeded,
                           "cgroup of container '{}' still has processes [{}] after {}ms",
                           container, pids, timeout.count());
  }
  for (const auto& directory : layout.allDirectories(container)) {
    if (::rmdir(directory.c_str()) != 0 && errno != ENOENT) {
      int error = errno;
      // The kernel can take a moment to release an emptied cgroup (EBUSY).
      bool removed =
          pollUntil([&] { return ::rmdir(directory.c_str()) == 0 || errno == ENOENT; }, timeout);
      if (!removed) {
        return api::internalError("cannot remove cgroup '{}': {}", directory, std::strerror(error));
      }
    }
  }
  return api::Status::ok();
}

uint64_t cpuShares(double cpus) {
  return std::max<uint64_t>(2, static_cast<uint64_t>(std::llround(cpus * 1024.0)));
}

uint64_t cpuWeight(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

}  // namespace tessera::modules::isolator_cgroups

#include "modules/containerizer_native/proc.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace tessera::modules::containerizer_native {

namespace {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return out.str();
}

template <typename T>
bool parseNumber(std::string_view text, T& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

api::Result<ProcStat> parseProcStat(std::string_view text) {
  // "pid (comm) state ppid ...": comm may hold anything, so split at the last ')'.
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return api::invalidArgument("malformed stat line");
  }
  ProcStat stat;
  std::string_view pid = text.substr(0, open);
  while (!pid.empty() && pid.back() == ' ') pid.remove_suffix(1);
  if (!parseNumber(pid, stat.pid)) return api::invalidArgument("malformed pid in stat line");

  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest = text.substr(close + 1);
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && (rest[pos] == ' ' || rest[pos] == '\n')) ++pos;
    size_t end = pos;
    while (end < rest.size() && rest[end] != ' ' && rest[end] != '\n') ++end;
    if (end > pos) fields.push_back(rest.substr(pos, end - pos));
    pos = end;
  }
  if (fields.size() < 22) return api::invalidArgument("stat line has {} fields", fields.size() + 2);
  auto field = [&](int number) { return fields[number - 3]; };
  if (field(3).size() != 1) return api::invalidArgument("malformed state in stat line");
  stat.state = field(3)[0];
  if (!parseNumber(field(4), stat.ppid) || !parseNumber(field(5), stat.pgrp) ||
      !parseNumber(field(6), stat.session) || !parseNumber(field(14), stat.utime) ||
      !parseNumber(field(15), stat.stime) || !parseNumber(field(20), stat.numThreads) ||
      !parseNumber(field(22), stat.startTime) || !parseNumber(field(24), stat.rssPages)) {
    return api::invalidArgument("malformed number in stat line");
  }
  return stat;
}

api::Result<ProcStat> readProcStat(pid_t pid) {
  auto text = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text || text->empty()) return api::notFound("no process {}", pid);
  return parseProcStat(*text);
}

std::vector<pid_t> listPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    if (parseNumber(std::string_view(entry->d_name), pid) && pid > 0) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

std::map<std::string, std::string> readEnviron(pid_t pid) {
  std::map<std::string, std::string> environ;
  auto text = readFile("/proc/" + std::to_string(pid) + "/environ");
  if (!text) return environ;
  std::string_view rest(*text);
  while (!rest.empty()) {
    auto end = rest.find('\0');
    std::string_view entry = rest.substr(0, end);
    auto equals = entry.find('=');
    if (equals != std::string_view::npos) {
      environ.emplace(std::string(entry.substr(0, equals)), std::string(entry.substr(equals + 1)));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return environ;
}

std::map<std::string, std::vector<pid_t>> findMarkedProcesses(std::string_view agentWorkDir) {
  std::map<std::string, std::vector<pid_t>> found;
  const pid_t self = getpid();
  for (pid_t pid : listPids()) {
    if (pid == self) continue;
    auto environ = readEnviron(pid);
    auto id = environ.find(std::string(kContainerIdVariable));
    auto dir = environ.find(std::string(kWorkDirVariable));
    if (id == environ.end() || dir == environ.end() || dir->second != agentWorkDir) continue;
    found[id->second].push_back(pid);
  }
  return found;
}

int pidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int pidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

double clockTicksPerSecond() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return ticks;
}

int64_t pageSize() {
  static const int64_t size = sysconf(_SC_PAGESIZE);
  return size;
}

}  // namespace tessera::modules::containerizer_native

#include "modules/system_metrics/system_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tessera::modules::system_metrics {

api::Result<SystemStats> parseLoadavg(std::string_view text, SystemStats into) {
  std::istringstream in{std::string(text)};
  if (!(in >> into.load1 >> into.load5 >> into.load15)) {
    return api::invalidArgument("cannot parse loadavg '{}'", text.substr(0, 40));
  }
  return into;
}

api::Result<SystemStats> parseMeminfo(std::string_view text, SystemStats into) {
  std::istringstream in{std::string(text)};
  std::string key;
  double value = 0;
  std::string unit;
  std::optional<double> total, available, free;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    if (!(fields >> key >> value)) continue;
    if (key == "MemTotal:") total = value * 1024;
    if (key == "MemAvailable:") available = value * 1024;
    if (key == "MemFree:") free = value * 1024;
  }
  if (!total || !(available || free))
    return api::invalidArgument("meminfo has no MemTotal/MemFree");
  into.memTotalBytes = *total;
  into.memFreeBytes = available ? *available : *free;
  return into;
}

api::Result<SystemStats> readSystemStats() {
  auto slurp = [](const char* path) -> api::Result<std::string> {
    std::ifstream in(path);
    if (!in) return api::unavailable("cannot read '{}'", path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  };
  auto loadavg = slurp("/proc/loadavg");
  if (!loadavg) return loadavg.status();
  auto meminfo = slurp("/proc/meminfo");
  if (!meminfo) return meminfo.status();
  SystemStats stats;
  stats.cpusTotal = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  auto withLoad = parseLoadavg(*loadavg, stats);
  if (!withLoad) return withLoad.status();
  return parseMeminfo(*meminfo, *withLoad);
}

}  // namespace tessera::modules::system_metrics

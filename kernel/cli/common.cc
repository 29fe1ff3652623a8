#include "kernel/cli/common.h"

#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace tessera::kernel::cli {

namespace fs = std::filesystem;

void addCommonFlags(runtime::FlagSet& flags, CommonFlags& c) {
  // Refused at load, naming the flag, rather than later by the listener that cannot bind.
  flags.add("ip", &c.ip, "IP address to listen on (0.0.0.0 for every interface)")
      .check(checkIpAddress);
  flags.add("port", &c.port, "Port to listen on");
  flags.add("hostname", &c.hostname, "The hostname to advertise (default: the system's hostname)");
  flags.add("work_dir", &c.workDir,
            "Where persistent state lives; empty keeps state in memory where the role allows");
  flags.add("log_dir", &c.logDir,
            "Directory for log files (tessera-<role>.log); default stderr "
            "only");
  flags.add("logging_level", &c.loggingLevel, "Least severity logged: INFO, WARNING or ERROR");
  flags.add("quiet", &c.quiet, "Do not log to stderr");
  addModuleFlags(flags, c);
  flags.add("config_dir", &c.configDir,
            "Directory of one file per flag, each holding its value (default "
            "/etc/tessera/<command>); given on the command line or as TESSERA_CONFIG_DIR");
}

void addModuleFlags(runtime::FlagSet& flags, CommonFlags& c) {
  flags.add("modules", &c.modules,
            "Modules manifest: a path, file://path or inline JSON (Mesos's modules.json shape); "
            "default: <prefix>/share/tessera/modules.json");
  flags.add("modules_dir", &c.modulesDir,
            "Directory of modules manifests (*.json, read alphabetically); excludes --modules");
  flags.add("module_path", &c.modulePath,
            "Colon-separated directories searched for libraries named by 'name' in a manifest, "
            "before <prefix>/lib/tessera");
}

api::Status checkIpAddress(const runtime::Flag::Value& value) {
  const auto& text = std::get<std::string>(value);
  boost::system::error_code ec;
  boost::asio::ip::make_address(text, ec);
  if (ec) return api::invalidArgument("'{}' is not an IP address", text);
  return api::Status::ok();
}

std::optional<int> exitCodeFor(LoadOutcome outcome) {
  switch (outcome) {
    case LoadOutcome::kExitOk:
      return 0;
    case LoadOutcome::kExitError:
      return 1;
    case LoadOutcome::kRun:
      return std::nullopt;
  }
  return 1;
}

void printError(std::string_view role, std::string_view message) {
  std::cerr << "tessera " << role << ": " << message << std::endl;
}

LoadOutcome loadFlags(std::string_view role, runtime::FlagSet& flags,
                      const std::vector<std::string>& args, std::vector<std::string>* positional) {
  runtime::FlagLoadOptions options;
  // The config directory is a source of the other flags, so it is found before they are read:
  // --config_dir on the command line, else TESSERA_CONFIG_DIR, else /etc/tessera/<command>.
  std::optional<std::string> configDir;
  for (size_t i = 0; i < args.size(); ++i) {
    constexpr std::string_view kFlag = "--config_dir";
    if (args[i] == "--") break;
    if (args[i].rfind(std::string(kFlag) + "=", 0) == 0) {
      configDir = args[i].substr(kFlag.size() + 1);
    } else if (args[i] == kFlag && i + 1 < args.size()) {
      configDir = args[i + 1];
    }
  }
  if (!configDir) {
    if (const char* env = std::getenv("TESSERA_CONFIG_DIR")) configDir = env;
  }
  options.configDir = configDir ? fs::path(*configDir) : fs::path("/etc/tessera") / role;
  auto loaded = flags.load(args, options);
  if (!loaded) {
    printError(role, loaded.status().message());
    std::cerr << "Try 'tessera " << role << " --help'." << std::endl;
    return LoadOutcome::kExitError;
  }
  if (loaded->help) {
    std::cout << flags.usage(fmt::format("Usage: tessera {} [options]", role));
    return LoadOutcome::kExitOk;
  }
  if (positional != nullptr) {
    *positional = loaded->positional;
  } else if (!loaded->positional.empty()) {
    printError(role, fmt::format("unexpected argument '{}'", loaded->positional.front()));
    return LoadOutcome::kExitError;
  }
  for (const auto& warning : loaded->warnings) {
    std::cerr << "tessera " << role << ": warning: " << warning << std::endl;
  }
  return LoadOutcome::kRun;
}

fs::path binaryDir() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : self.parent_path();
}

fs::path defaultManifestPath() {
  return (binaryDir() / ".." / "share" / "tessera" / "modules.json").lexically_normal();
}

fs::path defaultWebuiDir() {
  return (binaryDir() / ".." / "share" / "tessera" / "webui").lexically_normal();
}

std::vector<fs::path> moduleSearchPath(const CommonFlags& common) {
  std::vector<fs::path> path;
  if (common.modulePath) {
    std::string_view rest = *common.modulePath;
    while (!rest.empty()) {
      auto colon = rest.find(':');
      auto part = rest.substr(0, colon);
      if (!part.empty()) path.emplace_back(part);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  path.push_back((binaryDir() / ".." / "lib" / "tessera").lexically_normal());
  return path;
}

}  // namespace tessera::kernel::cli

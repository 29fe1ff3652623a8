#include "kernel/cli/cli.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "kernel/cli/common.h"
#include "kernel/cli/daemon.h"
#include "kernel/modules/manifest.h"
#include "kernel/modules/module_manager.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::cli {

namespace {

constexpr std::string_view kUsage =
    "Usage: tessera <command> [options]\n"
    "\n"
    "Commands:\n"
    "  local     master, agent and frameworks in one process, HTTP on :5050\n"
    "  modules   list the modules a manifest would load, without starting anything\n"
    "  version   print the version\n"
    "\n"
    "Seed-era names work as aliases when the binary is called by them (mesos-local).\n"
    "'tessera <command> --help' lists a command's flags.\n";

// argv[0] aliases: the classic Mesos binary names run the matching command.
const std::map<std::string, std::string, std::less<>> kAliases = {
    {"mesos-local", "local"},
};

// The exit code when flag loading ends the command (--help, or an error), else nothing.
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

int runLocal(const std::vector<std::string>& args) {
  CommonFlags common;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  if (auto exit = exitCodeFor(loadFlags("local", flags, args))) return *exit;
  runtime::LoggingOptions logging{"local", common.loggingLevel, common.logDir.value_or(""),
                                  common.quiet};
  if (auto status = runtime::setupLogging(logging); !status) {
    printError("local", status.message());
    return 1;
  }
  blockStopSignals();
  Daemon daemon({"local", common, [&flags] { return flags.values(); }});
  if (auto started = daemon.start(); !started) {
    printError("local", started.message());
    return 1;
  }
  int signal = waitForStopSignal();
  runtime::logger("local")->info("received signal {}, stopping", signal);
  daemon.stop();
  return 0;
}

int runModules(const std::vector<std::string>& args) {
  CommonFlags common;
  bool json = false;
  runtime::FlagSet flags;
  addCommonFlags(flags, common);
  flags.add("json", &json, "Print JSON instead of a table");
  if (auto exit = exitCodeFor(loadFlags("modules", flags, args))) return *exit;
  auto entries = modules::readManifests({common.modules, common.modulesDir, defaultManifestPath()},
                                        moduleSearchPath(common));
  if (!entries) {
    printError("modules", entries.status().message());
    return 1;
  }
  modules::ModuleManager manager;
  if (auto loaded = manager.load(*entries); !loaded) {
    printError("modules", loaded.message());
    return 1;
  }
  if (json) {
    Poco::JSON::Array list;
    for (const auto& m : manager.modules()) {
      Poco::JSON::Object object;
      object.set("name", m.name);
      object.set("kind", m.kind);
      object.set("library", m.library);
      object.set("api_version", m.apiVersion);
      object.set("description", m.description);
      object.set("author", m.author);
      Poco::JSON::Array parameters;
      for (const auto& [key, value] : m.parameters.entries()) {
        Poco::JSON::Object parameter;
        parameter.set("key", key);
        parameter.set("value", value);
        parameters.add(parameter);
      }
      object.set("parameters", parameters);
      list.add(object);
    }
    list.stringify(std::cout, 2);
    std::cout << std::endl;
    return 0;
  }
  std::cout << fmt::format("{:<30} {:<14} {:<4} {:<60} {}\n", "NAME", "KIND", "API", "LIBRARY",
                           "PARAMETERS");
  for (const auto& m : manager.modules()) {
    std::string parameters;
    for (const auto& [key, value] : m.parameters.entries()) {
      if (!parameters.empty()) parameters += ",";
      parameters += key + "=" + value;
    }
    std::cout << fmt::format("{:<30} {:<14} {:<4} {:<60} {}\n", m.name, m.kind, m.apiVersion,
                             m.library, parameters);
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string self = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "tessera";
  std::string command;
  if (auto alias = kAliases.find(self); alias != kAliases.end()) {
    command = alias->second;
  } else if (!args.empty()) {
    command = args.front();
    args.erase(args.begin());
  }
  if (command == "local") return runLocal(args);
  if (command == "modules") return runModules(args);
  if (command == "version" || command == "--version") {
    std::cout << "tessera " << versionInfo().version << std::endl;
    return 0;
  }
  if (command.empty() || command == "help" || command == "--help") {
    std::cout << kUsage;
    return command.empty() ? 2 : 0;
  }
  std::cerr << "tessera: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tessera::kernel::cli

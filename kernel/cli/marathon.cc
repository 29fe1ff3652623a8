#include "kernel/cli/marathon.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "kernel/cli/framework.h"
#include "kernel/runtime/strings.h"
#include "kernel/scheduler/driver.h"
#include "kernel/zookeeper/url.h"

namespace tessera::kernel::cli {

namespace {

namespace fs = std::filesystem;

// What tells one personality's flag loading from another's.
struct Personality {
  std::string_view name;              // "marathon": the role, the usage's program name
  std::string_view envPrefix;         // "MARATHON_"
  std::string_view defaultConfigDir;  // "/etc/marathon/conf"
  std::string_view intro;             // the usage text's first lines
};

constexpr Personality kMarathon{
    "marathon", "MARATHON_", "/etc/marathon/conf",
    "Usage: marathon --master=HOST:PORT|zk://host:port,.../path [options]\n"
    "\n"
    "Hosts a framework module (--framework_module) the way Marathon is run: Marathon's flags,\n"
    "MARATHON_<FLAG> environment variables and /etc/marathon/conf/<flag> files (a file holds\n"
    "its flag's value; MARATHON_CONFIG_DIR or --config_dir names another directory). Both\n"
    "'--flag value' and '--flag=value' work; precedence: command line > environment > files."};

constexpr Personality kChronos{
    "chronos", "CHRONOS_", "/etc/chronos/conf",
    "Usage: chronos --master=HOST:PORT|zk://host:port,.../path [options]\n"
    "\n"
    "Hosts a framework module (--framework_module) the way Chronos is run: Chronos's flags,\n"
    "CHRONOS_<FLAG> environment variables and /etc/chronos/conf/<flag> files (a file holds\n"
    "its flag's value; CHRONOS_CONFIG_DIR or --config_dir names another directory). Both\n"
    "'--flag value' and '--flag=value' work; precedence: command line > environment > files."};

// The config directory is a source of the other flags, so it is found before they are read:
// --config_dir on the command line, else <PREFIX>CONFIG_DIR, else the packages' directory.
fs::path configDirFor(const Personality& personality, const std::vector<std::string>& args) {
  constexpr std::string_view kFlag = "--config_dir";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i].starts_with(std::string(kFlag) + "=")) return args[i].substr(kFlag.size() + 1);
    if (args[i] == kFlag && i + 1 < args.size()) return args[i + 1];
  }
  const std::string variable = fmt::format("{}CONFIG_DIR", personality.envPrefix);
  if (const char* env = std::getenv(variable.c_str())) return env;
  return fs::path(personality.defaultConfigDir);
}

// loadFlags() with the personality's environment prefix, config directory and usage; only the
// personality's own prefix is read, so a MESOS_* or TESSERA_* variable meant for an agent or
// master on the same host changes nothing here.
LoadOutcome loadPersonality(const Personality& personality, runtime::FlagSet& flags,
                            const std::vector<std::string>& args) {
  // TLS as every other role has it (LIBPROCESS_SSL_*, --ssl_*), not Marathon's JVM keystore.
  addSslFlags(flags);
  runtime::FlagLoadOptions options;
  options.envPrefixes = {std::string(personality.envPrefix)};
  options.configDir = configDirFor(personality, args);
  auto loaded = flags.load(args, options);
  if (!loaded) {
    printError(personality.name, loaded.status().message());
    std::cerr << "Try '" << personality.name << " --help'." << std::endl;
    return LoadOutcome::kExitError;
  }
  if (loaded->help) {
    std::cout << flags.usage(personality.intro);
    return LoadOutcome::kExitOk;
  }
  if (!loaded->positional.empty()) {
    printError(personality.name,
               fmt::format("unexpected argument '{}'", loaded->positional.front()));
    return LoadOutcome::kExitError;
  }
  for (const auto& warning : loaded->warnings) {
    std::cerr << "tessera " << personality.name << ": warning: " << warning << std::endl;
  }
  if (auto tls = configureTls(); !tls) {
    printError(personality.name, tls.message());
    return LoadOutcome::kExitError;
  }
  return LoadOutcome::kRun;
}

// Tessera's spelling of a level given in Marathon's (Logback's lower-case names) or Tessera's.
std::string tesseraLoggingLevel(std::string level) {
  std::transform(level.begin(), level.end(), level.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return level == "WARN" ? "WARNING" : level;
}

api::Status checkLoggingLevel(const runtime::Flag::Value& value) {
  const std::string level = tesseraLoggingLevel(std::get<std::string>(value));
  if (level == "INFO" || level == "WARNING" || level == "ERROR" || level == "DEBUG") {
    return api::Status::ok();
  }
  return api::invalidArgument("'{}' is not one of debug, info, warn, error",
                              std::get<std::string>(value));
}

// The Tessera flags a personality needs to run: where the modules come from, where state and
// logs go, where the API listens. Bound to `common`; --http_port, whose default differs, is
// declared by the personality.
void addTesseraFlags(runtime::FlagSet& flags, CommonFlags& common, std::string& module,
                     std::string_view defaultModule) {
  module = std::string(defaultModule);
  flags.add("framework_module", &module,
            "The framework module to host: its modules.json name or an alias its entry gives");
  flags
      .add("http_address", &common.ip,
           "IP address the HTTP API listens on (0.0.0.0 for every interface)")
      .check(checkIpAddress);
  flags.add("hostname", &common.hostname,
            "The host name advertised for the HTTP API (default: the system's host name)");
  flags.add("work_dir", &common.workDir,
            "Where the module's state lives without ZooKeeper (crash-safe files); empty keeps "
            "it in memory");
  flags.add("log_dir", &common.logDir, "Directory for log files; default stderr only");
  flags
      .add("logging_level", &common.loggingLevel,
           "Least severity logged: debug, info, warn or error (any case)")
      .check(checkLoggingLevel);
  flags.add("quiet", &common.quiet, "Do not log to stderr");
  addModuleFlags(flags, common);
  flags.add("config_dir", &common.configDir,
            "Directory of one file per flag, each holding its value");
}

// Flags both programs spell alike.
struct MesosFlags {
  std::string master;
  std::optional<std::string> role;
  std::optional<std::string> principal;
  std::optional<std::string> secretFile;
  int64_t failoverTimeout = 7 * 24 * 3600;
};

void addMesosFlags(runtime::FlagSet& flags, MesosFlags& mesos) {
  flags.add("master", &mesos.master, "The Mesos master: HOST:PORT or zk://host:port,.../path")
      .required();
  flags.add("mesos_role", &mesos.role, "The role the framework registers with");
  flags.add("mesos_authentication_principal", &mesos.principal,
            "The principal the framework authenticates with to the master");
  flags.add("mesos_authentication_secret_file", &mesos.secretFile,
            "A file holding the secret for --mesos_authentication_principal");
  flags
      .add("failover_timeout", &mesos.failoverTimeout,
           "Seconds the master keeps the framework's tasks while no scheduler is subscribed")
      .atLeast(0);
}

// The content of `path`, without surrounding white space (a trailing newline from `echo`).
api::Result<std::string> readSecret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return api::invalidArgument("cannot read '{}': {}", path, std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  return std::string(runtime::trim(content.str()));
}

// Checks the flags both programs share and fills what they decide in `command`. Errors name
// the flag.
api::Status applyMesosFlags(const MesosFlags& mesos, PersonalityCommand& command) {
  if (zookeeper::isZkUrl(mesos.master)) {
    if (auto url = zookeeper::parseZkUrl(mesos.master); !url) {
      return url.status().withContext("flag '--master'");
    }
  } else if (auto address = scheduler::parseMasterAddress(mesos.master); !address) {
    return address.status().withContext("flag '--master'");
  }
  auto& options = command.options;
  options.master = mesos.master;
  options.failoverTimeout = std::chrono::seconds(mesos.failoverTimeout);
  if (mesos.role) options.parameters.emplace_back("mesos_role", *mesos.role);
  options.principal = mesos.principal;
  if (mesos.secretFile) {
    if (!mesos.principal) {
      return api::invalidArgument(
          "flag '--mesos_authentication_secret_file' needs '--mesos_authentication_principal'");
    }
    auto secret = readSecret(*mesos.secretFile);
    if (!secret) return secret.status().withContext("flag '--mesos_authentication_secret_file'");
    options.secret = std::move(secret).value();
  }
  return api::Status::ok();
}

// `host:port` the module's API is reached at: --hostname, else the system's host name. Empty
// with port 0 (the port is known only once bound).
std::string advertisedAddress(const CommonFlags& common) {
  if (common.port == 0) return {};
  std::string host;
  if (common.hostname) {
    host = *common.hostname;
  } else {
    char name[256] = {};
    host = ::gethostname(name, sizeof(name) - 1) == 0 ? name : common.ip;
  }
  return fmt::format("{}:{}", host, common.port);
}

// The shared end of both loaders: the Tessera flags' spelling, the advertised address, /flags.
void finish(const runtime::FlagSet& flags, std::string module, PersonalityCommand& command) {
  command.common.loggingLevel = tesseraLoggingLevel(command.common.loggingLevel);
  command.options.module = std::move(module);
  command.options.advertisedAddress = advertisedAddress(command.common);
  command.flagValues = flags.values();
}

int hostPersonality(const Personality& personality, PersonalityCommand command) {
  auto values = std::move(command.flagValues);
  return hostFramework(personality.name, "--framework_module", command.common,
                       std::move(command.options), [values] { return values; });
}

// One of Marathon's on/off flags (Scallop's `toggle`): `--name` turns it on, `--disable_name`
// off, in every source (`MARATHON_DISABLE_NAME=`, a config file `disable_name`); `--no-name` and
// `--name=false` work too, as for every Tessera bool. Both flags are declared, so each source
// reads them as it reads any bool.
struct Toggle {
  std::string name;
  bool on;
  bool disabled = false;
};

void addToggle(runtime::FlagSet& flags, Toggle& toggle, std::string help) {
  flags.add(toggle.name, &toggle.on, help);
  flags.add("disable_" + toggle.name, &toggle.disabled,
            fmt::format("Turns --{} off (Marathon's spelling)", toggle.name));
}

// Whether a source other than the default gave flag `name`.
bool given(const std::vector<runtime::FlagValue>& values, std::string_view name) {
  return std::any_of(values.begin(), values.end(), [name](const runtime::FlagValue& value) {
    return value.name == name && value.source != runtime::FlagSource::kDefault;
  });
}

// The toggle's value: off when `--disable_<name>` is given; that and `--<name>` given too are
// refused, naming both.
api::Result<bool> resolveToggle(const std::vector<runtime::FlagValue>& values,
                                const Toggle& toggle) {
  if (!toggle.disabled) return toggle.on;
  if (toggle.on && given(values, toggle.name)) {
    return api::invalidArgument("flags '--{}' and '--disable_{}' contradict each other",
                                toggle.name, toggle.name);
  }
  return false;
}

// Marathon's flags that only tune Marathon's own internals (timers, batch sizes, its storage
// layout, its metrics): accepted so that an operator's existing command line, environment and
// config directory start, and ignored with a warning. Flags that would change what the cluster
// runs or who may reach the API (`--executor`, `--env_vars_prefix`, `--local_port_min`,
// `--disable_http`, `--http_credentials`, `--https_port`, `--ssl_keystore_*`, ...) are not
// here: they stay errors. TLS is Tessera's `--ssl_*` (LIBPROCESS_SSL_*), as for every role.
constexpr std::string_view kIgnoredMarathonFlags[] = {
    "decline_offer_duration",
    "event_subscriber",
    "http_endpoints",
    "http_event_callback_slow_consumer_timeout",
    "launch_token_refresh_interval",
    "launch_tokens",
    "leader_proxy_connection_timeout",
    "leader_proxy_read_timeout",
    "marathon_store_timeout",
    "max_tasks_per_offer",
    "max_tasks_per_offer_cycle",
    "mesos_heartbeat_failure_threshold",
    "mesos_heartbeat_interval",
    "min_revive_offers_interval",
    "offer_matching_timeout",
    "on_elected_prepare_timeout",
    "reconciliation_initial_delay",
    "reconciliation_interval",
    "revive_offers_repetitions",
    "save_tasks_to_launch_timeout",
    "scale_apps_initial_delay",
    "scale_apps_interval",
    "task_launch_confirm_timeout",
    "task_launch_timeout",
    "task_lost_expunge_gc",
    "task_lost_expunge_initial_delay",
    "task_lost_expunge_interval",
    "zk_compression_threshold",
    "zk_max_node_size",
    "zk_max_versions",
    "zk_timeout",
};

// Marathon's toggles of the same kind.
constexpr std::string_view kIgnoredMarathonToggles[] = {"metrics", "revive_offers_for_new_apps",
                                                        "store_cache", "tracing", "zk_compression"};

}  // namespace

LoadOutcome loadMarathonFlags(const std::vector<std::string>& args, PersonalityCommand& command) {
  command = PersonalityCommand{};
  command.common.port = 8080;
  MesosFlags mesos;
  std::string module;
  std::optional<std::string> zk;
  std::string frameworkName = "marathon";
  std::optional<std::string> user;
  int64_t zkSessionTimeout = 10000;
  runtime::FlagSet flags;
  addTesseraFlags(flags, command.common, module, "marathon");
  addMesosFlags(flags, mesos);
  flags.add("http_port", &command.common.port, "Port of the HTTP API");
  flags.add("zk", &zk,
            "ZooKeeper URL, zk://host:port,.../path: the instances elect a leader and keep "
            "their state there (default: none, this instance leads alone)");
  flags.add("zk_session_timeout", &zkSessionTimeout, "ZooKeeper session timeout, milliseconds")
      .atLeast(1);
  flags.add("framework_name", &frameworkName, "The framework's name (FrameworkInfo.name)");
  flags.add("mesos_user", &user, "The user tasks run as when an app names none");
  Toggle ha{"ha", true};
  addToggle(flags, ha,
            "Contend for leadership in ZooKeeper (--zk). With --disable_ha an instance with --zk "
            "still contends (alone, it leads at once): Tessera never runs two leaders");
  Toggle checkpoint{"checkpoint", true};
  addToggle(flags, checkpoint,
            "Ask agents to checkpoint the framework's tasks (FrameworkInfo.checkpoint; the "
            "module parameter 'checkpoint')");
  Toggle authentication{"mesos_authentication", true};
  addToggle(flags, authentication,
            "Authenticate to the master with --mesos_authentication_principal and the secret "
            "file; --disable_mesos_authentication sends the principal without the secret");
  // Sized once: the flags hold pointers into both.
  std::vector<Toggle> ignoredToggles(std::size(kIgnoredMarathonToggles));
  for (size_t i = 0; i < ignoredToggles.size(); ++i) {
    ignoredToggles[i].name = std::string(kIgnoredMarathonToggles[i]);
    addToggle(flags, ignoredToggles[i],
              "Marathon's; accepted and ignored (it tunes Marathon's internals)");
  }
  std::vector<std::optional<std::string>> ignored(std::size(kIgnoredMarathonFlags));
  for (size_t i = 0; i < ignored.size(); ++i) {
    flags.add(std::string(kIgnoredMarathonFlags[i]), &ignored[i],
              "Marathon's; accepted and ignored (it tunes Marathon's internals)");
  }
  if (auto exit = loadPersonality(kMarathon, flags, args); exit != LoadOutcome::kRun) return exit;

  auto refuse = [&](const api::Status& status) {
    printError(kMarathon.name, status.message());
    return LoadOutcome::kExitError;
  };
  const std::vector<runtime::FlagValue> values = flags.effectiveValues();
  for (const auto& value : values) {
    if (value.source == runtime::FlagSource::kDefault) continue;
    bool ignoredFlag = std::find(std::begin(kIgnoredMarathonFlags), std::end(kIgnoredMarathonFlags),
                                 value.name) != std::end(kIgnoredMarathonFlags);
    for (auto name : kIgnoredMarathonToggles) {
      if (value.name == name || value.name == fmt::format("disable_{}", name)) ignoredFlag = true;
    }
    if (ignoredFlag) {
      std::cerr << "tessera marathon: warning: ignoring flag '--" << value.name << "' (from '"
                << value.origin
                << "'): a setting of Marathon's own machinery, which Tessera does not have"
                << std::endl;
    }
  }
  auto checkpointOn = resolveToggle(values, checkpoint);
  if (!checkpointOn) return refuse(checkpointOn.status());
  auto haOn = resolveToggle(values, ha);
  if (!haOn) return refuse(haOn.status());
  auto authenticationOn = resolveToggle(values, authentication);
  if (!authenticationOn) return refuse(authenticationOn.status());
  if (!*authenticationOn) {
    mesos.secretFile.reset();  // the principal goes in FrameworkInfo, without a credential
  } else if (given(values, "mesos_authentication") && !mesos.principal) {
    return refuse(api::invalidArgument(
        "flag '--mesos_authentication' needs '--mesos_authentication_principal'"));
  }
  if (auto applied = applyMesosFlags(mesos, command); !applied) return refuse(applied);
  command.options.parameters.emplace_back("checkpoint", *checkpointOn ? "true" : "false");
  if (zk) {
    auto url = zookeeper::parseZkUrl(*zk);
    if (!url) return refuse(url.status().withContext("flag '--zk'"));
    if (url->path == "/")
      return refuse(api::invalidArgument("flag '--zk': '{}' names no path", *zk));
    command.options.zk = *zk;
  }
  command.options.zkSessionTimeout = std::chrono::milliseconds(zkSessionTimeout);
  command.options.parameters.emplace_back("framework_name", frameworkName);
  if (user) command.options.parameters.emplace_back("mesos_user", *user);
  finish(flags, std::move(module), command);
  return LoadOutcome::kRun;
}

LoadOutcome loadChronosFlags(const std::vector<std::string>& args, PersonalityCommand& command) {
  command = PersonalityCommand{};
  command.common.port = 4400;
  MesosFlags mesos;
  std::string module;
  std::optional<std::string> zkHosts;
  std::string zkPath = "/chronos/state";
  int64_t zkTimeout = 10000;
  std::string frameworkName = "chronos";
  runtime::FlagSet flags;
  addTesseraFlags(flags, command.common, module, "chronos");
  addMesosFlags(flags, mesos);
  flags.add("http_port", &command.common.port, "Port of the HTTP API");
  flags.add("zk_hosts", &zkHosts,
            "ZooKeeper servers, host:port,...: the instances elect a leader and keep their "
            "state under --zk_path (default: none, this instance leads alone)");
  flags.add("zk_path", &zkPath, "The ZooKeeper path for the leader election and the state");
  flags.add("zk_timeout", &zkTimeout, "ZooKeeper session timeout, milliseconds").atLeast(1);
  flags.add("mesos_framework_name", &frameworkName, "The framework's name (FrameworkInfo.name)");
  if (auto exit = loadPersonality(kChronos, flags, args); exit != LoadOutcome::kRun) return exit;

  auto refuse = [&](const api::Status& status) {
    printError(kChronos.name, status.message());
    return LoadOutcome::kExitError;
  };
  if (auto applied = applyMesosFlags(mesos, command); !applied) return refuse(applied);
  if (!zkPath.starts_with("/") || zkPath.size() < 2) {
    return refuse(api::invalidArgument("flag '--zk_path': '{}' is not an absolute path", zkPath));
  }
  if (zkHosts) {
    if (zkHosts->find("://") != std::string::npos || zkHosts->find('/') != std::string::npos) {
      return refuse(api::invalidArgument(
          "flag '--zk_hosts': '{}' is not host:port,... (the path goes in --zk_path)", *zkHosts));
    }
    const std::string url = fmt::format("zk://{}{}", *zkHosts, zkPath);
    if (auto parsed = zookeeper::parseZkUrl(url); !parsed) {
      return refuse(parsed.status().withContext("flag '--zk_hosts'"));
    }
    command.options.zk = url;
  }
  command.options.zkSessionTimeout = std::chrono::milliseconds(zkTimeout);
  command.options.parameters.emplace_back("framework_name", frameworkName);
  finish(flags, std::move(module), command);
  return LoadOutcome::kRun;
}

int runMarathon(const std::vector<std::string>& args) {
  PersonalityCommand command;
  if (auto exit = exitCodeFor(loadMarathonFlags(args, command))) return *exit;
  return hostPersonality(kMarathon, std::move(command));
}

int runChronos(const std::vector<std::string>& args) {
  PersonalityCommand command;
  if (auto exit = exitCodeFor(loadChronosFlags(args, command))) return *exit;
  return hostPersonality(kChronos, std::move(command));
}

}  // namespace tessera::kernel::cli

#include "kernel/cli/common.h"

#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "kernel/net/tls.h"

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

namespace {

// The --ssl_* flags' values: process-wide, like the TLS they configure (and /flags reads them
// after loadFlags() returns). Their defaults are the LIBPROCESS_SSL_* variables, so a flag given
// wins over the environment.
struct SslFlags {
  net::TlsSettings settings;
  api::Status environment = api::Status::ok();
};

SslFlags& sslFlags() {
  static SslFlags flags;
  return flags;
}

}  // namespace

void addSslFlags(runtime::FlagSet& flags) {
  auto& ssl = sslFlags();
  ssl = SslFlags{};
  if (auto env = net::TlsSettings::fromProcessEnvironment()) {
    ssl.settings = *env;
  } else {
    ssl.environment = env.status();
  }
  auto& s = ssl.settings;
  flags.add("ssl_enabled", &s.enabled,
            "TLS on every listener and outgoing connection (LIBPROCESS_SSL_ENABLED)");
  flags.add("ssl_cert_file", &s.certFile,
            "PEM certificate this process presents (LIBPROCESS_SSL_CERT_FILE)");
  flags.add("ssl_key_file", &s.keyFile,
            "PEM private key of that certificate (LIBPROCESS_SSL_KEY_FILE)");
  flags.add("ssl_ca_file", &s.caFile,
            "PEM CA bundle peers are verified against (LIBPROCESS_SSL_CA_FILE)");
  flags.add("ssl_ca_dir", &s.caDir, "Directory of hashed CA certificates (LIBPROCESS_SSL_CA_DIR)");
  flags.add("ssl_verify_cert", &s.verifyCert,
            "Verify the certificates peers present (LIBPROCESS_SSL_VERIFY_CERT)");
  flags.add("ssl_require_cert", &s.requireCert,
            "Refuse clients without a valid certificate; implies --ssl_verify_cert "
            "(LIBPROCESS_SSL_REQUIRE_CERT)");
  flags.add("ssl_support_downgrade", &s.supportDowngrade,
            "Also accept plain connections on TLS ports (LIBPROCESS_SSL_SUPPORT_DOWNGRADE)");
}

api::Status configureTls() {
  auto& ssl = sslFlags();
  if (!ssl.environment) return ssl.environment;
  if (!ssl.settings.enabled) {
    net::setProcessTls(nullptr);
    return api::Status::ok();
  }
  auto context = net::TlsContext::create(ssl.settings);
  if (!context) return context.status();
  net::setProcessTls(*context);
  return api::Status::ok();
}

LoadOutcome loadFlags(std::string_view role, runtime::FlagSet& flags,
                      const std::vector<std::string>& args, std::vector<std::string>* positional) {
  addSslFlags(flags);
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
  if (auto tls = configureTls(); !tls) {
    printError(role, tls.message());
    return LoadOutcome::kExitError;
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

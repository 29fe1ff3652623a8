// Flags and config files: a role's command line and its config directory of one file per flag
// (kernel/runtime/flags.cc, FlagSet::load), with a flag of every type.
//
// Input: NUL-separated tokens. A token `@name=content` becomes the file `name` in the config
// directory (holding `content`); every other token is a command-line argument. The
// environment is not read (no prefixes), and no flag allows `file://`, so nothing outside the
// fuzzer's own directory is opened.
//
// Properties: load() never crashes; when it succeeds, every flag's value printed as text and
// given back on a command line loads again and prints the same.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "kernel/runtime/flags.h"

namespace fs = std::filesystem;
using tessera::fuzz::check;
using namespace tessera::kernel::runtime;

namespace {

struct Values {
  std::string name = "default";
  bool verbose = false;
  int64_t count = 3;
  uint16_t port = 5050;
  double weight = 1.5;
  Duration timeout = std::chrono::seconds(5);
  Bytes size{512 * kMegabyte};
  std::optional<std::string> zk;
};

void declare(FlagSet& flags, Values& v) {
  flags.add("name", &v.name, "a string");
  flags.add("verbose", &v.verbose, "a bool").alias("chatty");
  flags.add("count", &v.count, "an integer");
  flags.add("port", &v.port, "a port");
  flags.add("weight", &v.weight, "a double");
  flags.add("timeout", &v.timeout, "a duration").alias("slave_timeout");
  flags.add("size", &v.size, "a size");
  flags.add("zk", &v.zk, "an optional string").secret();
}

// The config directory, one per process, emptied for every input and removed at exit (never
// destroyed, so that the exit handler can still name it).
const fs::path& configDir() {
  static const fs::path* dir = [] {
    auto* path = new fs::path(fs::temp_directory_path() /
                              ("tessera-flags-fuzz-" + std::to_string(getpid())));
    fs::create_directories(*path);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(configDir(), ec);
    });
    return path;
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = tessera::fuzz::text(data, size);
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> files;
  for (size_t start = 0; start <= input.size();) {
    size_t end = input.find('\0', start);
    if (end == std::string_view::npos) end = input.size();
    std::string_view token = input.substr(start, end - start);
    size_t equals = token.find('=');
    if (token.starts_with('@') && equals != std::string_view::npos) {
      std::string name(token.substr(1, equals - 1));
      if (!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
          files.size() < 16) {
        files.emplace_back(std::move(name), std::string(token.substr(equals + 1)));
      }
    } else if (!(token.empty() && end == input.size())) {
      args.emplace_back(token);
    }
    start = end + 1;
  }

  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(configDir(), ec)) fs::remove_all(entry, ec);
  for (const auto& [name, content] : files) std::ofstream(configDir() / name) << content;

  Values values;
  FlagSet flags;
  declare(flags, values);
  auto loaded = flags.load(args, {.envPrefixes = {}, .configDir = configDir()});
  if (!loaded) return 0;
  flags.values();
  flags.usage("fuzz");

  std::vector<std::string> again;
  std::vector<std::optional<std::string>> texts;
  for (const Flag* flag : flags.flags()) {
    texts.push_back(flag->valueText());
    if (texts.back()) again.push_back("--" + flag->name() + "=" + *texts.back());
  }
  Values reloadedValues;
  FlagSet reloaded;
  declare(reloaded, reloadedValues);
  auto second = reloaded.load(again, {.envPrefixes = {}});
  check(static_cast<bool>(second), "flag values printed as text do not load again");
  size_t i = 0;
  for (const Flag* flag : reloaded.flags()) {
    check(flag->valueText() == texts[i++], "a flag value prints differently once reloaded");
  }
  return 0;
}

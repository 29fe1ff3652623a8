#include "kernel/runtime/flags.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "kernel/runtime/strings.h"
#include "tessera/api/parameters.h"

namespace tessera::kernel::runtime {
namespace {

constexpr std::string_view kFilePrefix = "file://";
constexpr size_t kUsageWidth = 100;
constexpr size_t kHelpIndent = 8;

// A declaration error is a bug in the role's code: crash loudly, in every build type.
[[noreturn]] void declarationBug(const std::string& message) {
  std::fprintf(stderr, "flag declaration error: %s\n", message.c_str());
  std::abort();
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// strerror's text with a lower-case first letter, to fit our messages.
std::string errorText(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

api::Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return api::invalidArgument("cannot read '{}': {}", path, errorText(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return api::invalidArgument("cannot read '{}': {}", path, errorText(errno));
  return content.str();
}

template <typename Int>
bool parseWhole(std::string_view text, Int& out) {
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, out);
  return !text.empty() && error == std::errc() && ptr == end;
}

api::Result<Flag::Value> parseValue(FlagType type, const std::string& raw) {
  switch (type) {
    case FlagType::kString:
      return Flag::Value(raw);
    case FlagType::kOptionalString:
      return Flag::Value(std::optional<std::string>(raw));
    case FlagType::kBool: {
      api::Result<bool> value = api::parseBool(raw);
      if (!value) return value.status();
      return Flag::Value(*value);
    }
    case FlagType::kInt: {
      int64_t value = 0;
      if (!parseWhole(raw, value)) return api::invalidArgument("'{}' is not a valid integer", raw);
      return Flag::Value(value);
    }
    case FlagType::kPort: {
      uint64_t value = 0;
      if (!parseWhole(raw, value) || value > 65535) {
        return api::invalidArgument("'{}' is not a valid port", raw);
      }
      return Flag::Value(static_cast<uint16_t>(value));
    }
    case FlagType::kDouble: {
      double value = 0;
      if (!parseWhole(raw, value) || !std::isfinite(value)) {
        return api::invalidArgument("'{}' is not a valid number", raw);
      }
      return Flag::Value(value);
    }
    case FlagType::kDuration: {
      api::Result<Duration> value = parseDuration(raw);
      if (!value) return value.status();
      return Flag::Value(*value);
    }
    case FlagType::kBytes: {
      api::Result<Bytes> value = parseBytes(raw);
      if (!value) return value.status();
      return Flag::Value(*value);
    }
  }
  return api::internalError("unknown flag type");
}

std::optional<std::string> valueToText(const Flag::Value& value) {
  struct Printer {
    std::optional<std::string> operator()(const std::string& v) const { return v; }
    std::optional<std::string> operator()(bool v) const { return v ? "true" : "false"; }
    std::optional<std::string> operator()(int64_t v) const { return fmt::format("{}", v); }
    std::optional<std::string> operator()(uint16_t v) const { return fmt::format("{}", v); }
    std::optional<std::string> operator()(double v) const { return fmt::format("{}", v); }
    std::optional<std::string> operator()(Duration v) const { return formatDuration(v); }
    std::optional<std::string> operator()(Bytes v) const { return formatBytes(v); }
    std::optional<std::string> operator()(const std::optional<std::string>& v) const { return v; }
  };
  return std::visit(Printer{}, value);
}

FlagType typeOf(const Flag::Target& target) {
  static constexpr FlagType kTypes[] = {
      FlagType::kString, FlagType::kBool,     FlagType::kInt,   FlagType::kPort,
      FlagType::kDouble, FlagType::kDuration, FlagType::kBytes, FlagType::kOptionalString,
  };
  return kTypes[target.index()];
}

bool validName(std::string_view name) {
  if (name.empty() || name.starts_with("no-")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The value one source gives one flag, before it is parsed.
struct Candidate {
  std::string raw;
  FlagSource source = FlagSource::kDefault;
  std::string origin;
  // How errors name the flag: "flag '--port'", "flag '--port' (from 'TESSERA_PORT')".
  std::string label;
};

// Collects candidates source by source, lowest precedence first; a later source replaces an
// earlier one's value, a second value from the same source is an error.
class Collector {
 public:
  explicit Collector(const std::vector<std::unique_ptr<Flag>>& flags)
      : flags_(flags), winners_(flags.size()), seen_(flags.size()) {}

  void beginSource() { std::fill(seen_.begin(), seen_.end(), false); }

  api::Status offer(const Flag& flag, Candidate candidate) {
    const size_t index = indexOf(flag);
    if (seen_[index])
      return api::invalidArgument("flag '--{}' is given more than once", flag.name());
    seen_[index] = true;
    winners_[index] = std::move(candidate);
    return api::Status::ok();
  }

  // By the flags' declaration order.
  const std::vector<std::optional<Candidate>>& winners() const { return winners_; }

 private:
  size_t indexOf(const Flag& flag) const {
    for (size_t i = 0; i < flags_.size(); ++i) {
      if (flags_[i].get() == &flag) return i;
    }
    assert(false && "a flag of another set");
    return 0;
  }

  const std::vector<std::unique_ptr<Flag>>& flags_;
  std::vector<std::optional<Candidate>> winners_;
  std::vector<bool> seen_;
};

// Word-wraps `text` to `width` columns, each line indented by `indent`; '\n' in `text` starts a
// new line.
void appendWrapped(std::string& out, std::string_view text, size_t indent, size_t width) {
  const std::string pad(indent, ' ');
  size_t lineStart = 0;
  while (lineStart <= text.size()) {
    size_t lineEnd = text.find('\n', lineStart);
    if (lineEnd == std::string_view::npos) lineEnd = text.size();
    std::istringstream words(std::string(text.substr(lineStart, lineEnd - lineStart)));
    std::string line;
    std::string word;
    while (words >> word) {
      if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
        out += pad + line + "\n";
        line.clear();
      }
      line += line.empty() ? word : " " + word;
    }
    out += line.empty() ? "\n" : pad + line + "\n";
    lineStart = lineEnd + 1;
  }
}

}  // namespace

std::string_view flagTypeName(FlagType type) {
  switch (type) {
    case FlagType::kString:
    case FlagType::kOptionalString:
      return "VALUE";
    case FlagType::kBool:
      return "BOOL";
    case FlagType::kInt:
      return "INT";
    case FlagType::kPort:
      return "PORT";
    case FlagType::kDouble:
      return "NUMBER";
    case FlagType::kDuration:
      return "DURATION";
    case FlagType::kBytes:
      return "BYTES";
  }
  return "VALUE";
}

std::string_view flagSourceName(FlagSource source) {
  switch (source) {
    case FlagSource::kDefault:
      return "default";
    case FlagSource::kConfigDir:
      return "config";
    case FlagSource::kEnvironment:
      return "environment";
    case FlagSource::kCommandLine:
      return "command line";
  }
  return "default";
}

// ---- Flag ----

Flag::Flag(std::string name, Target target, std::string help)
    : name_(std::move(name)), help_(std::move(help)), target_(target), type_(typeOf(target)) {
  default_ = current();
  defaultText_ = valueToText(default_);
}

Flag::Value Flag::current() const {
  return std::visit([](auto* target) { return Value(*target); }, target_);
}

api::Status Flag::checkValue(const Value& value) const {
  for (const auto& check : checks_) {
    if (api::Status valid = check(value); !valid) return valid;
  }
  return api::Status::ok();
}

void Flag::assign(const Value& value) {
  std::visit(
      [&value](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        *target = std::get<T>(value);
      },
      target_);
}

std::optional<std::string> Flag::valueText() const { return valueToText(current()); }

std::optional<std::string> Flag::displayText() const {
  std::optional<std::string> text = valueText();
  if (!secret_ || !text || text->empty()) return text;
  if (!filePath_.empty()) return std::string(kFilePrefix) + filePath_;
  return std::string(kRedacted);
}

// ---- FlagDeclaration ----

FlagDeclaration& FlagDeclaration::alias(std::string name) {
  set_.checkNewName(name);
  flag_.aliases_.push_back(std::move(name));
  return *this;
}

FlagDeclaration& FlagDeclaration::secret() {
  flag_.secret_ = true;
  return *this;
}

FlagDeclaration& FlagDeclaration::allowFile() {
  flag_.allowFile_ = true;
  return *this;
}

FlagDeclaration& FlagDeclaration::required() {
  flag_.required_ = true;
  return *this;
}

FlagDeclaration& FlagDeclaration::atLeast(int64_t minimum) {
  if (flag_.type_ != FlagType::kInt) {
    declarationBug(fmt::format("flag '--{}': atLeast() needs an int flag", flag_.name_));
  }
  return check([minimum](const Flag::Value& value) {
    int64_t number = std::get<int64_t>(value);
    if (number < minimum) {
      return api::invalidArgument("{} is less than the minimum {}", number, minimum);
    }
    return api::Status::ok();
  });
}

FlagDeclaration& FlagDeclaration::check(std::function<api::Status(const Flag::Value&)> check) {
  flag_.checks_.push_back(std::move(check));
  return *this;
}

// ---- FlagSet: declaring ----

void FlagSet::checkNewName(const std::string& name) const {
  if (!validName(name)) {
    declarationBug(fmt::format("'{}' is not a valid flag name (use a-z, 0-9 and _)", name));
  }
  if (name == "help") declarationBug("'help' is reserved for the usage text");
  if (find(name) != nullptr) declarationBug(fmt::format("flag '--{}' is declared twice", name));
}

FlagDeclaration FlagSet::declare(std::string name, Flag::Target target, std::string help) {
  checkNewName(name);
  flags_.push_back(std::unique_ptr<Flag>(new Flag(std::move(name), target, std::move(help))));
  return FlagDeclaration(*this, *flags_.back());
}

FlagDeclaration FlagSet::add(std::string name, std::string* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, bool* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, int64_t* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, uint16_t* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, double* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, Duration* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, Bytes* target, std::string help) {
  return declare(std::move(name), target, std::move(help));
}
FlagDeclaration FlagSet::add(std::string name, std::optional<std::string>* target,
                             std::string help) {
  return declare(std::move(name), target, std::move(help));
}

// ---- FlagSet: looking up ----

const Flag* FlagSet::find(std::string_view name) const {
  for (const auto& flag : flags_) {
    if (flag->name_ == name) return flag.get();
    for (const std::string& alias : flag->aliases_) {
      if (alias == name) return flag.get();
    }
  }
  return nullptr;
}

std::vector<const Flag*> FlagSet::flags() const {
  std::vector<const Flag*> sorted;
  for (const auto& flag : flags_) sorted.push_back(flag.get());
  std::sort(sorted.begin(), sorted.end(),
            [](const Flag* a, const Flag* b) { return a->name() < b->name(); });
  return sorted;
}

// ---- FlagSet: loading ----

api::Result<FlagLoadResult> FlagSet::load(int argc, const char* const* argv,
                                          const FlagLoadOptions& options) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return load(args, options);
}

namespace {

// Mesos packaging's convention for bools: an empty `?name` sets, `?no-name` clears. Returns the
// flag name and, for such a file, the value it stands for.
std::pair<std::string, std::optional<std::string>> configFileFlag(std::string name) {
  if (!name.starts_with("?")) return {std::move(name), std::nullopt};
  name = name.substr(1);
  if (name.starts_with("no-")) return {name.substr(3), "false"};
  return {std::move(name), "true"};
}

api::Result<std::vector<std::filesystem::path>> configFiles(const std::filesystem::path& dir) {
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error)) files.push_back(it->path());
  }
  if (error && error != std::errc::no_such_file_or_directory) {
    return api::invalidArgument("cannot read config directory '{}': {}", dir.string(),
                                error.message());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Step 1: the config directory, one file per flag.
api::Status collectConfigDir(const FlagSet& set, const std::filesystem::path& dir,
                             Collector& collector, std::vector<std::string>& warnings) {
  collector.beginSource();
  auto files = configFiles(dir);
  if (!files) return files.status();
  for (const std::filesystem::path& path : *files) {
    if (path.filename().string().starts_with(".")) continue;
    auto [name, boolValue] = configFileFlag(path.filename().string());
    const Flag* flag = set.find(name);
    if (flag == nullptr) {
      warnings.push_back(fmt::format("ignoring '{}' in the config directory: no flag '--{}'",
                                     path.string(), name));
      continue;
    }
    const std::string label = fmt::format("flag '--{}' (from '{}')", flag->name(), path.string());
    std::string raw;
    if (boolValue) {
      if (flag->type() != FlagType::kBool) {
        return api::invalidArgument("{}: '?' files are only for bool flags", label);
      }
      raw = *boolValue;
    } else {
      api::Result<std::string> content = readFile(path.string());
      if (!content) return content.status().withContext("{}", label);
      raw = trim(*content);
      // An empty file for a bool means "set", like a bare `--name`.
      if (flag->type() == FlagType::kBool && raw.empty()) raw = "true";
    }
    api::Status offered =
        collector.offer(*flag, Candidate{raw, FlagSource::kConfigDir, path.string(), label});
    if (!offered) return offered;
  }
  return api::Status::ok();
}

// Step 2: the environment, lowest-precedence prefix first.
api::Status collectEnvironment(const FlagSet& set, const std::vector<std::string>& prefixes,
                               Collector& collector, std::vector<std::string>& warnings) {
  for (auto prefix = prefixes.rbegin(); prefix != prefixes.rend(); ++prefix) {
    collector.beginSource();
    std::vector<std::pair<std::string, std::string>> variables;
    for (char** entry = ::environ; entry != nullptr && *entry != nullptr; ++entry) {
      std::string_view text(*entry);
      const size_t eq = text.find('=');
      if (eq == std::string_view::npos || !text.starts_with(*prefix)) continue;
      variables.emplace_back(text.substr(0, eq), text.substr(eq + 1));
    }
    std::sort(variables.begin(), variables.end());
    for (const auto& [variable, value] : variables) {
      const std::string name = lower(std::string_view(variable).substr(prefix->size()));
      const Flag* flag = set.find(name);
      if (flag == nullptr) {
        warnings.push_back(
            fmt::format("ignoring environment variable '{}': no flag '--{}'", variable, name));
        continue;
      }
      std::string raw = value;
      if (flag->type() == FlagType::kBool && raw.empty()) raw = "true";
      api::Status offered = collector.offer(
          *flag, Candidate{raw, FlagSource::kEnvironment, variable,
                           fmt::format("flag '--{}' (from '{}')", flag->name(), variable)});
      if (!offered) return offered;
    }
  }
  return api::Status::ok();
}

// The raw value of `--name[=value]` at args[i] for `flag`; may consume args[i + 1].
api::Result<std::string> commandLineValue(const Flag& flag, const std::string& name, bool negated,
                                          const std::optional<std::string>& value,
                                          const std::vector<std::string>& args, size_t& i) {
  if (flag.type() == FlagType::kBool) {
    if (negated && value) return api::invalidArgument("flag '--{}' takes no value", name);
    // `--name` and `--name=` mean true, as in stout.
    return negated ? "false" : (value && !value->empty() ? *value : "true");
  }
  if (negated) {
    return api::invalidArgument("flag '--{}' is not a bool, '--{}' is not allowed", flag.name(),
                                name);
  }
  if (value) return *value;
  if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
    return args[++i];  // `--name value`, as Marathon and Chronos take it.
  }
  return api::invalidArgument("flag '--{}' needs a value", name);
}

// Step 3: the command line.
api::Status collectCommandLine(const FlagSet& set, const std::vector<std::string>& args,
                               Collector& collector, FlagLoadResult& result) {
  collector.beginSource();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      result.positional.insert(result.positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (!arg.starts_with("--")) {
      result.positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    if (name == "help") {
      result.help = true;
      continue;
    }
    const Flag* flag = set.find(name);
    bool negated = false;
    if (flag == nullptr && name.starts_with("no-")) {
      flag = set.find(name.substr(3));
      negated = flag != nullptr;
    }
    if (flag == nullptr) return api::invalidArgument("unknown flag '--{}'", name);
    api::Result<std::string> raw = commandLineValue(*flag, name, negated, value, args, i);
    if (!raw) return raw.status();
    api::Status offered = collector.offer(
        *flag,
        Candidate{*raw, FlagSource::kCommandLine, "--" + name, fmt::format("flag '--{}'", name)});
    if (!offered) return offered;
  }
  return api::Status::ok();
}

// A winner's value, parsed, and the file it was read from (for `file://`).
struct Staged {
  Flag::Value value;
  std::string filePath;
};

// Step 4: parse every winner before changing anything, so that an error changes nothing.
api::Result<std::vector<std::optional<Staged>>> stageValues(
    const std::vector<std::unique_ptr<Flag>>& flags, const Collector& collector, bool help) {
  std::vector<std::optional<Staged>> staged(flags.size());
  for (size_t i = 0; i < flags.size(); ++i) {
    const Flag& flag = *flags[i];
    const std::optional<Candidate>& candidate = collector.winners()[i];
    if (!candidate) {
      if (flag.isRequired() && !help) {
        return api::invalidArgument("flag '--{}' is required", flag.name());
      }
      continue;
    }
    std::string raw = candidate->raw;
    std::string filePath;
    if (flag.allowsFile() && raw.starts_with(kFilePrefix)) {
      filePath = raw.substr(kFilePrefix.size());
      api::Result<std::string> content = readFile(filePath);
      if (!content) return content.status().withContext("{}", candidate->label);
      raw = trim(*content);
    }
    api::Result<Flag::Value> value = parseValue(flag.type(), raw);
    if (!value) return value.status().withContext("{}", candidate->label);
    if (api::Status valid = flag.checkValue(*value); !valid) {
      return valid.withContext("{}", candidate->label);
    }
    staged[i] = Staged{std::move(*value), std::move(filePath)};
  }
  return staged;
}

}  // namespace

api::Result<FlagLoadResult> FlagSet::load(const std::vector<std::string>& args,
                                          const FlagLoadOptions& options) {
  FlagLoadResult result;
  Collector collector(flags_);
  if (options.configDir) {
    api::Status read = collectConfigDir(*this, *options.configDir, collector, result.warnings);
    if (!read) return read;
  }
  if (api::Status read = collectEnvironment(*this, options.envPrefixes, collector, result.warnings);
      !read) {
    return read;
  }
  if (api::Status read = collectCommandLine(*this, args, collector, result); !read) return read;
  auto staged = stageValues(flags_, collector, result.help);
  if (!staged) return staged.status();

  // Step 5: commit; flags no source names get their default back.
  for (size_t i = 0; i < flags_.size(); ++i) {
    Flag& flag = *flags_[i];
    if (const std::optional<Staged>& value = (*staged)[i]) {
      const Candidate& candidate = *collector.winners()[i];
      flag.assign(value->value);
      flag.source_ = candidate.source;
      flag.origin_ = candidate.origin;
      flag.filePath_ = value->filePath;
    } else {
      flag.assign(flag.default_);
      flag.source_ = FlagSource::kDefault;
      flag.origin_.clear();
      flag.filePath_.clear();
    }
  }
  return result;
}

// ---- FlagSet: reporting ----

std::vector<FlagValue> FlagSet::effectiveValues() const {
  std::vector<FlagValue> values;
  for (const Flag* flag : flags()) {
    values.push_back(FlagValue{flag->name(), flag->displayText(), flag->source(), flag->origin()});
  }
  return values;
}

std::map<std::string, std::string> FlagSet::values() const {
  std::map<std::string, std::string> values;
  for (const auto& flag : flags_) {
    if (std::optional<std::string> text = flag->displayText()) values[flag->name()] = *text;
  }
  return values;
}

std::string FlagSet::usage(std::string_view intro) const {
  std::string out;
  if (!intro.empty()) out = std::string(intro) + "\n\n";
  for (const Flag* flag : flags()) {
    std::string names;
    const auto spell = [flag](const std::string& name) {
      return flag->type() == FlagType::kBool
                 ? "--[no-]" + name
                 : fmt::format("--{}={}", name, flagTypeName(flag->type()));
    };
    names = "  " + spell(flag->name());
    for (const std::string& alias : flag->aliases()) names += ", " + spell(alias);
    out += names + "\n";

    std::string help = flag->help();
    if (flag->defaultText() && flag->type() != FlagType::kOptionalString) {
      std::string shown = *flag->defaultText();
      if (flag->isSecret() && !shown.empty()) shown = kRedacted;
      if (shown.empty()) shown = "\"\"";
      help += (help.empty() ? "" : " ") + fmt::format("(default: {})", shown);
    }
    if (flag->isRequired()) help += help.empty() ? "(required)" : " (required)";
    if (!help.empty()) appendWrapped(out, help, kHelpIndent, kUsageWidth);
  }
  return out;
}

}  // namespace tessera::kernel::runtime

#pragma once

/// Command-line flags for the roles (master, agent, local, ...), in Mesos's syntax, from the
/// command line, the environment and a config directory of one file per flag.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernel/runtime/bytes.h"
#include "kernel/runtime/duration.h"
#include "tessera/api/status.h"

namespace tessera::kernel::runtime {

/// The value type of a flag; decided by the type of the variable it is bound to.
enum class FlagType {
  kString,          ///< std::string
  kBool,            ///< bool: `--name`, `--no-name`, `--name=true|false|1|0`
  kInt,             ///< int64_t, decimal
  kPort,            ///< uint16_t, 0-65535 (0: any free port)
  kDouble,          ///< double
  kDuration,        ///< Duration: `500ms`, `5secs`, `1.5hrs`
  kBytes,           ///< Bytes: `512MB`, `1GB`
  kOptionalString,  ///< std::optional<std::string>: no default, absent unless given
};

/// How the usage text names a type after `=`, e.g. "DURATION" in `--timeout=DURATION`.
std::string_view flagTypeName(FlagType type);

/// Where a flag's effective value came from, lowest precedence first.
enum class FlagSource {
  kDefault,      ///< the declared default
  kConfigDir,    ///< a file named after the flag in the config directory
  kEnvironment,  ///< a `TESSERA_<FLAG>` or `MESOS_<FLAG>` environment variable
  kCommandLine,  ///< the command line
};

/// "default", "config", "environment" or "command line".
std::string_view flagSourceName(FlagSource source);

/// What the /flags endpoint shows in place of a secret flag's value.
inline constexpr std::string_view kRedacted = "*****";

/// One declared flag: its names, help, type and, after FlagSet::load(), where its value came
/// from. Owned by its FlagSet; read-only outside it.
class Flag {
 public:
  /// The variable a flag writes its value to; it must outlive the FlagSet.
  using Target = std::variant<std::string*, bool*, int64_t*, uint16_t*, double*, Duration*, Bytes*,
                              std::optional<std::string>*>;

  /// A parsed value of any flag type (the alternatives in Target's order).
  using Value = std::variant<std::string, bool, int64_t, uint16_t, double, Duration, Bytes,
                             std::optional<std::string>>;

  /// The name, without `--`, e.g. "work_dir".
  const std::string& name() const { return name_; }
  /// Other names accepted for this flag everywhere the name is (command line, environment,
  /// config directory), e.g. "slave_ping_timeout" for "agent_ping_timeout".
  const std::vector<std::string>& aliases() const { return aliases_; }
  /// The help text as declared (the usage text appends the default).
  const std::string& help() const { return help_; }
  /// The value type.
  FlagType type() const { return type_; }
  /// True when the value is hidden from /flags and the usage text.
  bool isSecret() const { return secret_; }
  /// True when a `file://path` value means "the content of that file, trimmed".
  bool allowsFile() const { return allowFile_; }
  /// True when loading fails unless some source gives this flag a value.
  bool isRequired() const { return required_; }
  /// Runs the checks declared with FlagDeclaration::atLeast() and check() on `value`; the
  /// first failure's message (without the flag's name).
  api::Status checkValue(const Value& value) const;
  /// The default as text; nullopt for an optional string without default.
  const std::optional<std::string>& defaultText() const { return defaultText_; }

  /// Where the current value came from (kDefault before FlagSet::load()).
  FlagSource source() const { return source_; }
  /// Which variable, file or argument gave the value: "--port", "TESSERA_PORT",
  /// "/etc/tessera/master/quorum"; empty for the default.
  const std::string& origin() const { return origin_; }
  /// The path the value was read from when given as `file://path`; empty otherwise.
  const std::string& filePath() const { return filePath_; }

  /// The current value of the bound variable as text (Duration and Bytes in stout's style);
  /// nullopt for an unset optional string. Not redacted: for the process itself only.
  std::optional<std::string> valueText() const;
  /// valueText() as it may be shown to others: a secret read from `file://path` shows
  /// `file://path` (as Mesos shows a SecurePathOrValue flag); any other non-empty secret shows
  /// kRedacted.
  std::optional<std::string> displayText() const;

 private:
  friend class FlagSet;
  friend class FlagDeclaration;

  Flag(std::string name, Target target, std::string help);
  Value current() const;
  void assign(const Value& value);

  std::string name_;
  std::vector<std::string> aliases_;
  std::string help_;
  Target target_;
  FlagType type_;
  Value default_;
  std::optional<std::string> defaultText_;
  bool secret_ = false;
  bool allowFile_ = false;
  bool required_ = false;
  std::vector<std::function<api::Status(const Value&)>> checks_;
  FlagSource source_ = FlagSource::kDefault;
  std::string origin_;
  std::string filePath_;
};

class FlagSet;

/// Returned by FlagSet::add() to mark the flag just declared; every method returns `*this` so
/// that marks chain: `flags.add(...).alias("slave_ping_timeout").secret()`. Valid only within
/// the declaring statement.
class FlagDeclaration {
 public:
  /// Accepts `name` too (command line, environment, config directory). Aborts if the name is
  /// taken or malformed: a declaration error is a bug, not an input error.
  FlagDeclaration& alias(std::string name);
  /// Hides the value in /flags and in the usage text's default (see Flag::displayText()).
  FlagDeclaration& secret();
  /// Lets the value be given as `file://path`: the flag's value is then the file's content,
  /// with surrounding white space trimmed (Mesos does this for --zk, --credentials, ...).
  FlagDeclaration& allowFile();
  /// Makes FlagSet::load() fail with `flag '--name' is required` unless a source sets it.
  FlagDeclaration& required();
  /// Makes FlagSet::load() refuse a value of this int flag below `minimum`: `flag '--name':
  /// 0 is less than the minimum 1`. Aborts on a flag of another type (a bug). The default is
  /// not checked.
  FlagDeclaration& atLeast(int64_t minimum);
  /// Makes FlagSet::load() refuse a value `check` fails for; its message follows `flag
  /// '--name': `. `check` receives the parsed value (the alternative of Flag::Value that is the
  /// flag's type). The default is not checked.
  FlagDeclaration& check(std::function<api::Status(const Flag::Value&)> check);

 private:
  friend class FlagSet;
  FlagDeclaration(FlagSet& set, Flag& flag) : set_(set), flag_(flag) {}
  FlagSet& set_;
  Flag& flag_;
};

/// How FlagSet::load() finds values besides the command line.
struct FlagLoadOptions {
  /// Environment variable prefixes, highest precedence first; the rest of the variable's name
  /// is the flag's name, upper- or lower-case (`TESSERA_WORK_DIR` sets --work_dir).
  std::vector<std::string> envPrefixes = {"TESSERA_", "MESOS_"};
  /// A directory of one file per flag, named after the flag and holding its value (trimmed),
  /// as the packaged Mesos read /etc/mesos-master: `quorum` holding `2`. An empty file
  /// `?name` sets a bool flag, `?no-name` clears it. Hidden files and subdirectories are
  /// skipped; a directory that does not exist gives no values and no warning.
  std::optional<std::filesystem::path> configDir = std::nullopt;
};

/// What FlagSet::load() found besides flag values.
struct FlagLoadResult {
  /// Arguments that are no flags, in order (and everything after `--`).
  std::vector<std::string> positional;
  /// Things ignored but worth logging: environment variables with a flag prefix that name no
  /// flag, config directory files that name no flag.
  std::vector<std::string> warnings;
  /// True when `--help` was given (no flag may be called "help"); the caller prints usage().
  bool help = false;
};

/// A name, value and provenance, as effectiveValues() reports them.
struct FlagValue {
  /// The flag's name, without `--`.
  std::string name;
  /// The value as it may be shown (secrets redacted); nullopt for an unset optional string.
  std::optional<std::string> value;
  /// Where the value came from.
  FlagSource source;
  /// Which argument, variable or file gave it; empty for the default.
  std::string origin;
};

/// The flags of one role. A role binds each flag to a variable that holds its default, then
/// calls load() once with argv, and reads its variables:
///
///     MasterFlags f;                      // plain struct with defaults
///     FlagSet flags;
///     flags.add("port", &f.port, "Port to listen on");
///     flags.add("zk", &f.zk, "ZooKeeper URL").allowFile();
///     // `tessera master --port=5050 ...`: load() skips argv[0], here "master".
///     auto loaded = flags.load(argc - 1, argv + 1, {.configDir = "/etc/tessera/master"});
///
/// Precedence, highest first: command line > TESSERA_<FLAG> > MESOS_<FLAG> > config
/// directory > default. Command-line syntax as Mesos's stout: `--name=value`, `--name` and
/// `--no-name` for bools, and `--name value` (Marathon's style) for any other type.
///
/// Not thread-safe; load() on the main thread before anything reads the variables.
class FlagSet {
 public:
  /// A set with no flags.
  FlagSet() = default;
  /// Not copyable: two sets bound to the same variables would fight over them.
  FlagSet(const FlagSet&) = delete;
  /// Not copyable, see above.
  FlagSet& operator=(const FlagSet&) = delete;
  /// Movable: flags live on the heap, the bound variables stay where they are.
  FlagSet(FlagSet&&) = default;
  /// Movable, see above.
  FlagSet& operator=(FlagSet&&) = default;

  /// Declares flag `name` (lower-case letters, digits and `_`; not `no-...`) bound to
  /// `*target`, whose current value is the default. The type follows from the pointer: see
  /// FlagType. Aborts on a duplicate or malformed name (a bug, not an input error).
  FlagDeclaration add(std::string name, std::string* target, std::string help);
  /// Declares a bool flag; see the std::string overload.
  FlagDeclaration add(std::string name, bool* target, std::string help);
  /// Declares a 64-bit integer flag; see the std::string overload.
  FlagDeclaration add(std::string name, int64_t* target, std::string help);
  /// Declares a port flag (0-65535); see the std::string overload.
  FlagDeclaration add(std::string name, uint16_t* target, std::string help);
  /// Declares a floating-point flag; see the std::string overload.
  FlagDeclaration add(std::string name, double* target, std::string help);
  /// Declares a duration flag (`5secs`); see the std::string overload.
  FlagDeclaration add(std::string name, Duration* target, std::string help);
  /// Declares a size flag (`512MB`); see the std::string overload.
  FlagDeclaration add(std::string name, Bytes* target, std::string help);
  /// Declares an optional string flag, set only if a source gives it; see the std::string
  /// overload.
  FlagDeclaration add(std::string name, std::optional<std::string>* target, std::string help);

  /// Reads every source, then sets every bound variable (flags no source names get their
  /// default back), all or nothing: on error no variable changes. `args` excludes the program
  /// (and subcommand) name. Errors (InvalidArgument, naming the flag): `unknown flag '--foo'`,
  /// `flag '--port': '99999' is not a valid port`, `flag '--port' needs a value`, `flag '--x'
  /// is given more than once`, `flag '--work_dir' is required`, an unreadable `file://` or
  /// config file, a value refused by FlagDeclaration::atLeast() or check(). A bad value in a source
  /// that a higher one overrides is not an error.
  [[nodiscard]] api::Result<FlagLoadResult> load(const std::vector<std::string>& args,
                                                 const FlagLoadOptions& options = {});
  /// load() for `main`-style arguments: `argv[0]` is skipped, as the program name.
  [[nodiscard]] api::Result<FlagLoadResult> load(int argc, const char* const* argv,
                                                 const FlagLoadOptions& options = {});

  /// The flag called `name` (or with that alias); nullptr if none.
  const Flag* find(std::string_view name) const;
  /// Every flag, sorted by name.
  std::vector<const Flag*> flags() const;

  /// Every flag's effective value (secrets redacted) and where it came from, sorted by name;
  /// for debugging and logs.
  std::vector<FlagValue> effectiveValues() const;
  /// name -> value (secrets redacted) of every flag that has a value, for the /flags endpoint
  /// and GET_FLAGS (an unset optional flag is left out, as Mesos does).
  std::map<std::string, std::string> values() const;

  /// The usage text: `intro` (e.g. "Usage: tessera master [options]"), a blank line, then every
  /// flag sorted by name with its type, aliases, help and default, wrapped at 100 columns.
  std::string usage(std::string_view intro) const;

 private:
  FlagDeclaration declare(std::string name, Flag::Target target, std::string help);
  void checkNewName(const std::string& name) const;

  friend class FlagDeclaration;
  std::vector<std::unique_ptr<Flag>> flags_;
};

}  // namespace tessera::kernel::runtime

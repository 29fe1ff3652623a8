#pragma once

/// A module's parameters (its modules.json `parameters`, plus the agent flags routed to it) and
/// the typed readers every module parses them with, so that all modules accept the same
/// spellings as the kernel's flags (Mesos's) and report errors the same way.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// The `parameters` of a module's entry in modules.json, in order.
class TESSERA_API Parameters {
 public:
  Parameters() = default;
  explicit Parameters(std::vector<std::pair<std::string, std::string>> entries)
      : entries_(std::move(entries)) {}

  /// The value of the last entry with `key`, if any.
  std::optional<std::string> get(std::string_view key) const;
  /// The value of `key`, or `fallback` when absent.
  std::string getOr(std::string_view key, std::string_view fallback) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// Parses a boolean as Mesos's flags do: `true`/`1` or `false`/`0`. Errors: InvalidArgument
/// naming the text.
[[nodiscard]] TESSERA_API Result<bool> parseBool(std::string_view text);

/// Parses a size as stout's `Bytes::parse` does: `<digits><unit>` with unit `B`, `KB`, `MB`,
/// `GB` or `TB` (any case), 1024-based, no fractions, no space. Errors: InvalidArgument naming
/// the text, e.g. `'1.5GB' is not a valid size: fractions are not allowed`; also when the size
/// does not fit in 64 bits.
[[nodiscard]] TESSERA_API Result<uint64_t> parseBytes(std::string_view text);

/// Parses a decimal 64-bit integer (an optional `-`, digits, nothing else). Errors:
/// InvalidArgument naming the text.
[[nodiscard]] TESSERA_API Result<int64_t> parseInt(std::string_view text);

/// Reads a module's parameters by name and type. Each reader looks at the last entry with its
/// key (as Parameters::get) and returns the fallback when there is none; a value that does not
/// parse is an InvalidArgument error naming the parameter: `parameter 'allocation_interval':
/// '5s' is not a valid duration: ...`. Every key asked about is remembered, so that after
/// reading a module can call rejectUnknown() to refuse the keys it never asked for.
/// Not thread-safe; meant to live for the duration of a module's factory.
class TESSERA_API ParameterReader {
 public:
  /// `parameters` must outlive the reader.
  explicit ParameterReader(const Parameters& parameters) : parameters_(parameters) {}

  /// The raw text, unchanged.
  std::optional<std::string> string(std::string_view key);
  std::string string(std::string_view key, std::string_view fallback);
  /// A duration in parseDuration()'s grammar (tessera/api/duration.h).
  Result<std::optional<std::chrono::nanoseconds>> duration(std::string_view key);
  Result<std::chrono::nanoseconds> duration(std::string_view key,
                                            std::chrono::nanoseconds fallback);
  /// A boolean in parseBool()'s grammar.
  Result<std::optional<bool>> boolean(std::string_view key);
  Result<bool> boolean(std::string_view key, bool fallback);
  /// A size in bytes in parseBytes()'s grammar.
  Result<std::optional<uint64_t>> bytes(std::string_view key);
  Result<uint64_t> bytes(std::string_view key, uint64_t fallback);
  /// A decimal integer in parseInt()'s grammar.
  Result<std::optional<int64_t>> integer(std::string_view key);
  Result<int64_t> integer(std::string_view key, int64_t fallback);
  /// A comma-separated list, each item trimmed of blanks, empty items dropped; absent is empty.
  std::vector<std::string> list(std::string_view key);

  /// An error for a parameter whose value parsed but is out of range: `parameter '<key>':
  /// <message>`.
  static Status invalid(std::string_view key, std::string_view message);

  /// OK if every entry's key was asked about by a reader above; otherwise InvalidArgument
  /// naming the unknown keys and the known ones: `unknown parameter 'docker_socket' (known:
  /// default_grace_period)`.
  Status rejectUnknown() const;

 private:
  std::optional<std::string> raw(std::string_view key);

  const Parameters& parameters_;
  std::vector<std::string> known_;
};

}  // namespace tessera::api

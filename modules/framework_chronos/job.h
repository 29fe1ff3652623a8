#pragma once

// A Chronos job: the fields of Chronos's job JSON (its names and defaults), the counters the
// server keeps, and what Tessera adds (a cron schedule, Metronome's concurrencyPolicy and
// startingDeadlineSeconds). Parsed from and written as compact one-line JSON, the way Chronos's
// REST API sends and takes it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::modules::chronos {

/// One entry of `environmentVariables`.
struct EnvironmentVariable {
  std::string name;
  std::string value;
};

/// One entry of `fetch` (Chronos 3's form of `uris`).
struct FetchUri {
  std::string uri;
  bool executable = false;
  bool extract = true;
  bool cache = false;
  std::string outputFile;
};

/// One entry of `container.volumes`.
struct Volume {
  std::string containerPath;
  std::string hostPath;
  std::string mode = "RW";  ///< RO or RW
};

/// `container`: a Docker image for the job's command.
struct Container {
  std::string type = "DOCKER";
  std::string image;
  std::string network = "HOST";  ///< HOST, BRIDGE, NONE
  bool forcePullImage = false;
  std::vector<Volume> volumes;
};

/// What the job does when a run is due while the previous one still runs.
enum class ConcurrencyPolicy { kAllow, kForbid };

/// Which form of the API posts a job: `iso8601` needs a schedule (or a cron), `dependency`
/// needs parents.
enum class JobKind { kScheduled, kDependent };

/// A job: Chronos's fields with Chronos's defaults.
struct Job {
  std::string name;
  std::string command;
  bool shell = true;
  std::vector<std::string> arguments;
  std::string schedule;          ///< `R[n]/[start]/period`; empty for a dependent or cron job
  std::string scheduleTimeZone;  ///< IANA zone; empty = the start's own offset (UTC)
  std::string epsilon = "PT60S";
  std::vector<std::string> parents;
  int64_t retries = 2;
  bool async = false;
  bool disabled = false;
  bool concurrent = false;
  bool softError = false;
  double cpus = 0.1;
  double mem = 128;
  double disk = 256;
  std::string owner;
  std::string ownerName;
  std::string description;
  std::optional<Container> container;
  std::vector<EnvironmentVariable> environmentVariables;
  std::vector<std::vector<std::string>> constraints;  ///< [attribute, operator(, value)]
  std::vector<std::string> uris;
  std::vector<FetchUri> fetch;
  std::string runAsUser = "root";
  bool highPriority = false;

  // Beyond Chronos.
  std::string cron;  ///< 5-field cron expression (in scheduleTimeZone); excludes `schedule`
  ConcurrencyPolicy concurrencyPolicy = ConcurrencyPolicy::kAllow;
  std::optional<int64_t> startingDeadlineSeconds;

  // Kept by the server; taken from input only when reading the state store.
  int64_t successCount = 0;
  int64_t errorCount = 0;
  std::string lastSuccess;  ///< `2026-01-01T00:00:00.000Z`, empty when never
  std::string lastError;
  int64_t errorsSinceLastSuccess = 0;

  JobKind kind() const { return parents.empty() ? JobKind::kScheduled : JobKind::kDependent; }
  /// True when the job may overlap its own runs (`concurrent`, unless FORBID).
  bool allowsOverlap() const {
    return concurrent && concurrencyPolicy == ConcurrencyPolicy::kAllow;
  }
};

/// Parses a job from its JSON (as POSTed to `iso8601` or `dependency`). Unknown fields are
/// ignored (Chronos's clients send read-only ones back). With `withServerFields`, the
/// counters are read as well (state store), else they stay zero. Errors: InvalidArgument naming
/// the field (a malformed body, a name not matching `[\w.-]+`, a negative resource, ...).
api::Result<Job> parseJob(std::string_view json, bool withServerFields = false);

/// Checks what parseJob() cannot see from the JSON's shape: a command (or a container), and
/// exactly the schedule `kind` needs (schedule or cron for kScheduled, parents for
/// kDependent). Errors: InvalidArgument.
api::Status validateJob(const Job& job, JobKind kind);

/// The job as compact one-line JSON, Chronos's field names, server counters included.
std::string toJson(const Job& job);

/// A job's store record is written at every launch and end of a run. Its fields that only a
/// POST or PUT changes are kept as text per job, the run state (`schedule`, `disabled`, the
/// server-kept counters), which the scheduler changes as it runs the job, is appended each time.
/// openSpecJson(): the job's JSON object opened (`{"name":...`, no closing brace) with every
/// field but the run state.
std::string openSpecJson(const Job& job);
/// Appends the run state's fields (`,"schedule":...`) to an object's text opened by openSpecJson().
void appendRunStateMembers(std::string& out, const Job& job);

/// True when `name` is a valid job name (`[\w.-]+`, not "." or "..").
bool isValidJobName(std::string_view name);

/// Seconds of an ISO-8601 duration such as `PT60S`, `PT1M30S`, `P1DT2H` (schedule.h's
/// parsePeriod(), without years or months: an epsilon is a fixed time). InvalidArgument otherwise.
api::Result<int64_t> parseDurationSeconds(std::string_view text);

}  // namespace tessera::modules::chronos

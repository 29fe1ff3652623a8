#include "modules/framework_chronos/job.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cctype>
#include <cmath>
#include <iterator>

#include "modules/framework_chronos/schedule.h"
#include "tessera/api/json.h"

namespace tessera::modules::chronos {

namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// Reads the fields of one JSON object into C++ values; the first error wins and names the field
// (with `prefix` for nested objects: "container.image").
class Reader {
 public:
  Reader(Object::Ptr object, std::string prefix) : object_(std::move(object)), prefix_(prefix) {}

  api::Status status() const { return status_; }
  bool has(const std::string& key) const { return object_->has(key) && !object_->isNull(key); }

  void string(const std::string& key, std::string& out) {
    if (!has(key) || !status_) return;
    Var value = object_->get(key);
    if (!value.isString()) return fail(key, "a string");
    out = value.convert<std::string>();
  }
  void boolean(const std::string& key, bool& out) {
    if (!has(key) || !status_) return;
    Var value = object_->get(key);
    if (!value.isBoolean()) return fail(key, "true or false");
    out = value.convert<bool>();
  }
  void number(const std::string& key, double& out) {
    if (!has(key) || !status_) return;
    Var value = object_->get(key);
    if (!value.isNumeric()) return fail(key, "a number");
    out = value.convert<double>();
    if (!std::isfinite(out) || out < 0) return fail(key, "a number of at least 0");
  }
  void integer(const std::string& key, int64_t& out) {
    if (!has(key) || !status_) return;
    Var value = object_->get(key);
    if (!value.isNumeric()) return fail(key, "an integer");
    double number = value.convert<double>();
    if (number != std::floor(number) || number < 0 || number > 9.0e15) {
      return fail(key, "an integer of at least 0");
    }
    out = static_cast<int64_t>(number);
  }
  void strings(const std::string& key, std::vector<std::string>& out) {
    if (!has(key) || !status_) return;
    Array::Ptr array = object_->getArray(key);
    if (!array) return fail(key, "an array of strings");
    out.clear();
    for (size_t i = 0; i < array->size(); ++i) {
      Var item = array->get(static_cast<unsigned>(i));
      if (!item.isString()) return fail(key, "an array of strings");
      out.push_back(item.convert<std::string>());
    }
  }
  // Calls `each` with a Reader for every object of the array `key`.
  template <typename Each>
  void objects(const std::string& key, Each each) {
    if (!has(key) || !status_) return;
    Array::Ptr array = object_->getArray(key);
    if (!array) return fail(key, "an array of objects");
    for (size_t i = 0; i < array->size() && status_; ++i) {
      Object::Ptr item = array->getObject(static_cast<unsigned>(i));
      if (!item) return fail(key, "an array of objects");
      Reader reader(item, fmt::format("{}{}[{}].", prefix_, key, i));
      each(reader);
      if (!reader.status()) status_ = reader.status();
    }
  }
  Object::Ptr object(const std::string& key) {
    if (!has(key) || !status_) return nullptr;
    Object::Ptr item = object_->getObject(key);
    if (!item) fail(key, "an object");
    return item;
  }
  void fail(const std::string& key, std::string_view expected) {
    if (status_) status_ = api::invalidArgument("field '{}{}' must be {}", prefix_, key, expected);
  }
  void failWith(api::Status status) {
    if (status_) status_ = std::move(status);
  }
  const std::string& prefix() const { return prefix_; }

 private:
  Object::Ptr object_;
  std::string prefix_;
  api::Status status_ = api::Status::ok();
};

// Compact JSON, fields in the order they are written.
class Writer {
 public:
  explicit Writer(size_t capacity = 0) {
    out_.reserve(capacity);
    out_.push_back('{');
  }
  /// Appends members to `out`, an object's text still open (its members so far, no `}`).
  explicit Writer(std::string&& out) : out_(std::move(out)) {}
  std::string open() && { return std::move(out_); }
  std::string done() && {
    out_.push_back('}');
    return std::move(out_);
  }
  void string(std::string_view key, std::string_view value) {
    this->key(key);
    api::appendJsonString(out_, value);
  }
  void boolean(std::string_view key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
  }
  void number(std::string_view key, double value) {
    this->key(key);
    fmt::format_to(std::back_inserter(out_), "{}", value);
  }
  void integer(std::string_view key, int64_t value) {
    this->key(key);
    out_ += std::to_string(value);
  }
  void strings(std::string_view key, const std::vector<std::string>& values) {
    this->key(key);
    out_ += stringArray(values);
  }
  void raw(std::string_view key, std::string_view json) {
    this->key(key);
    out_ += json;
  }
  static std::string stringArray(const std::vector<std::string>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back(',');
      api::appendJsonString(out, values[i]);
    }
    return out + "]";
  }

 private:
  // Keys are this file's own literals: nothing in them needs escaping.
  void key(std::string_view key) {
    if (!out_.empty() && out_.back() != '{') out_.push_back(',');
    out_.push_back('"');
    out_ += key;
    out_ += "\":";
  }
  std::string out_;
};

void readContainer(Reader& parent, Container& container) {
  Object::Ptr object = parent.object("container");
  if (!object) return;
  Reader reader(object, "container.");
  reader.string("type", container.type);
  reader.string("image", container.image);
  reader.string("network", container.network);
  reader.boolean("forcePullImage", container.forcePullImage);
  if (reader.has("volumes") && reader.status()) {
    Array::Ptr volumes = object->getArray("volumes");
    for (size_t i = 0; volumes && i < volumes->size(); ++i) {
      Reader item(volumes->getObject(static_cast<unsigned>(i)),
                  fmt::format("container.volumes[{}].", i));
      Volume volume;
      item.string("containerPath", volume.containerPath);
      item.string("hostPath", volume.hostPath);
      item.string("mode", volume.mode);
      if (!item.status()) return parent.failWith(item.status());
      if (volume.containerPath.empty()) {
        return parent.failWith(api::invalidArgument(
            "field 'container.volumes[{}].containerPath' must not be empty", i));
      }
      if (volume.mode != "RW" && volume.mode != "RO") {
        return parent.failWith(
            api::invalidArgument("field 'container.volumes[{}].mode' must be RO or RW", i));
      }
      container.volumes.push_back(std::move(volume));
    }
  }
  if (!reader.status()) return parent.failWith(reader.status());
  std::string type = container.type;
  for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type != "DOCKER" && type != "MESOS") {
    return parent.failWith(api::invalidArgument("field 'container.type' must be DOCKER or MESOS"));
  }
  container.type = type;
  if (container.image.empty()) {
    return parent.failWith(api::invalidArgument("field 'container.image' must not be empty"));
  }
  for (char& c : container.network) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (container.network != "HOST" && container.network != "BRIDGE" && container.network != "NONE" &&
      container.network != "USER") {
    return parent.failWith(
        api::invalidArgument("field 'container.network' must be HOST, BRIDGE, USER or NONE"));
  }
}

void readConstraints(Reader& reader, Object::Ptr object, Job& job) {
  if (!reader.has("constraints") || !reader.status()) return;
  Array::Ptr constraints = object->getArray("constraints");
  if (!constraints) return reader.fail("constraints", "an array of [attribute, operator, value]");
  for (size_t i = 0; i < constraints->size(); ++i) {
    Array::Ptr constraint = constraints->getArray(static_cast<unsigned>(i));
    if (!constraint || constraint->size() < 2 || constraint->size() > 3) {
      return reader.fail("constraints", "an array of [attribute, operator, value]");
    }
    std::vector<std::string> parts;
    for (size_t j = 0; j < constraint->size(); ++j) {
      Var part = constraint->get(static_cast<unsigned>(j));
      if (!part.isString()) return reader.fail("constraints", "arrays of strings");
      parts.push_back(part.convert<std::string>());
    }
    if (parts[1] != "EQUALS" && parts[1] != "LIKE" && parts[1] != "UNLIKE") {
      return reader.failWith(api::invalidArgument(
          "constraint operator '{}' is not one of EQUALS, LIKE, UNLIKE", parts[1]));
    }
    if (parts.size() < 3) {
      return reader.failWith(
          api::invalidArgument("constraint operator '{}' needs a value", parts[1]));
    }
    job.constraints.push_back(std::move(parts));
  }
}

}  // namespace

bool isValidJobName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

api::Result<int64_t> parseDurationSeconds(std::string_view text) {
  auto period = parsePeriod(text);
  if (!period) return period.status();
  if (period->years != 0 || period->months != 0) {
    return api::invalidArgument("'{}' has years or months, which are not a fixed time", text);
  }
  return int64_t{period->weeks} * 7 * 86400 + int64_t{period->days} * 86400 + period->hours * 3600 +
         period->minutes * 60 + period->seconds;
}

api::Result<Job> parseJob(std::string_view json, bool withServerFields) {
  Object::Ptr object;
  try {
    Poco::JSON::Parser parser;
    Var parsed = parser.parse(std::string(json));
    object = parsed.extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("the body is not a JSON object: {}", e.displayText());
  } catch (const std::exception& e) {
    return api::invalidArgument("the body is not a JSON object: {}", e.what());
  }
  if (!object) return api::invalidArgument("the body is not a JSON object");

  Job job;
  Reader reader(object, "");
  reader.string("name", job.name);
  reader.string("command", job.command);
  reader.boolean("shell", job.shell);
  reader.strings("arguments", job.arguments);
  reader.string("schedule", job.schedule);
  reader.string("scheduleTimeZone", job.scheduleTimeZone);
  reader.string("epsilon", job.epsilon);
  reader.strings("parents", job.parents);
  reader.integer("retries", job.retries);
  reader.boolean("async", job.async);
  reader.boolean("disabled", job.disabled);
  reader.boolean("concurrent", job.concurrent);
  reader.boolean("softError", job.softError);
  reader.number("cpus", job.cpus);
  reader.number("mem", job.mem);
  reader.number("disk", job.disk);
  reader.string("owner", job.owner);
  reader.string("ownerName", job.ownerName);
  reader.string("description", job.description);
  reader.string("runAsUser", job.runAsUser);
  reader.boolean("highPriority", job.highPriority);
  reader.strings("uris", job.uris);
  reader.objects("environmentVariables", [&](Reader& item) {
    EnvironmentVariable variable;
    item.string("name", variable.name);
    item.string("value", variable.value);
    if (item.status() && variable.name.empty()) item.fail("name", "a non-empty string");
    job.environmentVariables.push_back(std::move(variable));
  });
  reader.objects("fetch", [&](Reader& item) {
    FetchUri uri;
    item.string("uri", uri.uri);
    item.boolean("executable", uri.executable);
    item.boolean("extract", uri.extract);
    item.boolean("cache", uri.cache);
    item.string("outputFile", uri.outputFile);
    if (item.status() && uri.uri.empty()) item.fail("uri", "a non-empty string");
    job.fetch.push_back(std::move(uri));
  });
  readConstraints(reader, object, job);
  if (reader.has("container") && reader.status()) {
    Container container;
    readContainer(reader, container);
    if (reader.status()) job.container = std::move(container);
  }
  reader.string("cron", job.cron);
  std::string policy = "ALLOW";
  reader.string("concurrencyPolicy", policy);
  if (reader.has("startingDeadlineSeconds")) {
    int64_t deadline = 0;
    reader.integer("startingDeadlineSeconds", deadline);
    job.startingDeadlineSeconds = deadline;
  }
  if (withServerFields) {
    reader.integer("successCount", job.successCount);
    reader.integer("errorCount", job.errorCount);
    reader.string("lastSuccess", job.lastSuccess);
    reader.string("lastError", job.lastError);
    reader.integer("errorsSinceLastSuccess", job.errorsSinceLastSuccess);
  }
  if (!reader.status()) return reader.status();

  if (!isValidJobName(job.name)) {
    return api::invalidArgument("job name '{}' must match [\\w.-]+", job.name);
  }
  if (policy == "ALLOW") {
    job.concurrencyPolicy = ConcurrencyPolicy::kAllow;
  } else if (policy == "FORBID") {
    job.concurrencyPolicy = ConcurrencyPolicy::kForbid;
  } else {
    return api::invalidArgument("field 'concurrencyPolicy' must be ALLOW or FORBID, not '{}'",
                                policy);
  }
  if (auto epsilon = parseDurationSeconds(job.epsilon); !epsilon) {
    return epsilon.status().withContext("field 'epsilon'");
  }
  for (const auto& parent : job.parents) {
    if (!isValidJobName(parent)) {
      return api::invalidArgument("parent '{}' is not a valid job name", parent);
    }
    if (parent == job.name) return api::invalidArgument("job '{}' names itself as parent", parent);
  }
  return job;
}

api::Status validateJob(const Job& job, JobKind kind) {
  if (job.command.empty() && !job.container) {
    return api::invalidArgument("job '{}' has no command", job.name);
  }
  if (kind == JobKind::kDependent) {
    if (job.parents.empty()) {
      return api::invalidArgument("dependent job '{}' needs 'parents'", job.name);
    }
    if (!job.schedule.empty() || !job.cron.empty()) {
      return api::invalidArgument("dependent job '{}' cannot have a schedule", job.name);
    }
    return api::Status::ok();
  }
  if (!job.parents.empty()) {
    return api::invalidArgument("scheduled job '{}' cannot have parents (POST it to dependency)",
                                job.name);
  }
  if (job.schedule.empty() == job.cron.empty()) {
    return api::invalidArgument("job '{}' needs exactly one of 'schedule' and 'cron'", job.name);
  }
  return api::Status::ok();
}

namespace {

// Which of a job's fields writeJob() writes: all (the API's view), only those a POST or PUT
// sets (the spec), or only those the scheduler changes as it runs the job.
enum class Part { kAll, kSpec, kRunState };

// The one list of a job's fields, in the API's order. kRunState fields: the schedule (advanced
// at every point), `disabled` (disable_after_failures) and the counters.
void writeJob(Writer& out, const Job& job, Part part) {
  const bool spec = part != Part::kRunState;
  const bool state = part != Part::kSpec;
  if (spec) {
    out.string("name", job.name);
    out.string("command", job.command);
    out.boolean("shell", job.shell);
    out.strings("arguments", job.arguments);
  }
  if (job.parents.empty()) {
    if (state) out.string("schedule", job.schedule);
    if (spec) out.string("scheduleTimeZone", job.scheduleTimeZone);
  } else if (spec) {
    out.strings("parents", job.parents);
  }
  if (spec) {
    out.string("epsilon", job.epsilon);
    out.integer("retries", job.retries);
    out.boolean("async", job.async);
  }
  if (state) out.boolean("disabled", job.disabled);
  if (spec) {
    out.boolean("concurrent", job.concurrent);
    out.boolean("softError", job.softError);
    out.number("cpus", job.cpus);
    out.number("mem", job.mem);
    out.number("disk", job.disk);
    out.string("owner", job.owner);
    out.string("ownerName", job.ownerName);
    out.string("description", job.description);
  }
  if (state) {
    out.integer("successCount", job.successCount);
    out.integer("errorCount", job.errorCount);
    out.string("lastSuccess", job.lastSuccess);
    out.string("lastError", job.lastError);
    out.integer("errorsSinceLastSuccess", job.errorsSinceLastSuccess);
  }
  if (!spec) return;
  if (job.container) {
    Writer container;
    container.string("type", job.container->type);
    container.string("image", job.container->image);
    container.string("network", job.container->network);
    container.boolean("forcePullImage", job.container->forcePullImage);
    std::string volumes = "[";
    for (size_t i = 0; i < job.container->volumes.size(); ++i) {
      const auto& volume = job.container->volumes[i];
      Writer item;
      item.string("containerPath", volume.containerPath);
      item.string("hostPath", volume.hostPath);
      item.string("mode", volume.mode);
      if (i > 0) volumes.push_back(',');
      volumes += std::move(item).done();
    }
    container.raw("volumes", volumes + "]");
    out.raw("container", std::move(container).done());
  }
  std::string variables = "[";
  for (size_t i = 0; i < job.environmentVariables.size(); ++i) {
    Writer item;
    item.string("name", job.environmentVariables[i].name);
    item.string("value", job.environmentVariables[i].value);
    if (i > 0) variables.push_back(',');
    variables += std::move(item).done();
  }
  out.raw("environmentVariables", variables + "]");
  std::string constraints = "[";
  for (size_t i = 0; i < job.constraints.size(); ++i) {
    if (i > 0) constraints.push_back(',');
    constraints += Writer::stringArray(job.constraints[i]);
  }
  out.raw("constraints", constraints + "]");
  out.strings("uris", job.uris);
  std::string fetch = "[";
  for (size_t i = 0; i < job.fetch.size(); ++i) {
    Writer item;
    item.string("uri", job.fetch[i].uri);
    item.boolean("executable", job.fetch[i].executable);
    item.boolean("extract", job.fetch[i].extract);
    item.boolean("cache", job.fetch[i].cache);
    if (!job.fetch[i].outputFile.empty()) item.string("outputFile", job.fetch[i].outputFile);
    if (i > 0) fetch.push_back(',');
    fetch += std::move(item).done();
  }
  out.raw("fetch", fetch + "]");
  out.string("runAsUser", job.runAsUser);
  out.boolean("highPriority", job.highPriority);
  if (!job.cron.empty()) out.string("cron", job.cron);
  out.string("concurrencyPolicy",
             job.concurrencyPolicy == ConcurrencyPolicy::kForbid ? "FORBID" : "ALLOW");
  if (job.startingDeadlineSeconds) {
    out.integer("startingDeadlineSeconds", *job.startingDeadlineSeconds);
  }
}

}  // namespace

std::string toJson(const Job& job) {
  // Room for a job with the scheduler's fields after it (its store record, ~1 kB) without
  // regrowing.
  Writer out(1536);
  writeJob(out, job, Part::kAll);
  return std::move(out).done();
}

std::string openSpecJson(const Job& job) {
  Writer out(1024);
  writeJob(out, job, Part::kSpec);
  return std::move(out).open();
}

void appendRunStateMembers(std::string& out, const Job& job) {
  Writer writer(std::move(out));
  writeJob(writer, job, Part::kRunState);
  out = std::move(writer).open();
}

}  // namespace tessera::modules::chronos

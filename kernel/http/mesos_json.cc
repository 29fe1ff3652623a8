#include "kernel/http/mesos_json.h"

#include <fmt/format.h>

#include <map>
#include <variant>

#include "kernel/net/v1_json.h"

namespace tessera::kernel::http {

std::string rangesText(const std::vector<api::ValueRange>& ranges) {
  std::string out = "[";
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) out += ", ";
    fmt::format_to(std::back_inserter(out), "{}-{}", ranges[i].begin, ranges[i].end);
  }
  return out + "]";
}

std::string setText(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out + "}";
}

namespace {

// Members sorted by name, as Mesos's JSON::Object (a std::map) prints them.
using SortedFields = std::map<std::string, std::variant<double, std::string>, std::less<>>;

void writeSorted(JsonWriter& w, const SortedFields& fields) {
  w.beginObject();
  for (const auto& [name, value] : fields) {
    w.key(name);
    std::visit([&](const auto& v) { w.value(v); }, value);
  }
  w.endObject();
}

}  // namespace

void writeResources(JsonWriter& w, const api::Resources& resources) {
  SortedFields fields = {{"cpus", 0.0}, {"disk", 0.0}, {"gpus", 0.0}, {"mem", 0.0}};
  const api::Resources flat = resources.flatten();
  for (const auto& entry : flat.entries()) {
    switch (entry.type) {
      case api::ResourceType::kScalar:
        fields[entry.name] = flat.scalar(entry.name);
        break;
      case api::ResourceType::kRanges:
        fields[entry.name] = rangesText(flat.ranges(entry.name));
        break;
      case api::ResourceType::kSet:
        fields[entry.name] = setText(entry.items);
        break;
    }
  }
  writeSorted(w, fields);
}

void writeResourcesArray(JsonWriter& w, const api::Resources& resources) {
  w.raw(resources.toJson());
}

std::map<std::string, api::Resources> reservedByRole(const api::Resources& resources) {
  std::map<std::string, api::Resources> byRole;
  for (const auto& entry : resources.entries()) {
    if (!entry.isReserved()) continue;
    std::string role(entry.reservationRole());
    if (!byRole.count(role)) byRole[role] = resources.reserved(role);
  }
  return byRole;
}

void writeReservationFields(JsonWriter& w, const api::Resources& total) {
  const auto byRole = reservedByRole(total);
  w.key("reserved_resources").beginObject();
  for (const auto& [role, reserved] : byRole) {
    w.key(role);
    writeResources(w, reserved);
  }
  w.endObject();
  w.key("reserved_resources_full").beginObject();
  for (const auto& [role, reserved] : byRole) {
    w.key(role);
    writeResourcesArray(w, reserved);
  }
  w.endObject();
  const api::Resources unreserved = total.unreserved();
  w.key("unreserved_resources");
  writeResources(w, unreserved);
  w.key("unreserved_resources_full");
  writeResourcesArray(w, unreserved);
}

void writeAttributes(JsonWriter& w,
                     const google::protobuf::RepeatedPtrField<v1::Attribute>& attributes) {
  SortedFields fields;
  for (const auto& attribute : attributes) {
    switch (attribute.type()) {
      case v1::Value::SCALAR:
        fields[attribute.name()] = attribute.scalar().value();
        break;
      case v1::Value::RANGES: {
        std::vector<api::ValueRange> ranges;
        for (const auto& range : attribute.ranges().range()) {
          ranges.push_back({range.begin(), range.end()});
        }
        fields[attribute.name()] = rangesText(ranges);
        break;
      }
      case v1::Value::SET:
        fields[attribute.name()] =
            setText({attribute.set().item().begin(), attribute.set().item().end()});
        break;
      default:
        fields[attribute.name()] = attribute.text().value();
        break;
    }
  }
  writeSorted(w, fields);
}

void writeV1(JsonWriter& w, const google::protobuf::Message& message) {
  w.raw(net::messageToV1Json(message));
}

void writeTask(JsonWriter& w, const TaskView& task) {
  w.beginObject();
  w.field("id", task.info.task_id().value());
  w.field("name", task.info.name());
  w.field("framework_id", task.frameworkId);
  w.field("executor_id", task.info.executor().executor_id().value());
  w.field("slave_id", task.agentId);
  w.field("agent_id", task.agentId);
  w.field("state", v1::TaskState_Name(task.state));
  w.field("role", task.role.empty() ? std::string_view("*") : task.role);
  w.key("resources");
  writeResources(w, task.resources);
  w.key("statuses").beginArray();
  for (const auto& [state, timestamp] : task.statuses) {
    w.beginObject().field("state", v1::TaskState_Name(state)).field("timestamp", timestamp);
    w.endObject();
  }
  w.endArray();
  if (task.info.has_labels()) {
    w.key("labels");
    writeV1(w, task.info.labels());
  }
  w.endObject();
}

void writeExecutor(JsonWriter& w, const ExecutorView& executor, std::span<const TaskView> tasks,
                   std::span<const TaskView> completedTasks) {
  w.beginObject();
  w.field("id", executor.id);
  w.field("name", executor.name);
  w.field("source", executor.source);
  w.field("container", executor.container);
  w.field("directory", executor.directory);
  w.key("resources");
  writeResources(w, executor.resources);
  w.field("framework_id", executor.frameworkId);
  w.key("tasks").beginArray();
  for (const TaskView& task : tasks) writeTask(w, task);
  w.endArray();
  w.key("queued_tasks").beginArray().endArray();
  w.key("completed_tasks").beginArray();
  for (const TaskView& task : completedTasks) writeTask(w, task);
  w.endArray();
  w.endObject();
}

void writeFrameworkFields(JsonWriter& w, std::string_view id, const v1::FrameworkInfo& info,
                          std::span<const std::string> roles) {
  w.field("id", id);
  w.field("name", info.name());
  w.field("user", info.user());
  w.field("hostname", info.hostname());
  w.field("principal", info.principal());
  w.field("webui_url", info.webui_url());
  w.field("failover_timeout", info.failover_timeout());
  w.field("checkpoint", info.checkpoint());
  w.key("roles").beginArray();
  for (const auto& role : roles) w.value(role);
  w.endArray();
  w.field("role", roles.empty() ? std::string_view("*") : std::string_view(roles.front()));
  w.key("capabilities").beginArray();
  for (const auto& capability : info.capabilities()) {
    w.value(v1::FrameworkInfo::Capability::Type_Name(capability.type()));
  }
  w.endArray();
}

void writeAgentFields(JsonWriter& w, std::string_view id, std::string_view pid,
                      const v1::AgentInfo& info) {
  w.field("id", id);
  w.field("pid", pid);
  w.field("hostname", info.hostname());
  w.field("port", info.port());
  w.key("attributes");
  writeAttributes(w, info.attributes());
}

}  // namespace tessera::kernel::http

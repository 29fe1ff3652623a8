#pragma once

/// Mesos-shaped JSON, written once for the master and the agent alike: the resources object
/// (`{"cpus":1,"mem":128,"disk":0,"gpus":0,"ports":"[31000-31005, 31007-32000]"}`), the v1
/// `Resource` array, attributes, tasks, executors and the FrameworkInfo / AgentInfo fields of
/// `/state`. Field names and value forms follow Mesos's `/state` (src/common/http.cpp model()).

#include <google/protobuf/message.h>
#include <google/protobuf/repeated_ptr_field.h>

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernel/http/json_writer.h"
#include "tessera/api/resources.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::http {

/// Mesos's text of ranges: `[31000-31005, 31007-32000]` (", " between ranges, as Mesos's
/// `operator<<(Value::Ranges)`), `[]` when empty.
std::string rangesText(const std::vector<api::ValueRange>& ranges);
/// Mesos's text of a set: `{a, b}`.
std::string setText(const std::vector<std::string>& items);

/// The resources-as-object form of `/state`: every name once with its amount over all roles;
/// scalars as numbers, ranges and sets as their text; cpus, mem, disk and gpus always present.
void writeResources(JsonWriter& w, const api::Resources& resources);
/// The v1 operator API's `[Resource]` array (post-refinement: `reservations`, no `role`).
void writeResourcesArray(JsonWriter& w, const api::Resources& resources);
/// `{"name": value}`: scalars as numbers, text as strings, ranges and sets as their text.
void writeAttributes(JsonWriter& w,
                     const google::protobuf::RepeatedPtrField<v1::Attribute>& attributes);
/// Everything reserved in `resources`, static and dynamic, grouped by the role of each entry's
/// innermost reservation (Mesos's `reservations()` keyed by role).
std::map<std::string, api::Resources> reservedByRole(const api::Resources& resources);
/// The reservation members of an agent object (master `/slaves`, the agent's `/state`), inside
/// an open object: `reserved_resources` (role -> resources object), `reserved_resources_full`
/// (role -> `[Resource]`), `unreserved_resources` and `unreserved_resources_full`, of `total`.
void writeReservationFields(JsonWriter& w, const api::Resources& total);
/// A protobuf message in Mesos v1 JSON (the v1 codec's output, embedded as is).
void writeV1(JsonWriter& w, const google::protobuf::Message& message);

/// What a task object of `/state` and `/tasks` is made of; references, so nothing is copied.
struct TaskView {
  const v1::TaskInfo& info;  ///< task id, name, executor id, labels
  std::string_view frameworkId;
  std::string_view agentId;
  v1::TaskState state;
  std::string_view role;  ///< empty is written as "*"
  const api::Resources& resources;
  /// (state, timestamp in seconds) in the order they happened.
  const std::vector<std::pair<v1::TaskState, double>>& statuses;
};
/// `{"id","name","framework_id","executor_id","slave_id","agent_id","state","role",
///   "resources","statuses":[{"state","timestamp"}], "labels" (when set)}`.
void writeTask(JsonWriter& w, const TaskView& task);

/// What an executor object of the agent's `/state` is made of.
struct ExecutorView {
  std::string_view id;
  std::string_view name;
  std::string_view source;
  std::string_view container;
  std::string_view directory;
  std::string_view frameworkId;
  const api::Resources& resources;
};
/// `{"id","name","source","container","directory","resources","framework_id","tasks":[..],
///   "queued_tasks":[],"completed_tasks":[..]}`.
void writeExecutor(JsonWriter& w, const ExecutorView& executor, std::span<const TaskView> tasks,
                   std::span<const TaskView> completedTasks);

/// The FrameworkInfo fields of a framework object (master and agent `/state`), inside an open
/// object: id, name, user, hostname, principal, webui_url, failover_timeout, checkpoint,
/// roles, role (the first of `roles`, "*" when none) and capabilities (their names).
void writeFrameworkFields(JsonWriter& w, std::string_view id, const v1::FrameworkInfo& info,
                          std::span<const std::string> roles);

/// The AgentInfo fields of an agent object (master `/state` slaves, the agent's own `/state`),
/// inside an open object: id, pid, hostname, port, attributes.
void writeAgentFields(JsonWriter& w, std::string_view id, std::string_view pid,
                      const v1::AgentInfo& info);

}  // namespace tessera::kernel::http

#include "modules/framework_chronos/graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>

namespace tessera::modules::chronos {

std::string_view lastStatusName(LastStatus status) {
  switch (status) {
    case LastStatus::kSuccess:
      return "success";
    case LastStatus::kFailure:
      return "failure";
    case LastStatus::kFresh:
      break;
  }
  return "fresh";
}

std::string_view jobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kIdle:
      break;
  }
  return "idle";
}

LastStatus lastStatusOf(std::optional<std::chrono::sys_seconds> lastSuccess,
                        std::optional<std::chrono::sys_seconds> lastError) {
  if (!lastSuccess && !lastError) return LastStatus::kFresh;
  if (!lastSuccess) return LastStatus::kFailure;
  if (!lastError) return LastStatus::kSuccess;
  return *lastSuccess > *lastError ? LastStatus::kSuccess : LastStatus::kFailure;
}

api::Status JobGraph::addJob(std::string_view name) {
  if (name.empty()) return api::invalidArgument("a job in the graph needs a name");
  if (nodes_.find(name) != nodes_.end()) {
    return api::alreadyExists("job '{}' is already in the graph", name);
  }
  nodes_.emplace(std::string(name), Node{});
  return api::Status::ok();
}

api::Result<std::vector<std::string>> JobGraph::removeJob(std::string_view name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return api::notFound("job '{}' is not in the graph", name);
  std::vector<std::string> orphans(it->second.children.begin(), it->second.children.end());
  for (const auto& parent : it->second.parents) {
    auto p = nodes_.find(parent);
    if (p != nodes_.end()) p->second.children.erase(it->first);
  }
  for (const auto& child : it->second.children) {
    auto c = nodes_.find(child);
    if (c == nodes_.end()) continue;
    c->second.parents.erase(it->first);
    c->second.succeededParents.erase(it->first);
  }
  nodes_.erase(it);
  return orphans;
}

bool JobGraph::contains(std::string_view name) const { return nodes_.find(name) != nodes_.end(); }

api::Status JobGraph::setParents(std::string_view child, const std::vector<std::string>& parents) {
  auto it = nodes_.find(child);
  if (it == nodes_.end()) return api::notFound("job '{}' is not in the graph", child);
  std::set<std::string, std::less<>> wanted(parents.begin(), parents.end());
  for (const auto& parent : parents) {
    if (parent == child) {
      return api::invalidArgument("job '{}' cannot be its own parent", child);
    }
    if (nodes_.find(parent) == nodes_.end()) {
      return api::invalidArgument("parent '{}' of job '{}' is not a job", parent, child);
    }
  }
  // A link parent -> child closes a cycle when the parent descends from the child. Walk the
  // child's descendants breadth-first, remembering how each was reached to name the cycle.
  // Only new links can close one, and only when the child has descendants.
  bool newLink = std::any_of(wanted.begin(), wanted.end(), [&](const std::string& parent) {
    return it->second.parents.count(parent) == 0;
  });
  std::map<std::string, std::string, std::less<>> reachedFrom;
  std::deque<std::string> queue{std::string(child)};
  reachedFrom.emplace(std::string(child), std::string());
  while (newLink && !it->second.children.empty() && !queue.empty()) {
    std::string current = std::move(queue.front());
    queue.pop_front();
    for (const auto& next : nodes_.at(current).children) {
      if (reachedFrom.emplace(next, current).second) queue.push_back(next);
    }
  }
  for (const auto& parent : wanted) {
    if (reachedFrom.find(parent) == reachedFrom.end()) continue;
    // child -> ... -> parent, then the new link parent -> child.
    std::vector<std::string> path{parent};
    while (path.back() != child) path.push_back(reachedFrom.at(path.back()));
    std::reverse(path.begin(), path.end());
    path.emplace_back(child);
    std::string cycle;
    for (const auto& name : path) {
      cycle += cycle.empty() ? fmt::format("'{}'", name) : fmt::format(" -> '{}'", name);
    }
    return api::invalidArgument("parent '{}' of job '{}' would close a cycle: {}", parent, child,
                                cycle);
  }
  Node& node = it->second;
  for (const auto& old : node.parents) {
    if (wanted.count(old) == 0) nodes_.at(old).children.erase(it->first);
  }
  for (const auto& parent : wanted) nodes_.at(parent).children.insert(it->first);
  std::set<std::string, std::less<>> kept;
  for (const auto& parent : node.succeededParents) {
    if (wanted.count(parent) != 0) kept.insert(parent);
  }
  node.succeededParents = std::move(kept);
  node.parents = std::move(wanted);
  return api::Status::ok();
}

std::vector<std::string> JobGraph::parents(std::string_view name) const {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return {};
  return {it->second.parents.begin(), it->second.parents.end()};
}

std::vector<std::string> JobGraph::children(std::string_view name) const {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return {};
  return {it->second.children.begin(), it->second.children.end()};
}

std::vector<std::string> JobGraph::jobs() const {
  std::vector<std::string> names;
  names.reserve(nodes_.size());
  for (const auto& [name, node] : nodes_) names.push_back(name);
  return names;
}

bool JobGraph::readyNode(const Node& node) const {
  return !node.parents.empty() && node.succeededParents.size() == node.parents.size();
}

std::vector<std::string> JobGraph::parentSucceeded(std::string_view parent, TimePoint at) {
  std::vector<std::string> ready;
  auto it = nodes_.find(parent);
  if (it == nodes_.end()) return ready;
  it->second.lastSuccess = at;
  for (const auto& childName : it->second.children) {
    Node& child = nodes_.at(childName);
    bool before = readyNode(child);
    child.succeededParents.insert(it->first);
    if (!before && readyNode(child)) ready.push_back(childName);
  }
  return ready;
}

void JobGraph::childStarted(std::string_view child, TimePoint at) {
  auto it = nodes_.find(child);
  if (it == nodes_.end()) return;
  it->second.lastStart = at;
  it->second.succeededParents.clear();
}

bool JobGraph::ready(std::string_view child) const {
  auto it = nodes_.find(child);
  return it != nodes_.end() && readyNode(it->second);
}

void JobGraph::restore(std::string_view name, std::optional<TimePoint> lastSuccess,
                       std::optional<TimePoint> lastStart) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  it->second.lastSuccess = lastSuccess;
  it->second.lastStart = lastStart;
  // Links into this job, and links out of it, by the stored times.
  auto relink = [&](const std::string& parentName, Node& child) {
    const Node& parent = nodes_.at(parentName);
    bool succeeded =
        parent.lastSuccess && (!child.lastStart || *parent.lastSuccess > *child.lastStart);
    if (succeeded) {
      child.succeededParents.insert(parentName);
    } else {
      child.succeededParents.erase(parentName);
    }
  };
  for (const auto& parent : it->second.parents) relink(parent, it->second);
  for (const auto& child : it->second.children) relink(it->first, nodes_.at(child));
}

std::string JobGraph::toDot() const {
  std::map<std::string_view, size_t> ids;
  std::string out = "digraph G {\n";
  for (const auto& [name, node] : nodes_) {
    size_t id = ids.size() + 1;
    ids.emplace(name, id);
    std::string label;
    for (char c : name) {
      if (c == '"' || c == '\\') label += '\\';
      label += c;
    }
    out += fmt::format("  {} [ label=\"{}\" ];\n", id, label);
  }
  for (const auto& [name, node] : nodes_) {
    for (const auto& child : node.children) {
      out += fmt::format("  {} -> {};\n", ids.at(name), ids.at(child));
    }
  }
  out += "}\n";
  return out;
}

std::string JobGraph::toCsv(const StatusFn& status) const {
  std::string out;
  for (const auto& [name, node] : nodes_) {
    auto [last, state] = status(name);
    out += fmt::format("node,{},{},{}\n", name, lastStatusName(last), jobStateName(state));
  }
  for (const auto& [name, node] : nodes_) {
    for (const auto& child : node.children) out += fmt::format("link,{},{}\n", name, child);
  }
  return out;
}

}  // namespace tessera::modules::chronos

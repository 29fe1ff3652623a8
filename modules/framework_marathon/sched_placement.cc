#include "modules/framework_marathon/sched_placement.h"

#include <Poco/Exception.h>
#include <Poco/RegularExpression.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>

namespace tessera::modules::marathon {

namespace {

std::string scalarText(double value) {
  // Mesos prints attribute scalars with up to three decimals and no trailing zeros.
  std::string text = fmt::format("{:.3f}", value);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

std::string attributeText(const v1::Attribute& attribute) {
  switch (attribute.type()) {
    case v1::Value::SCALAR:
      return scalarText(attribute.scalar().value());
    case v1::Value::RANGES: {
      std::string out = "[";
      for (int i = 0; i < attribute.ranges().range_size(); ++i) {
        const auto& range = attribute.ranges().range(i);
        if (i > 0) out += ", ";
        out += fmt::format("{}-{}", range.begin(), range.end());
      }
      return out + "]";
    }
    case v1::Value::SET: {
      std::string out = "{";
      for (int i = 0; i < attribute.set().item_size(); ++i) {
        if (i > 0) out += ",";
        out += attribute.set().item(i);
      }
      return out + "}";
    }
    case v1::Value::TEXT:
      return attribute.text().value();
  }
  return attribute.text().value();
}

// Marathon matches with Java's String.matches (the whole value); PCRE's dialect is close to
// Java's. Poco's match() is anchored and must cover the whole subject.
bool fullMatch(const std::string& pattern, const std::string& value) {
  try {
    return Poco::RegularExpression(pattern).match(value);
  } catch (const Poco::Exception&) {
    return false;  // an invalid pattern never matches
  }
}

std::optional<int> parseCount(const std::optional<std::string>& value) {
  if (!value || value->empty()) return std::nullopt;
  try {
    size_t used = 0;
    int count = std::stoi(*value, &used);
    if (used != value->size()) return std::nullopt;
    return count;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool meets(const Constraint& constraint, const AgentFacts& agent,
           const std::vector<const AgentFacts*>& placed) {
  const std::optional<std::string> value = fieldValue(agent, constraint.field);
  if (!value) return constraint.op == "UNLIKE";
  // How many of the app's tasks run where the field has each value.
  std::map<std::string, int> groups;
  for (const AgentFacts* other : placed) {
    if (other == nullptr) continue;
    if (auto v = fieldValue(*other, constraint.field)) ++groups[*v];
  }
  auto here = [&] {
    auto it = groups.find(*value);
    return it == groups.end() ? 0 : it->second;
  };
  const std::string& op = constraint.op;
  if (op == "UNIQUE") return here() == 0;
  if (op == "CLUSTER") {
    if (constraint.value && !constraint.value->empty()) return *value == *constraint.value;
    // Without a value: wherever the first task went.
    return groups.empty() || (groups.size() == 1 && groups.begin()->first == *value);
  }
  if (op == "GROUP_BY") {
    // Spread evenly: a value may take a task while it has no more than the smallest group;
    // with a count, values not seen yet are groups of zero until that many were seen.
    const int wanted = parseCount(constraint.value).value_or(0);
    int smallest = 0;
    if (static_cast<int>(groups.size()) >= wanted && !groups.empty()) {
      smallest = std::min_element(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
                   return a.second < b.second;
                 })->second;
    }
    return here() <= smallest;
  }
  if (op == "LIKE") return constraint.value && fullMatch(*constraint.value, *value);
  if (op == "UNLIKE") return !constraint.value || !fullMatch(*constraint.value, *value);
  if (op == "MAX_PER") {
    auto limit = parseCount(constraint.value);
    return limit && here() < *limit;
  }
  if (op == "IS") return constraint.value && *value == *constraint.value;
  return false;
}

std::string_view roleOf(const v1::Resource& resource) {
  if (resource.reservations_size() > 0) return resource.reservations().rbegin()->role();
  return resource.role();
}

bool isReserved(const v1::Resource& resource) {
  return resource.reservations_size() > 0 || (resource.has_role() && resource.role() != "*");
}

int64_t millisOf(double value) { return std::llround(value * 1000.0); }

bool portIn(const v1::Resource& resource, uint64_t port) {
  for (const auto& range : resource.ranges().range()) {
    if (range.begin() <= port && port <= range.end()) return true;
  }
  return false;
}

void removePort(v1::Resource& resource, uint64_t port) {
  v1::Value::Ranges kept;
  for (const auto& range : resource.ranges().range()) {
    if (port < range.begin() || port > range.end()) {
      *kept.add_range() = range;
      continue;
    }
    if (range.begin() < port) {
      auto* low = kept.add_range();
      low->set_begin(range.begin());
      low->set_end(port - 1);
    }
    if (port < range.end()) {
      auto* high = kept.add_range();
      high->set_begin(port + 1);
      high->set_end(range.end());
    }
  }
  *resource.mutable_ranges() = std::move(kept);
}

}  // namespace

AgentFacts agentFacts(const v1::Offer& offer) {
  AgentFacts facts;
  facts.hostname = offer.hostname();
  for (const auto& attribute : offer.attributes()) {
    facts.attributes[attribute.name()] = attributeText(attribute);
  }
  return facts;
}

std::optional<std::string> fieldValue(const AgentFacts& agent, std::string_view field) {
  if (field == "hostname") return agent.hostname;
  auto it = agent.attributes.find(std::string(field));
  if (it == agent.attributes.end()) return std::nullopt;
  return it->second;
}

bool meetsConstraints(const std::vector<Constraint>& constraints, const AgentFacts& agent,
                      const std::vector<const AgentFacts*>& placed) {
  return std::all_of(constraints.begin(), constraints.end(),
                     [&](const Constraint& c) { return meets(c, agent, placed); });
}

std::vector<std::string> acceptedRoles(const App& app, const std::vector<std::string>& defaults,
                                       std::string_view frameworkRole) {
  if (!app.acceptedResourceRoles.empty()) return app.acceptedResourceRoles;
  if (!defaults.empty()) return defaults;
  std::vector<std::string> roles{"*"};
  if (frameworkRole != "*") roles.emplace_back(frameworkRole);
  return roles;
}

std::vector<int> requestedHostPorts(const App& app) {
  std::vector<int> ports;
  const bool mapped =
      app.container && app.container->docker &&
      (app.container->docker->network == "BRIDGE" || app.container->docker->network == "USER");
  if (mapped) {
    for (const auto& mapping : app.container->portMappings) ports.push_back(mapping.hostPort);
    return ports;
  }
  for (const auto& definition : app.portDefinitions) {
    ports.push_back(app.requirePorts ? definition.port : 0);
  }
  return ports;
}

OfferPool::OfferPool(const v1::Offer& offer)
    : remaining_(offer.resources().begin(), offer.resources().end()) {}

std::optional<OfferMatch> OfferPool::take(const App& app, const std::vector<std::string>& roles) {
  std::vector<v1::Resource> pool = remaining_;
  OfferMatch match;
  auto acceptable = [&](const v1::Resource& resource) {
    return std::find(roles.begin(), roles.end(), roleOf(resource)) != roles.end();
  };
  // Reserved resources first: they are the app's to use, unreserved ones are everyone's.
  std::vector<size_t> order(pool.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return isReserved(pool[a]) && !isReserved(pool[b]); });

  const std::pair<const char*, double> scalars[] = {
      {"cpus", app.cpus}, {"mem", app.mem}, {"disk", app.disk}, {"gpus", double(app.gpus)}};
  for (const auto& [name, amount] : scalars) {
    int64_t needed = millisOf(amount);
    for (size_t i : order) {
      if (needed <= 0) break;
      v1::Resource& resource = pool[i];
      if (resource.name() != name || resource.type() != v1::Value::SCALAR ||
          !acceptable(resource)) {
        continue;
      }
      const int64_t have = millisOf(resource.scalar().value());
      const int64_t used = std::min(have, needed);
      if (used <= 0) continue;
      v1::Resource taken = resource;
      taken.mutable_scalar()->set_value(double(used) / 1000.0);
      match.resources.push_back(std::move(taken));
      resource.mutable_scalar()->set_value(double(have - used) / 1000.0);
      needed -= used;
    }
    if (needed > 0) return std::nullopt;
  }

  std::set<uint64_t> chosen;
  for (int requested : requestedHostPorts(app)) {
    std::optional<size_t> from;
    uint64_t port = 0;
    for (size_t i : order) {
      v1::Resource& resource = pool[i];
      if (resource.name() != "ports" || resource.type() != v1::Value::RANGES ||
          !acceptable(resource)) {
        continue;
      }
      if (requested > 0) {
        if (portIn(resource, uint64_t(requested))) {
          from = i;
          port = uint64_t(requested);
          break;
        }
        continue;
      }
      for (const auto& range : resource.ranges().range()) {
        for (uint64_t p = range.begin(); p <= range.end(); ++p) {
          if (!chosen.count(p)) {
            from = i;
            port = p;
            break;
          }
        }
        if (from) break;
      }
      if (from) break;
    }
    if (!from || chosen.count(port)) return std::nullopt;
    chosen.insert(port);
    v1::Resource taken = pool[*from];
    taken.mutable_ranges()->clear_range();
    auto* range = taken.mutable_ranges()->add_range();
    range->set_begin(port);
    range->set_end(port);
    match.resources.push_back(std::move(taken));
    removePort(pool[*from], port);
    match.hostPorts.push_back(int(port));
  }
  remaining_ = std::move(pool);
  return match;
}

}  // namespace tessera::modules::marathon

// The sorted collection of resources: merging, subtracting, containment, filters and queries.
// Parsing and printing: resources_codec.cc; one value's rules: resources_values.cc.

#include "tessera/api/resources.h"

#include <algorithm>
#include <compare>
#include <iterator>
#include <utility>

#include "resources_internal.h"

namespace tessera::api {
namespace {

using resources_internal::containsRanges;
using resources_internal::defaultReservations;
using resources_internal::Entry;
using resources_internal::kMaxMillis;
using resources_internal::subtractRanges;
using resources_internal::unionRanges;

bool isEmptyValue(const Entry& entry) {
  switch (entry.type) {
    case ResourceType::kScalar:
      return entry.millis <= 0;
    case ResourceType::kRanges:
      return entry.ranges.empty();
    case ResourceType::kSet:
      return entry.items.empty();
  }
  return true;
}

std::weak_ordering compareKey(const Entry& a, const Entry& b) {
  if (int c = a.name.compare(b.name); c != 0)
    return c < 0 ? std::weak_ordering::less : std::weak_ordering::greater;
  if (a.type != b.type) return a.type <=> b.type;
  if (a.reservations.empty() && b.reservations.empty()) return std::weak_ordering::equivalent;
  return a.reservations <=> b.reservations;
}

bool keyLess(const Entry& a, const Entry& b) { return compareKey(a, b) < 0; }

// Advances `pos` to the first of `entries` whose key is not below `entry`'s, and says whether
// its key is equal: one key comparison per step of a merge.
bool seek(const std::vector<Entry>& entries, const Entry& entry, size_t& pos) {
  for (; pos < entries.size(); ++pos) {
    std::weak_ordering order = compareKey(entries[pos], entry);
    if (order >= 0) return order == 0;
  }
  return false;
}

// Sums of untrusted scalars must not overflow; they stop at the largest value instead.
int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? kMaxMillis : sum;
}

// Adds b's value to a's; their keys are equal. `b` may be `a`.
void addValue(Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      a.millis = saturatingAdd(a.millis, b.millis);
      return;
    case ResourceType::kRanges:
      a.ranges = unionRanges(a.ranges, b.ranges);
      return;
    case ResourceType::kSet: {
      std::vector<std::string> out;
      out.reserve(a.items.size() + b.items.size());
      std::set_union(a.items.begin(), a.items.end(), b.items.begin(), b.items.end(),
                     std::back_inserter(out));
      a.items = std::move(out);
      return;
    }
  }
}

// Removes b's value from a's; their keys are equal and they are distinct objects.
void subtractValue(Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      a.millis -= b.millis;
      return;
    case ResourceType::kRanges:
      a.ranges = subtractRanges(a.ranges, b.ranges);
      return;
    case ResourceType::kSet: {
      auto kept = std::remove_if(a.items.begin(), a.items.end(), [&](const std::string& item) {
        return std::binary_search(b.items.begin(), b.items.end(), item);
      });
      a.items.erase(kept, a.items.end());
      return;
    }
  }
}

bool containsValue(const Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      return a.millis >= b.millis;
    case ResourceType::kRanges:
      return containsRanges(a.ranges, b.ranges);
    case ResourceType::kSet:
      return std::includes(a.items.begin(), a.items.end(), b.items.begin(), b.items.end());
  }
  return false;
}

}  // namespace

Resources Resources::ofScalar(std::string_view name, int64_t millis) {
  Resources result;
  if (millis > 0) {
    Entry entry;
    entry.name = std::string(name);
    entry.millis = millis;
    result.entries_.push_back(std::move(entry));
  }
  return result;
}

void Resources::add(Entry&& entry) {
  if (isEmptyValue(entry)) return;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), entry, keyLess);
  if (it != entries_.end() && compareKey(*it, entry) == 0) {
    addValue(*it, entry);
  } else {
    entries_.insert(it, std::move(entry));
  }
}

Resources& Resources::operator+=(const Resources& other) {
  // Both sides are sorted by key: one forward merge. Entries of `other` are never empty.
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (seek(entries_, entry, pos)) {
      addValue(entries_[pos], entry);
    } else {
      entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(pos), entry);
    }
    ++pos;
  }
  return *this;
}

Resources& Resources::operator-=(const Resources& other) {
  if (&other == this) {
    entries_.clear();
    return *this;
  }
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (!seek(entries_, entry, pos)) {
      if (pos == entries_.size()) break;
      continue;
    }
    subtractValue(entries_[pos], entry);
    if (isEmptyValue(entries_[pos])) {
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(pos));
    } else {
      ++pos;
    }
  }
  return *this;
}

bool Resources::contains(const Resources& other) const {
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (!seek(entries_, entry, pos)) return false;
    if (!containsValue(entries_[pos], entry)) return false;
    ++pos;
  }
  return true;
}

Resources Resources::flatten(std::string_view role) const {
  Resources result;
  std::vector<Reservation> reservations = defaultReservations(role);
  for (const Entry& entry : entries_) {
    Entry copy = entry;
    copy.reservations = reservations;
    // Keys stay in (name, type) order; equal ones are now adjacent, so add() appends or merges
    // with the last entry.
    result.add(std::move(copy));
  }
  return result;
}

Resources Resources::reserved() const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (entry.isReserved()) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::reserved(std::string_view role) const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (entry.isReserved() && entry.reservationRole() == role) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::unreserved() const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (!entry.isReserved()) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::allocatableTo(std::string_view role) const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (!entry.isReserved() || entry.reservationRole() == role ||
        isStrictSubrole(role, entry.reservationRole())) {
      result.entries_.push_back(entry);
    }
  }
  return result;
}

int64_t Resources::scalarMillis(std::string_view name) const {
  // Entries are sorted by name: start at the first one with `name`, stop after the last.
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const Entry& entry, std::string_view key) { return entry.name < key; });
  int64_t total = 0;
  for (; it != entries_.end() && it->name == name; ++it) {
    if (it->type == ResourceType::kScalar) total = saturatingAdd(total, it->millis);
  }
  return total;
}

double Resources::scalar(std::string_view name) const {
  return static_cast<double>(scalarMillis(name)) / static_cast<double>(kScalarScale);
}

std::vector<ValueRange> Resources::ranges(std::string_view name) const {
  std::vector<ValueRange> total;
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const Entry& entry, std::string_view key) { return entry.name < key; });
  for (; it != entries_.end() && it->name == name; ++it) {
    if (it->type == ResourceType::kRanges) total = unionRanges(total, it->ranges);
  }
  return total;
}

}  // namespace tessera::api

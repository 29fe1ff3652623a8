#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <unordered_map>

namespace tessera::modules::drf {

/// Keeps clients (roles, or frameworks within a role: dense integer ids chosen by the caller)
/// ordered by their dominant share, lowest first, ties broken by the order clients were added
/// (older first). Unlike Mesos's sorter, which re-sorts every client for every agent, an update
/// re-keys only the one client whose share changed: O(log n), so an allocation run costs
/// O(offers · log n) instead of O(agents · n log n). Not thread-safe (one strand).
class DrfSorter {
 public:
  struct Key {
    double share = 0;
    uint64_t sequence = 0;
    uint32_t client = 0;
    bool operator<(const Key& other) const {
      if (share != other.share) return share < other.share;
      return sequence < other.sequence;
    }
  };
  using const_iterator = std::set<Key>::const_iterator;

  /// Adds `client` with `share`; a client already present is only re-keyed.
  void add(uint32_t client, double share);
  /// Removes `client`; unknown clients are ignored.
  void remove(uint32_t client);
  /// True if `client` is in the sorter.
  bool contains(uint32_t client) const { return keys_.count(client) != 0; }
  /// Re-keys `client` to `share`; unknown clients are ignored.
  void update(uint32_t client, double share);
  /// The share `client` is sorted by (0 if absent).
  double share(uint32_t client) const;

  bool empty() const { return order_.empty(); }
  size_t size() const { return order_.size(); }
  /// Clients lowest share first. Invalidated by add/remove/update of the pointed-to client.
  const_iterator begin() const { return order_.begin(); }
  const_iterator end() const { return order_.end(); }

 private:
  std::set<Key> order_;
  // Iterators into order_ stay valid across other insertions and erasures, so a re-key is one
  // extract (no search) and one insertion.
  std::unordered_map<uint32_t, std::set<Key>::iterator> keys_;
  uint64_t nextSequence_ = 0;
};

}  // namespace tessera::modules::drf

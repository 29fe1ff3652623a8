#include "modules/allocator_drf/drf_sorter.h"

namespace tessera::modules::drf {

void DrfSorter::add(uint32_t client, double share) {
  auto it = keys_.find(client);
  if (it != keys_.end()) {
    update(client, share);
    return;
  }
  keys_.emplace(client, order_.insert(Key{share, nextSequence_++, client}).first);
}

void DrfSorter::remove(uint32_t client) {
  auto it = keys_.find(client);
  if (it == keys_.end()) return;
  order_.erase(it->second);
  keys_.erase(it);
}

void DrfSorter::update(uint32_t client, double share) {
  auto it = keys_.find(client);
  if (it == keys_.end() || it->second->share == share) return;
  // Re-insert with the same sequence so ties keep their order; extract() reuses the node.
  auto node = order_.extract(it->second);
  node.value().share = share;
  it->second = order_.insert(std::move(node)).position;
}

double DrfSorter::share(uint32_t client) const {
  auto it = keys_.find(client);
  return it == keys_.end() ? 0 : it->second->share;
}

}  // namespace tessera::modules::drf

#include "kernel/state/memory_store.h"

#include <algorithm>

#include "kernel/state/keys.h"

namespace tessera::kernel::state {
void MemoryStore::get(std::string_view key, api::Executor& replyOn,
                      Callback<std::optional<api::StateEntry>> done) {
  using R = api::Result<std::optional<api::StateEntry>>;
  if (auto status = validateKey(key); !status)
    return postReply<R>(replyOn, std::move(done), status);
  std::optional<api::StateEntry> entry;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) entry = it->second;
  }
  postReply<R>(replyOn, std::move(done), std::move(entry));
}

void MemoryStore::set(std::string_view key, std::string value, uint64_t expectedVersion,
                      api::Executor& replyOn, Callback<uint64_t> done) {
  using R = api::Result<uint64_t>;
  if (auto status = validateKey(key); !status)
    return postReply<R>(replyOn, std::move(done), status);
  if (value.size() > api::kMaxStateValueBytes) {
    return postReply<R>(
        replyOn, std::move(done),
        api::resourceExhausted("value for state key '{}' is {} bytes, over the {} limit", key,
                               value.size(), api::kMaxStateValueBytes));
  }
  R result = api::Status(api::StatusCode::kInternal, "unset");
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    uint64_t current = it == entries_.end() ? 0 : it->second.version;
    if (current != expectedVersion) {
      result = versionMismatch(key, expectedVersion, current);
    } else if (it == entries_.end()) {
      entries_.emplace(std::string(key), api::StateEntry{std::move(value), 1});
      result = uint64_t{1};
    } else {
      it->second.value = std::move(value);
      result = ++it->second.version;
    }
  }
  postReply<R>(replyOn, std::move(done), std::move(result));
}

void MemoryStore::remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
                         StatusCallback done) {
  api::Status status = validateKey(key);
  if (status && expectedVersion == 0) {
    status = api::invalidArgument("removing state key '{}' needs a version >= 1", key);
  }
  if (status) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      status = api::notFound("state key '{}' does not exist", key);
    } else if (it->second.version != expectedVersion) {
      status = versionMismatch(key, expectedVersion, it->second.version);
    } else {
      entries_.erase(it);
    }
  }
  postReply<api::Status>(replyOn, std::move(done), std::move(status));
}

void MemoryStore::children(std::string_view prefix, api::Executor& replyOn,
                           Callback<std::vector<std::string>> done) {
  using R = api::Result<std::vector<std::string>>;
  if (auto status = validateKey(prefix, /*allowRoot=*/true); !status) {
    return postReply<R>(replyOn, std::move(done), status);
  }
  std::string below(prefix);
  if (below != "/") below.push_back('/');
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.lower_bound(below);
         it != entries_.end() && it->first.compare(0, below.size(), below) == 0; ++it) {
      names.emplace_back(childUnder(prefix, it->first));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  postReply<R>(replyOn, std::move(done), std::move(names));
}

}  // namespace tessera::kernel::state

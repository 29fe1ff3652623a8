#include "kernel/state/scoped_store.h"

#include <cassert>
#include <utility>

#include "kernel/state/keys.h"

namespace tessera::kernel::state {

ScopedStore::ScopedStore(api::StateStore& inner, std::string prefix)
    : inner_(inner), prefix_(std::move(prefix)) {
  assert(validateKey(prefix_) && prefix_ != "/");
}

api::Result<std::string> ScopedStore::scoped(std::string_view key, bool allowRoot) const {
  // Validated as the caller's key: no "..", no empty segment, so the result stays below prefix_.
  if (auto valid = validateKey(key, allowRoot); !valid) return valid;
  if (key == "/") return prefix_;
  std::string inner;
  inner.reserve(prefix_.size() + key.size());
  inner.append(prefix_).append(key);
  if (inner.size() > api::kMaxStateKeyBytes) {
    return api::invalidArgument(
        "key '{}' is too long: {} bytes with this store's prefix, at most {}", key, inner.size(),
        api::kMaxStateKeyBytes);
  }
  return inner;
}

api::Status ScopedStore::unscoped(const api::Status& status) const {
  if (status) return status;
  // Every "<prefix>/" becomes "/": keys in messages are named as the caller named them.
  const std::string& message = status.message();
  std::string out;
  size_t from = 0;
  for (size_t at = message.find(prefix_); at != std::string::npos;
       at = message.find(prefix_, from)) {
    out.append(message, from, at - from);
    from = at + prefix_.size();
    if (from >= message.size() || message[from] != '/') out.append(prefix_);
  }
  out.append(message, from, std::string::npos);
  return api::Status(status.code(), std::move(out));
}

void ScopedStore::get(std::string_view key, api::Executor& replyOn,
                      Callback<std::optional<api::StateEntry>> done) {
  auto inner = scoped(key, false);
  if (!inner) {
    return postReply<api::Result<std::optional<api::StateEntry>>>(replyOn, std::move(done),
                                                                  inner.status());
  }
  inner_.get(*inner, replyOn,
             [this, done = std::move(done)](api::Result<std::optional<api::StateEntry>> result) {
               if (!result) return done(unscoped(result.status()));
               done(std::move(result));
             });
}

void ScopedStore::set(std::string_view key, std::string value, uint64_t expectedVersion,
                      api::Executor& replyOn, Callback<uint64_t> done) {
  auto inner = scoped(key, false);
  if (!inner) return postReply<api::Result<uint64_t>>(replyOn, std::move(done), inner.status());
  inner_.set(*inner, std::move(value), expectedVersion, replyOn,
             [this, done = std::move(done)](api::Result<uint64_t> result) {
               if (!result) return done(unscoped(result.status()));
               done(std::move(result));
             });
}

void ScopedStore::remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
                         StatusCallback done) {
  auto inner = scoped(key, false);
  if (!inner) return postReply<api::Status>(replyOn, std::move(done), inner.status());
  inner_.remove(*inner, expectedVersion, replyOn,
                [this, done = std::move(done)](api::Status status) { done(unscoped(status)); });
}

void ScopedStore::children(std::string_view prefix, api::Executor& replyOn,
                           Callback<std::vector<std::string>> done) {
  auto inner = scoped(prefix, true);
  if (!inner) {
    return postReply<api::Result<std::vector<std::string>>>(replyOn, std::move(done),
                                                            inner.status());
  }
  inner_.children(*inner, replyOn,
                  [this, done = std::move(done)](api::Result<std::vector<std::string>> result) {
                    if (!result) return done(unscoped(result.status()));
                    done(std::move(result));
                  });
}

}  // namespace tessera::kernel::state

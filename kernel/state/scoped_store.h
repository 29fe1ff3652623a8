#pragma once

#include <string>
#include <string_view>

#include "tessera/api/state_store.h"

namespace tessera::kernel::state {

/// A view of another StateStore confined to one subtree: key `/a/b` is `<prefix>/a/b` in the
/// store below, and children("/") lists the children of `<prefix>`. Keys are validated before
/// they are prefixed, and valid keys have no "." or ".." segment, so nothing outside `<prefix>`
/// can be named: each framework module gets one over its host's store (`/modules/<name>`).
///
/// Errors are the inner store's, with keys in messages given back as the caller named them.
/// Keys must be at most kMaxStateKeyBytes long once prefixed. Threading and lifetime as the
/// inner store, which must outlive the view.
class ScopedStore final : public api::StateStore {
 public:
  /// `prefix` is a valid key ("/modules/org_x"), not "/".
  ScopedStore(api::StateStore& inner, std::string prefix);

  void get(std::string_view key, api::Executor& replyOn,
           Callback<std::optional<api::StateEntry>> done) override;
  void set(std::string_view key, std::string value, uint64_t expectedVersion,
           api::Executor& replyOn, Callback<uint64_t> done) override;
  void remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
              StatusCallback done) override;
  void children(std::string_view prefix, api::Executor& replyOn,
                Callback<std::vector<std::string>> done) override;

  const std::string& prefix() const { return prefix_; }

 private:
  // The inner key for `key`, or the error to answer with.
  api::Result<std::string> scoped(std::string_view key, bool allowRoot) const;
  // `status` with the inner key names given back as the caller's.
  api::Status unscoped(const api::Status& status) const;

  api::StateStore& inner_;
  const std::string prefix_;
};

}  // namespace tessera::kernel::state

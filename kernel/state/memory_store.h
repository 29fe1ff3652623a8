#pragma once

#include <map>
#include <mutex>
#include <string>

#include "tessera/api/state_store.h"

namespace tessera::kernel::state {

/// A StateStore in memory, for `tessera local`, --registry=in_memory and tests. Each call
/// takes effect under one mutex, held only for the map operation, before the call returns;
/// the reply is then posted to the caller's executor. Nothing survives the process.
class MemoryStore final : public api::StateStore {
 public:
  MemoryStore() = default;

  void get(std::string_view key, api::Executor& replyOn,
           Callback<std::optional<api::StateEntry>> done) override;
  void set(std::string_view key, std::string value, uint64_t expectedVersion,
           api::Executor& replyOn, Callback<uint64_t> done) override;
  void remove(std::string_view key, uint64_t expectedVersion, api::Executor& replyOn,
              StatusCallback done) override;
  void children(std::string_view prefix, api::Executor& replyOn,
                Callback<std::vector<std::string>> done) override;

 private:
  std::mutex mutex_;
  std::map<std::string, api::StateEntry, std::less<>> entries_;
};

}  // namespace tessera::kernel::state

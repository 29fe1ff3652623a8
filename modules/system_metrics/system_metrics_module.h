#pragma once

#include "tessera/api/anonymous.h"

namespace tessera::modules::system_metrics {

/// Registers the `system/*` gauges (cpus_total, load_1min/5min/15min, mem_total_bytes,
/// mem_free_bytes) read from /proc when a snapshot is taken.
class SystemMetricsModule final : public api::Anonymous {
 public:
  /// Takes no parameters. Fails if /proc cannot be read at all, so a broken host is noticed
  /// at start; Errors: InvalidArgument for any parameter.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);
  explicit SystemMetricsModule(api::Context& context) : context_(context) {}
  void stop() override;

 private:
  api::Context& context_;
};

}  // namespace tessera::modules::system_metrics

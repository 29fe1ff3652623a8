#include "modules/system_metrics/system_metrics_module.h"

#include <array>
#include <utility>

#include "modules/system_metrics/system_stats.h"

namespace tessera::modules::system_metrics {

namespace {

using Field = double SystemStats::*;
constexpr std::array<std::pair<const char*, Field>, 6> kGauges = {{
    {"system/cpus_total", &SystemStats::cpusTotal},
    {"system/load_1min", &SystemStats::load1},
    {"system/load_5min", &SystemStats::load5},
    {"system/load_15min", &SystemStats::load15},
    {"system/mem_total_bytes", &SystemStats::memTotalBytes},
    {"system/mem_free_bytes", &SystemStats::memFreeBytes},
}};

}  // namespace

api::Result<std::unique_ptr<api::Module>> SystemMetricsModule::create(
    const api::Parameters& parameters, api::Context& context) {
  // No parameters: a misspelt one would otherwise pass unnoticed.
  if (auto unknown = api::ParameterReader(parameters).rejectUnknown(); !unknown) return unknown;
  auto first = readSystemStats();
  if (!first) return first.status().withContext("reading the host's figures");
  for (const auto& [name, field] : kGauges) {
    context.metrics().gauge(name, [field = field] {
      auto stats = readSystemStats();
      return stats ? (*stats).*field : 0.0;
    });
  }
  return std::unique_ptr<api::Module>(std::make_unique<SystemMetricsModule>(context));
}

void SystemMetricsModule::stop() {
  for (const auto& [name, field] : kGauges) context_.metrics().removeGauge(name);
}

}  // namespace tessera::modules::system_metrics

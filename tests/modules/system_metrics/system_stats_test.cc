#include "modules/system_metrics/system_stats.h"

#include <gtest/gtest.h>

namespace tessera::modules::system_metrics {
namespace {

TEST(SystemStatsTest, ParsesLoadavg) {
  auto stats = parseLoadavg("0.52 1.58 2.59 1/467 12345\n");
  ASSERT_TRUE(stats);
  EXPECT_DOUBLE_EQ(stats->load1, 0.52);
  EXPECT_DOUBLE_EQ(stats->load5, 1.58);
  EXPECT_DOUBLE_EQ(stats->load15, 2.59);
  EXPECT_FALSE(parseLoadavg("garbage"));
}

TEST(SystemStatsTest, ParsesMeminfoPreferringAvailable) {
  auto stats = parseMeminfo("MemTotal:  2048 kB\nMemFree: 512 kB\nMemAvailable: 1024 kB\n");
  ASSERT_TRUE(stats);
  EXPECT_DOUBLE_EQ(stats->memTotalBytes, 2048.0 * 1024);
  EXPECT_DOUBLE_EQ(stats->memFreeBytes, 1024.0 * 1024);
  auto old = parseMeminfo("MemTotal: 2048 kB\nMemFree: 512 kB\n");
  ASSERT_TRUE(old);
  EXPECT_DOUBLE_EQ(old->memFreeBytes, 512.0 * 1024);
  EXPECT_FALSE(parseMeminfo("Buffers: 1 kB\n"));
}

TEST(SystemStatsTest, ReadsThisHost) {
  auto stats = readSystemStats();
  ASSERT_TRUE(stats) << stats.status().toString();
  EXPECT_GE(stats->cpusTotal, 1);
  EXPECT_GT(stats->memTotalBytes, stats->memFreeBytes);
  EXPECT_GT(stats->memFreeBytes, 0);
}

}  // namespace
}  // namespace tessera::modules::system_metrics

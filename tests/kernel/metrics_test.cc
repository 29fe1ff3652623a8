#include "kernel/runtime/metrics.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <future>
#include <set>
#include <sstream>

#include "kernel/runtime/runtime.h"
#include "tessera/api/json.h"

namespace tessera::kernel::runtime {
namespace {

using namespace std::chrono_literals;

bool isMetricName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  });
}

bool isSampleValue(const std::string& value) {
  if (value == "NaN" || value == "+Inf" || value == "-Inf") return true;
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  return !value.empty() && end == value.c_str() + value.size();
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { runtime_.start(); }
  void TearDown() override { runtime_.stop(); }

  Runtime runtime_;
  MetricsRegistry registry_{runtime_.io()};
};

TEST_F(MetricsTest, CountersCountAndAreShared) {
  api::Counter& counter = registry_.counter("master/tasks_finished");
  counter.increment();
  counter.increment(4);
  EXPECT_EQ(&registry_.counter("master/tasks_finished"), &counter);
  auto snapshot = registry_.snapshotAndWait(1s);
  EXPECT_EQ(snapshot.counters["master/tasks_finished"], 5u);
  EXPECT_EQ(snapshot.flat()["master/tasks_finished"], 5.0);
}

TEST_F(MetricsTest, TimerPercentilesOnKnownData) {
  WindowTimer& timer = registry_.timer("allocator/allocation_run_ms");
  for (int i = 1; i <= 100; ++i) timer.record(std::chrono::milliseconds(i));
  TimerStats stats = timer.stats();
  EXPECT_EQ(stats.count, 100u);
  EXPECT_DOUBLE_EQ(stats.last, 100);
  EXPECT_DOUBLE_EQ(stats.min, 1);
  EXPECT_DOUBLE_EQ(stats.max, 100);
  EXPECT_DOUBLE_EQ(stats.sum, 5050);
  // Linear interpolation between ranks, as Mesos does: p at position p * (n - 1).
  EXPECT_DOUBLE_EQ(stats.p50, 50.5);
  EXPECT_DOUBLE_EQ(stats.p90, 90.1);
  EXPECT_DOUBLE_EQ(stats.p95, 95.05);
  EXPECT_NEAR(stats.p99, 99.01, 1e-9);
  EXPECT_NEAR(stats.p999, 99.901, 1e-9);
  EXPECT_NEAR(stats.p9999, 99.9901, 1e-9);

  auto flat = registry_.snapshotAndWait(1s).flat();
  EXPECT_DOUBLE_EQ(flat["allocator/allocation_run_ms"], 100);
  EXPECT_DOUBLE_EQ(flat["allocator/allocation_run_ms/count"], 100);
  EXPECT_DOUBLE_EQ(flat["allocator/allocation_run_ms/min"], 1);
  EXPECT_DOUBLE_EQ(flat["allocator/allocation_run_ms/max"], 100);
  EXPECT_DOUBLE_EQ(flat["allocator/allocation_run_ms/p50"], 50.5);
  for (const char* key : {"p90", "p95", "p99", "p999", "p9999"}) {
    EXPECT_EQ(flat.count(std::string("allocator/allocation_run_ms/") + key), 1u) << key;
  }
}

TEST_F(MetricsTest, TimerWindowIsBoundedAndEmptyTimersAreLeftOut) {
  WindowTimer timer(10);
  for (int i = 1; i <= 100; ++i) timer.record(std::chrono::milliseconds(i));
  TimerStats stats = timer.stats();
  EXPECT_EQ(stats.count, 10u);
  EXPECT_EQ(stats.total, 100u);
  EXPECT_DOUBLE_EQ(stats.min, 91);
  EXPECT_DOUBLE_EQ(stats.max, 100);

  registry_.timer("empty_ms");
  EXPECT_EQ(registry_.snapshotAndWait(1s).flat().count("empty_ms"), 0u);
}

TEST_F(MetricsTest, GaugesAreReadOnTheirExecutor) {
  auto executor = runtime_.makeExecutor();
  int state = 7;  // owned by `executor`
  registry_.gauge(
      "module/state", executor.get(),
      [&] {
        EXPECT_TRUE(executor->runningInThisThread());
        return static_cast<double>(state);
      },
      nullptr);
  registry_.gauge("inline/value", nullptr, [] { return 1.5; });
  auto snapshot = registry_.snapshotAndWait(5s);
  EXPECT_EQ(snapshot.gauges["module/state"], 7);
  EXPECT_EQ(snapshot.gauges["inline/value"], 1.5);
  EXPECT_TRUE(snapshot.timedOut.empty());
  executor->drain();
}

TEST_F(MetricsTest, SnapshotTimesOutWhenAnExecutorIsBlocked) {
  auto blocked = runtime_.makeExecutor();
  auto healthy = runtime_.makeExecutor();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  blocked->post([&] {
    entered.set_value();
    released.wait();
  });
  entered.get_future().wait();
  registry_.gauge("stuck/value", blocked.get(), [] { return 1.0; });
  registry_.gauge("fine/value", healthy.get(), [] { return 2.0; });

  auto start = std::chrono::steady_clock::now();
  auto snapshot = registry_.snapshotAndWait(100ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(snapshot.gauges.count("stuck/value"), 0u);
  EXPECT_EQ(snapshot.gauges["fine/value"], 2.0);
  EXPECT_EQ(snapshot.timedOut, std::vector<std::string>{"stuck/value"});

  release.set_value();
  blocked->drain();  // the late answer finds the snapshot completed
  healthy->drain();
}

TEST_F(MetricsTest, ScopedMetricsRemovesItsGaugesWhenDestroyed) {
  auto executor = runtime_.makeExecutor();
  auto other = runtime_.makeExecutor();
  {
    ScopedMetrics module(registry_, *executor);
    ScopedMetrics neighbour(registry_, *other);
    module.gauge("module/a", [] { return 1.0; });
    module.gauge("module/b", [] { return 2.0; });
    neighbour.gauge("neighbour/c", [] { return 3.0; });
    module.counter("module/count").increment();
    neighbour.removeGauge("module/a");  // not its gauge: ignored
    module.removeGauge("module/b");
    auto snapshot = registry_.snapshotAndWait(5s);
    EXPECT_EQ(snapshot.gauges.count("module/a"), 1u);
    EXPECT_EQ(snapshot.gauges.count("module/b"), 0u);
    EXPECT_EQ(snapshot.gauges.count("neighbour/c"), 1u);
  }
  auto snapshot = registry_.snapshotAndWait(5s);
  EXPECT_TRUE(snapshot.gauges.empty());
  EXPECT_EQ(snapshot.counters["module/count"], 1u);  // counters live as long as the registry
  executor->drain();
  other->drain();
}

TEST_F(MetricsTest, JsonIsAFlatSortedObject) {
  registry_.counter("b/counter").increment(3);
  registry_.gauge("a/gauge", nullptr, [] { return 12.5; });
  registry_.gauge("c/nan", nullptr, [] { return std::nan(""); });
  registry_.gauge("d/\"quoted\"", nullptr, [] { return 1.0; });
  registry_.timer("e/timer_ms").record(2ms);
  std::string json = registry_.snapshotAndWait(1s).toJson();
  EXPECT_TRUE(json.starts_with(R"({"a/gauge":12.5,"b/counter":3,)")) << json;
  EXPECT_EQ(json.find("c/nan"), std::string::npos);  // not representable in JSON

  Poco::JSON::Parser parser;
  auto object = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(object->getValue<double>("a/gauge"), 12.5);
  EXPECT_EQ(object->getValue<int>("b/counter"), 3);
  EXPECT_EQ(object->getValue<double>("d/\"quoted\""), 1.0);
  EXPECT_EQ(object->getValue<double>("e/timer_ms"), 2.0);
  EXPECT_EQ(object->getValue<int>("e/timer_ms/count"), 1);
}

TEST_F(MetricsTest, PrometheusOutputIsValidLineByLine) {
  registry_.counter("master/tasks_finished").increment(2);
  registry_.counter("master/tasks~finished").increment();  // collides once mangled: dropped
  registry_.gauge("master/uptime_secs", nullptr, [] { return 12.5; });
  registry_.gauge("odd name.with:chars", nullptr, [] { return -1.0; });
  registry_.timer("allocator/allocation_run_ms").record(3ms);
  registry_.timer("allocator/allocation_run_ms").record(5ms);
  std::string text = registry_.snapshotAndWait(1s).toPrometheus();

  // Parsed by hand: <regex> trips GCC 12's -Wmaybe-uninitialized in the Asan build.
  std::map<std::string, std::string> types;
  std::string current;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) {
      std::istringstream fields(line.substr(7));
      std::string name, type, extra;
      fields >> name >> type;
      EXPECT_TRUE(isMetricName(name)) << line;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "summary") << line;
      EXPECT_FALSE(fields >> extra) << line;
      EXPECT_EQ(types.count(name), 0u) << "declared twice: " << line;
      types[name] = type;
      current = name;
      continue;
    }
    ASSERT_FALSE(line.starts_with("#")) << line;
    auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    std::string series = line.substr(0, space);
    std::string value = line.substr(space + 1);
    EXPECT_TRUE(isSampleValue(value)) << line;
    std::string name = series;
    if (auto brace = series.find('{'); brace != std::string::npos) {
      name = series.substr(0, brace);
      std::string labels = series.substr(brace);
      EXPECT_TRUE(labels.starts_with("{quantile=\"") && labels.ends_with("\"}")) << line;
      EXPECT_EQ(types[current], "summary") << line;
    }
    EXPECT_TRUE(isMetricName(name)) << line;
    // Every sample belongs to the family declared just before it.
    EXPECT_TRUE(name == current || name == current + "_sum" || name == current + "_count") << line;
  }
  EXPECT_EQ(types["tessera_master_tasks_finished"], "counter");
  EXPECT_EQ(types["tessera_master_uptime_secs"], "gauge");
  EXPECT_EQ(types["tessera_odd_name_with:chars"], "gauge");
  EXPECT_EQ(types["tessera_allocator_allocation_run_ms"], "summary");
  EXPECT_NE(text.find("tessera_master_tasks_finished 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tessera_master_uptime_secs 12.5\n"), std::string::npos);
  EXPECT_NE(text.find("tessera_allocator_allocation_run_ms{quantile=\"0.5\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("tessera_allocator_allocation_run_ms_count 2\n"), std::string::npos);
  EXPECT_NE(text.find("tessera_allocator_allocation_run_ms_sum 8\n"), std::string::npos);
}

TEST(MetricsNamesTest, PrometheusNameAndJsonQuote) {
  EXPECT_EQ(prometheusName("master/uptime_secs"), "tessera_master_uptime_secs");
  EXPECT_EQ(prometheusName("a-b c"), "tessera_a_b_c");
  EXPECT_EQ(api::jsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace tessera::kernel::runtime

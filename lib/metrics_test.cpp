#include "podwarp/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace podwarp::metrics {
namespace {

TEST(MetricsTest, UnlabeledCounterIsExposedFromTheStart) {
  Registry r;
  Counter& c = r.counter("jobs_total", "Jobs run.");
  EXPECT_EQ(r.expose(), "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total 0\n");
  c.inc();
  c.inc(2.5);
  c.inc(-1);  // ignored: counters only go up
  c.inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_DOUBLE_EQ(c.value(), 3.5);
  EXPECT_EQ(r.expose(), "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total 3.5\n");
}

TEST(MetricsTest, LabeledCounterFamily) {
  Registry r;
  Counter& c = r.counter("apiserver_request_total", "Requests.", {"verb", "resource"});
  EXPECT_EQ(r.expose(), "");  // no series yet: nothing at all, as client_golang
  CounterChild& get_pods = c.with({"GET", "pods"});
  get_pods.inc();
  get_pods.inc();
  EXPECT_EQ(&c.with({"GET", "pods"}), &get_pods);
  c.with({"LIST", "nodes"}).inc(3);
  c.with({"DELETE", "pods"}).inc();
  EXPECT_EQ(r.expose(),
            "# HELP apiserver_request_total Requests.\n"
            "# TYPE apiserver_request_total counter\n"
            "apiserver_request_total{verb=\"DELETE\",resource=\"pods\"} 1\n"
            "apiserver_request_total{verb=\"GET\",resource=\"pods\"} 2\n"
            "apiserver_request_total{verb=\"LIST\",resource=\"nodes\"} 3\n");
  // The unlabeled shortcut on a labeled family goes nowhere visible.
  c.inc(100);
  EXPECT_EQ(r.expose().find("100"), std::string::npos);
}

TEST(MetricsTest, EscapingOfHelpAndLabelValues) {
  Registry r;
  Gauge& g = r.gauge("odd", "Help with \\ and\nnewline.", {"path"});
  g.with({"C:\\dir \"quoted\"\nnext"}).set(1);
  EXPECT_EQ(r.expose(),
            "# HELP odd Help with \\\\ and\\nnewline.\n"
            "# TYPE odd gauge\n"
            "odd{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST(MetricsTest, GaugeOperationsAndSpecialValues) {
  Registry r;
  Gauge& g = r.gauge("inflight", "In flight.");
  g.inc();
  g.inc(4);
  g.dec(2);
  EXPECT_DOUBLE_EQ(g.value(), 3);
  g.set(-0.5);
  EXPECT_EQ(r.expose(), "# HELP inflight In flight.\n# TYPE inflight gauge\ninflight -0.5\n");
  Gauge& special = r.gauge("special", "Special values.", {"kind"});
  special.with({"inf"}).set(std::numeric_limits<double>::infinity());
  special.with({"minf"}).set(-std::numeric_limits<double>::infinity());
  special.with({"nan"}).set(std::numeric_limits<double>::quiet_NaN());
  special.with({"big"}).set(1e21);
  const std::string text = r.expose();
  EXPECT_NE(text.find("special{kind=\"inf\"} +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("special{kind=\"minf\"} -Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("special{kind=\"nan\"} NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("special{kind=\"big\"} 1e+21\n"), std::string::npos) << text;
  GaugeChild& now = r.gauge("start_time_seconds", "Start time.").with({});
  now.set_to_current_time();
  EXPECT_GT(now.value(), 1.7e9);
}

TEST(MetricsTest, HistogramExposition) {
  Registry r;
  Histogram& h = r.histogram("latency_seconds", "Latency.", {1, 0.125, 1, INFINITY, NAN});
  EXPECT_EQ(h.buckets(), (std::vector<double>{0.125, 1}));
  for (double v : {0.0625, 0.5, 1.0, 4.0}) h.observe(v);  // a bound itself is inclusive
  EXPECT_EQ(r.expose(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.125\"} 1\n"
            "latency_seconds_bucket{le=\"1\"} 3\n"
            "latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "latency_seconds_sum 5.5625\n"
            "latency_seconds_count 4\n");
}

TEST(MetricsTest, LabeledHistogram) {
  Registry r;
  Histogram& h = r.histogram("req_duration_seconds", "Durations.", {0.5}, {"verb"});
  HistogramChild& get = h.with({"GET"});
  get.observe(0.25);
  get.observe(2);
  get.observe(std::numeric_limits<double>::quiet_NaN());  // counted in +Inf, poisons the sum
  EXPECT_EQ(get.cumulative_counts(), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(get.count(), 3u);
  EXPECT_TRUE(std::isnan(get.sum()));
  h.with({"PUT"}).observe(0.5);
  EXPECT_EQ(r.expose(),
            "# HELP req_duration_seconds Durations.\n"
            "# TYPE req_duration_seconds histogram\n"
            "req_duration_seconds_bucket{verb=\"GET\",le=\"0.5\"} 1\n"
            "req_duration_seconds_bucket{verb=\"GET\",le=\"+Inf\"} 3\n"
            "req_duration_seconds_sum{verb=\"GET\"} NaN\n"
            "req_duration_seconds_count{verb=\"GET\"} 3\n"
            "req_duration_seconds_bucket{verb=\"PUT\",le=\"0.5\"} 1\n"
            "req_duration_seconds_bucket{verb=\"PUT\",le=\"+Inf\"} 1\n"
            "req_duration_seconds_sum{verb=\"PUT\"} 0.5\n"
            "req_duration_seconds_count{verb=\"PUT\"} 1\n");
}

TEST(MetricsTest, FamiliesAreSortedByName) {
  Registry r;
  r.gauge("b_metric", "B.").set(1);
  r.counter("a_metric", "A.").inc();
  r.counter("c_metric", "C.");
  const std::string text = r.expose();
  const auto a = text.find("# HELP a_metric");
  const auto b = text.find("# HELP b_metric");
  const auto c = text.find("# HELP c_metric");
  ASSERT_NE(a, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(MetricsTest, RegistrationIsIdempotentAndConflictsAreDetached) {
  Registry r;
  Counter& a = r.counter("x_total", "X.", {"l"});
  EXPECT_EQ(&r.counter("x_total", "X again.", {"l"}), &a);
  // Different labels or type: a working family that is not exposed.
  Counter& other_labels = r.counter("x_total", "X.", {"m"});
  EXPECT_NE(&other_labels, &a);
  other_labels.with({"1"}).inc();
  Gauge& other_type = r.gauge("x_total", "X.", {"l"});
  other_type.with({"1"}).set(5);
  a.with({"v"}).inc();
  EXPECT_EQ(r.expose(), "# HELP x_total X.\n# TYPE x_total counter\nx_total{l=\"v\"} 1\n");

  Histogram& h = r.histogram("h_seconds", "H.", {1, 2});
  EXPECT_EQ(&r.histogram("h_seconds", "H.", {2, 1}), &h);  // same buckets once sorted
  EXPECT_NE(&r.histogram("h_seconds", "H.", {1, 3}), &h);

  struct Bad {
    std::string name;
    std::vector<std::string> labels;
  };
  const Bad bad[] = {
      {"", {}},        {"1abc", {}},    {"has-dash", {}},    {"sp ace", {}},
      {"ok", {"__x"}}, {"ok2", {"1l"}}, {"ok3", {"a", "a"}}, {"ok4", {"a-b"}},
  };
  for (const auto& b : bad) {
    Counter& c = r.counter(b.name, "bad", b.labels);
    c.inc();  // works, but is never exposed
    EXPECT_EQ(r.expose().find("bad"), std::string::npos) << b.name;
  }
  Histogram& le = r.histogram("le_seconds", "bad le", default_buckets(), {"le"});
  le.with({"1"}).observe(1);
  EXPECT_EQ(r.expose().find("le_seconds"), std::string::npos);
  // Valid unusual names are fine.
  r.counter("ns:sub_total", "colon", {"_private"}).with({"v"}).inc();
  EXPECT_NE(r.expose().find("ns:sub_total{_private=\"v\"} 1"), std::string::npos);
}

TEST(MetricsTest, WrongArityAndRemove) {
  Registry r;
  Gauge& g = r.gauge("node_ready", "Ready.", {"node"});
  g.with({"a", "extra"}).set(7);  // discarded
  g.with({}).set(8);              // discarded
  EXPECT_EQ(r.expose(), "");
  GaugeChild& n1 = g.with({"n1"});
  n1.set(1);
  g.with({"n2"}).set(1);
  EXPECT_TRUE(g.remove({"n1"}));
  EXPECT_FALSE(g.remove({"n1"}));
  EXPECT_FALSE(g.remove({"n1", "x"}));
  n1.set(3);  // still a valid reference, just not exposed
  EXPECT_DOUBLE_EQ(n1.value(), 3);
  EXPECT_EQ(r.expose(),
            "# HELP node_ready Ready.\n# TYPE node_ready gauge\nnode_ready{node=\"n2\"} 1\n");
  // A re-created series starts fresh.
  EXPECT_DOUBLE_EQ(g.with({"n1"}).value(), 0);
}

TEST(MetricsTest, ConcurrentUpdatesAreExact) {
  Registry r;
  Counter& c = r.counter("ops_total", "Ops.", {"worker"});
  Histogram& h = r.histogram("op_seconds", "Op.", {0.5});
  CounterChild& shared = c.with({"shared"});
  constexpr int kThreads = 4;
  constexpr int kIters = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string mine = "w" + std::to_string(t);
      for (int i = 0; i < kIters; ++i) {
        shared.inc();
        c.with({mine}).inc();
        h.observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 10000 == 0) (void)r.expose();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_DOUBLE_EQ(shared.value(), kThreads * kIters);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_DOUBLE_EQ(c.with({"w" + std::to_string(t)}).value(), kIters);
  }
  HistogramChild& hc = h.with({});
  EXPECT_EQ(hc.count(), static_cast<std::uint64_t>(kThreads * kIters));
  EXPECT_EQ(hc.cumulative_counts().front(), static_cast<std::uint64_t>(kThreads * kIters / 2));
  EXPECT_DOUBLE_EQ(hc.sum(), kThreads * kIters / 2 * 1.25);
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(default_buckets().size(), 11u);
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(linear_buckets(0.5, 0.5, 3), (std::vector<double>{0.5, 1, 1.5}));
  EXPECT_TRUE(exponential_buckets(0, 2, 4).empty());
  EXPECT_TRUE(exponential_buckets(1, 1, 4).empty());
  EXPECT_TRUE(exponential_buckets(1, 2, 0).empty());
  EXPECT_TRUE(linear_buckets(0, 0, 3).empty());
  EXPECT_TRUE(linear_buckets(0, 1, -1).empty());
}

TEST(MetricsTest, DefaultRegistryIsShared) {
  Counter& c = default_registry().counter("podwarp_metrics_selftest_total", "Self test.");
  c.inc();
  EXPECT_EQ(&default_registry(), &default_registry());
  EXPECT_NE(default_registry().expose().find("podwarp_metrics_selftest_total 1"),
            std::string::npos);
}

}  // namespace
}  // namespace podwarp::metrics

#include "loop/events.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>

#include "testing/api_fixture.h"

namespace podwarp::loop {
namespace {

TEST(EventRecorder, EventHasUpstreamShape) {
  boost::asio::io_context io;
  EventRecorder rec(client::Client(io.get_executor(), client::Config{}), "deployment-controller");
  auto obj = parse_json(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"prod","uid":"u-1","resourceVersion":"7"}})");
  ASSERT_TRUE(obj);
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  json::object ev = rec.make_event(*obj, "Normal", "ScalingReplicaSet",
                                   "Scaled up replica set web-5d4f to 3", now);
  EXPECT_EQ(get_string(ev, {"metadata", "namespace"}), "prod");
  EXPECT_EQ(get_string(ev, {"metadata", "name"}), "web.17979cfe362a0000");
  EXPECT_EQ(get_string(ev, {"involvedObject", "kind"}), "Deployment");
  EXPECT_EQ(get_string(ev, {"involvedObject", "uid"}), "u-1");
  EXPECT_EQ(get_string(ev, {"involvedObject", "apiVersion"}), "apps/v1");
  EXPECT_EQ(get_string(ev, {"source", "component"}), "deployment-controller");
  EXPECT_EQ(get_string(ev, {"type"}), "Normal");
  EXPECT_EQ(get_string(ev, {"firstTimestamp"}), "2023-11-14T22:13:20Z");
  EXPECT_EQ(get_int(ev, {"count"}), 1);
}

TEST(EventRecorder, ClusterScopedObjectsGetEventsInDefault) {
  boost::asio::io_context io;
  EventRecorder rec(client::Client(io.get_executor(), client::Config{}), "node-controller");
  auto obj = parse_json(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","uid":"x"}})");
  json::object ev = rec.make_event(*obj, "Normal", "RegisteredNode", "m",
                                   std::chrono::system_clock::now());
  EXPECT_EQ(get_string(ev, {"metadata", "namespace"}), "default");
  EXPECT_EQ(ev.at("involvedObject").as_object().count("namespace"), 0u);
}

// Against a real apiserver: writes go one at a time through the token bucket, in order; a repeat
// of an event still queued is sent once with its count; a full queue drops.
TEST(EventRecorder, SendsThroughTheTokenBucketInOrderAndAggregatesQueuedRepeats) {
  using namespace std::chrono_literals;
  auto f = testing::ApiFixture::start({"--components", "apiserver"});
  ASSERT_TRUE(f) << f.error();
  auto& fx = **f;
  EventRecorderOptions o;
  o.qps = 10;
  o.burst = 3;
  o.max_queued = 12;
  EventRecorder rec(fx.client(), "test-recorder", "", o);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    auto obj = parse_json(fmt::format(R"({{"apiVersion":"v1","kind":"Pod",
        "metadata":{{"name":"p{}","namespace":"default","uid":"uid-{}"}}}})", i, i));
    ASSERT_TRUE(obj);
    rec.record(*obj, "Normal", "Started", fmt::format("Started container c{}", i));
    if (i == 9) {  // queued behind the others: these two repeats ride on its create
      rec.record(*obj, "Normal", "Started", "Started container c9");
      rec.record(*obj, "Normal", "Started", "Started container c9");
    }
  }
  for (int i = 0; i < 5; ++i) {  // 10 queued + 5 > max_queued 12: the last 3 are dropped
    auto obj = parse_json(fmt::format(R"({{"apiVersion":"v1","kind":"Pod",
        "metadata":{{"name":"q{}","namespace":"default","uid":"quid-{}"}}}})", i, i));
    rec.record(*obj, "Normal", "Pulled", "x");
  }
  const api::Resource& events = *api::find_resource("", "v1", "events");
  std::vector<json::value> items;
  ASSERT_TRUE(fx.eventually(
      [&] {
        auto l = fx.run(fx.client().list(events, "default"));
        if (!l) return false;
        items.clear();
        for (const auto& it : l->as_object().at("items").as_array())
          if (get_string(it, {"source", "component"}) == "test-recorder") items.push_back(it);
        return items.size() >= 12;
      },
      20s));
  auto took = std::chrono::steady_clock::now() - start;
  // 12 creates, 3 from the burst, then 10/s: at least 0.9 s.
  EXPECT_GE(took, 850ms);
  fx.run_for(500ms);
  auto l = fx.run(fx.client().list(events, "default"));
  ASSERT_TRUE(l);
  int ours = 0;
  for (const auto& it : l->as_object().at("items").as_array()) {
    if (get_string(it, {"source", "component"}) != "test-recorder") continue;
    ++ours;
    std::string_view name = get_string(it, {"involvedObject", "name"});
    EXPECT_NE(name, "q2");
    EXPECT_NE(name, "q3");
    EXPECT_NE(name, "q4");
    if (name == "p9") EXPECT_EQ(get_int(it, {"count"}), 3);
    else EXPECT_EQ(get_int(it, {"count"}), 1);
  }
  EXPECT_EQ(ours, 12);
}

}  // namespace
}  // namespace podwarp::loop
